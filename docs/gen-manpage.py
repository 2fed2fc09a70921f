#!/usr/bin/env python3
"""Regenerates the OPTIONS section of docs/pubsubgw.8 from `pubsubgw --help`, keeping the rest of
the page. usage: docs/gen-manpage.py build/pubsubgw   (tests/manpage.sh checks they agree)"""
import re
import subprocess
import sys

HELP = subprocess.run([sys.argv[1], "--help"], capture_output=True, text=True, check=True).stdout
PAGE = "docs/pubsubgw.8"


def esc(text):
    return text.replace("\\", "\\\\").replace("-", "\\-")


def options_section():
    out = [".SH OPTIONS",
           "Every option may also be given in the configuration file, with the same name and "
           "without the",
           "leading dashes. Command\\-line options override the file."]
    entries = []
    for line in HELP.splitlines()[3:]:
        if not line.startswith(" ") and line.endswith(":"):
            entries.append(("SECTION", line[:-1]))
            continue
        m = re.match(r"^  (--\S+(?: \S+)?)\s{2,}(.*)$", line) or re.match(r"^  (--\S+(?: \S+)?)\s(.*)$", line)
        if line.startswith("                         ") and entries:
            opt, desc = entries[-1]
            entries[-1] = (opt, desc + " " + line.strip())
        elif m:
            entries.append((m.group(1).strip(), m.group(2).strip()))
    for opt, desc in entries:
        if opt == "SECTION":
            out.append(".SS " + desc)
            continue
        name, _, arg = opt.partition(" ")
        out.append(".TP")
        out.append(".B " + esc(name) + (" \\fI" + esc(arg) + "\\fR" if arg else ""))
        out.append(esc(desc))
    return "\n".join(out) + "\n"


page = open(PAGE, encoding="utf-8").read()
start = page.index(".SH OPTIONS")
end = page.index(".SH CONFIGURATION FILE")
open(PAGE, "w", encoding="utf-8").write(page[:start] + options_section() + page[end:])
