#!/usr/bin/python3
"""Contract check: every answer the integration suite received (JSON lines written by the test
harness with PUBSUBGW_CONTRACT_LOG) is checked against openapi/openapi.json: the operation must
exist, the status must be documented for it, the content type must be one the document gives
for that status, a documented Retry-After / Allow header must be present, and a JSON body must
validate against the response schema (JSON Schema 2020-12, as OpenAPI 3.1 uses).

Requests to undocumented routes or methods (the suite sends them on purpose to check 404 and
405) are counted, not checked. Exit status 1 on any mismatch, listing each once.

usage: check.py OPENAPI.json LOGDIR
"""
import collections
import json
import os
import re
import sys

from jsonschema import Draft202012Validator, RefResolver


def load_exchanges(logdir):
    for name in sorted(os.listdir(logdir)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(logdir, name), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if line:
                    yield "%s:%d" % (name, n), json.loads(line)


def path_matchers(doc):
    out = []
    for template, item in doc["paths"].items():
        params = template.count("{")
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        out.append((params, re.compile(rx), template, item))
    out.sort(key=lambda t: t[0])  # literal segments win over parameters
    return out


def find_operation(matchers, method, path):
    path = path.split("?", 1)[0]
    for _, rx, template, item in matchers:
        if rx.match(path):
            return template, item.get(method.lower())
    return None, None


def deref(doc, obj):
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        assert ref.startswith("#/")
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj


def response_for(doc, op, status):
    responses = op.get("responses", {})
    for key in (str(status), "%dXX" % (status // 100), "default"):
        if key in responses:
            return deref(doc, responses[key])
    return None


def media_type(content_type):
    return content_type.split(";", 1)[0].strip().lower()


def main():
    spec_path, logdir = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        doc = json.load(f)
    resolver = RefResolver.from_schema(doc)
    matchers = path_matchers(doc)
    problems = collections.OrderedDict()
    checked = skipped = 0
    per_op = collections.Counter()

    def fail(key, where, text):
        problems.setdefault(key, (where, text))

    if not os.path.isdir(logdir):
        print("contract: no answers were logged in %s" % logdir)
        return 1
    for where, ex in load_exchanges(logdir):
        method, path, status = ex["method"], ex["path"], ex["status"]
        template, op = find_operation(matchers, method, path)
        if op is None:
            skipped += 1
            continue
        checked += 1
        opname = "%s %s" % (method, template)
        per_op[opname] += 1
        resp = response_for(doc, op, status)
        if resp is None:
            fail((opname, status), where, "%s answered %d, which the document does not list"
                 % (opname, status))
            continue
        for header, field in (("Retry-After", "retry_after"), ("Allow", "allow")):
            hdr = resp.get("headers", {}).get(header)
            if hdr is not None and deref(doc, hdr).get("required") and not ex.get(field):
                fail((opname, status, header), where,
                     "%s %d: required header %s missing" % (opname, status, header))
        content = resp.get("content")
        body = ex.get("body", "")
        if not content:
            if body and status != 204:
                fail((opname, status, "body"), where,
                     "%s %d: a body came, the document gives none" % (opname, status))
            continue
        mt = media_type(ex.get("content_type", ""))
        if mt == "" and resp.get("x-no-content-type"):
            continue
        if mt not in content:
            fail((opname, status, "ct", mt), where, "%s %d: content type %r not in %s"
                 % (opname, status, mt, sorted(content)))
            continue
        schema = content[mt].get("schema")
        if schema is None or ex.get("body_skipped") or not mt.endswith("json"):
            continue
        try:
            value = json.loads(body)
        except ValueError:
            fail((opname, status, "json"), where, "%s %d: body is not JSON" % (opname, status))
            continue
        validator = Draft202012Validator(schema, resolver=resolver)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        for e in errors[:1]:
            fail((opname, status, "schema", e.message[:80]), where,
                 "%s %d: %s at %s (body %s)" % (opname, status, e.message[:300],
                                                 "/".join(str(p) for p in e.path) or "(root)",
                                                 body[:300]))
    print("contract: %d answers checked against %s over %d operations, %d to undocumented "
          "routes or methods not checked" % (checked, os.path.basename(spec_path), len(per_op),
                                              skipped))
    for where, text in problems.values():
        print("MISMATCH %s (%s)" % (text, where))
    if checked == 0:
        # The tests that ran logged no answer of a documented route (a subset was run).
        print("contract: no answer of a documented route was logged; nothing to check")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
