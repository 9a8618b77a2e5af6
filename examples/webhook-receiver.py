#!/usr/bin/env python3
"""A webhook endpoint that checks uwf's Standard Webhooks signatures with nothing but the standard library.

    WEBHOOK_SECRET=whsec_... python3 examples/webhook-receiver.py     # listens on 127.0.0.1:9200
"""
import base64, hashlib, hmac, json, os, time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = base64.b64decode(os.environ["WEBHOOK_SECRET"].removeprefix("whsec_"))


def verify(headers, body: bytes) -> bool:
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:  # refuse replays of old deliveries
        return False
    expected = base64.b64encode(hmac.new(SECRET, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    # Several signatures while a secret is being rotated: any one of them may match.
    return any(hmac.compare_digest(expected, sig.split(",", 1)[1]) for sig in headers["webhook-signature"].split(" "))


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        ok = verify(self.headers, body)
        event = json.loads(body)
        print(f"{event['event_type']:<16} {event['payload'].get('run_id', '')} signature {'ok' if ok else 'BAD'}", flush=True)
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", 9200), Handler).serve_forever()
