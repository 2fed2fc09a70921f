#!/usr/bin/env python3
"""Reads a feed with feedparser (Debian's python3-feedparser, a parser we did not write) and
checks it: well-formed, Atom 1.0, a self link, and the entry titles given, in that order.
usage: check_feed.py [--version=V] URL TITLE...   (V: feedparser's version, atom10 by default)
exit 0 when it matches, 1 with the reason otherwise"""
import sys

import feedparser

args = sys.argv[1:]
version = "atom10"
if args and args[0].startswith("--version="):
    version = args.pop(0).split("=", 1)[1]
url, want = args[0], args[1:]
d = feedparser.parse(url)
problems = []
if d.bozo:
    problems.append("not well-formed: %s" % d.bozo_exception)
if d.version != version:
    problems.append("version %r, not %s" % (d.version, version))
if not any(l.get("rel") == "self" for l in d.feed.get("links", [])):
    problems.append("no self link")
titles = [e.get("title") for e in d.entries]
if titles != want:
    problems.append("titles %r, expected %r" % (titles, want))
if any(not e.get("id") or (version == "atom10" and not e.get("updated")) for e in d.entries):
    problems.append("an entry without id (or, in Atom, updated)")
for p in problems:
    print("feed %s: %s" % (url, p), file=sys.stderr)
sys.exit(1 if problems else 0)
