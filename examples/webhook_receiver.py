#!/usr/bin/env python3
"""A pubsubgw webhook receiver that verifies every delivery (Standard Webhooks).

    examples/webhook_receiver.py PORT whsec_SECRET

Answers the subscription's verification GET with hub.challenge, checks webhook-signature on
every POST (HMAC-SHA256 over "id.timestamp.body" with the decoded secret, constant-time
comparison, timestamps older than five minutes refused), prints the event (each event of a
batch), answers 204.
Standard library only.
"""
import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
SECRET = sys.argv[2] if len(sys.argv) > 2 else ""
KEY = base64.b64decode(SECRET.removeprefix("whsec_")) if SECRET else b""


def verified(headers, body):
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
        return False
    mac = hmac.new(KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    # The header may carry several space-separated signatures (key rotation).
    return any(hmac.compare_digest(expected, sig.split(",", 1)[-1])
               for sig in headers.get("webhook-signature", "").split())


class Receiver(BaseHTTPRequestHandler):
    def do_GET(self):
        challenge = parse_qs(urlparse(self.path).query).get("hub.challenge", [""])[0]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(challenge.encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not verified(self.headers, body):
            self.send_response(401)
            self.end_headers()
            return
        # A subscription with "batch" receives a JSON array of events (the signature covers the
        # whole array; the batch is acknowledged as a unit), one without a single event.
        doc = json.loads(body)
        for event in doc if isinstance(doc, list) else [doc]:
            print(event["type"], event["node"], json.dumps(event.get("item")), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
