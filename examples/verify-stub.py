#!/usr/bin/env python3
"""A stand-in for the KYC verification service of examples/customer-onboarding.json.

    python3 examples/verify-stub.py            # listens on 127.0.0.1:9000

Answers every POST with 200 and {"verified": true, "idempotency_key": <the header uwf sent>}.
"""
import json
from http.server import BaseHTTPRequestHandler, HTTPServer


class Verify(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        customer = json.loads(self.rfile.read(length) or b"{}").get("customer", {})
        body = json.dumps({"verified": True, "name": customer.get("name"),
                           "idempotency_key": self.headers.get("Idempotency-Key")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", 9000), Verify).serve_forever()
