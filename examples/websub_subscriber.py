#!/usr/bin/env python3
"""A WebSub subscriber for pubsubgw's hub (or any WebSub hub), standard library only.

    examples/websub_subscriber.py PORT [SECRET]

Echoes hub.challenge to the hub's verification of intent (subscribe and unsubscribe), prints a
denial's reason, and on every content distribution checks X-Hub-Signature (when a secret is
given: HMAC of the body with the algorithm the header names, constant-time comparison; an
unsigned or badly signed body is refused), then prints the entries of the Atom feed it carries.
"""
import hashlib
import hmac
import sys
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9001
SECRET = sys.argv[2].encode() if len(sys.argv) > 2 else None
ATOM = "{http://www.w3.org/2005/Atom}"


def signed(header, body):
    alg, _, given = (header or "").partition("=")
    if alg not in ("sha1", "sha256", "sha384", "sha512"):
        return False
    return hmac.compare_digest(hmac.new(SECRET, body, getattr(hashlib, alg)).hexdigest(), given)


class Subscriber(BaseHTTPRequestHandler):
    def do_GET(self):
        q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        mode = q.get("hub.mode")
        if mode == "denied":
            print("denied:", q.get("hub.topic"), "-", q.get("hub.reason"), flush=True)
            self.send_response(200)
            self.end_headers()
            return
        if mode in ("subscribe", "unsubscribe") and "hub.challenge" in q:
            print(mode, "of", q.get("hub.topic"), "lease", q.get("hub.lease_seconds"), flush=True)
            body = q["hub.challenge"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(404)
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if SECRET is not None and not signed(self.headers.get("X-Hub-Signature"), body):
            print("refused: bad or missing X-Hub-Signature", flush=True)
            self.send_response(202)  # WebSub: a bad signature is ignored, not retried
            self.end_headers()
            return
        feed = ET.fromstring(body)
        for entry in feed.iter(ATOM + "entry"):
            title = entry.findtext(ATOM + "title") or ""
            print("entry", entry.findtext(ATOM + "id"), "-", title, flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Subscriber).serve_forever()
