#!/usr/bin/env python3
"""A webhook endpoint for uwf's tests that checks every request with the `standardwebhooks` package (the Standard
Webhooks reference library, written by others) and logs what it received.

    webhook_receiver.py LOGFILE SECRET [SECRET...]

Prints "listening on PORT" once ready. Each request is logged as one JSON line: path, webhook-id, event type, whether
each given secret verifies the signature, and the answer given. Paths choose the answer:
  /ok        200
  /flaky/N   503 with Retry-After: 1 for the first N requests of each webhook-id, then 200
  /gone      410
  /redirect  302 to /ok (must not be followed)
  /slow      waits 3 s, then 200
"""
import json
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


# Children of the test process inherit SIGTERM ignored (the ServiceGroup's signal handling): restore it, and end
# when the test process is gone (a crashed test must not leave this running, holding ports and pipes).
signal.signal(signal.SIGTERM, signal.SIG_DFL)
_parent = os.getppid()


def _watch_parent():
    while os.getppid() == _parent:
        time.sleep(0.5)
    os._exit(0)


threading.Thread(target=_watch_parent, daemon=True).start()

log_path = sys.argv[1]
verifiers = [Webhook(secret) for secret in sys.argv[2:]]
lock = threading.Lock()
seen = defaultdict(int)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        verified = []
        for verifier in verifiers:
            try:
                verifier.verify(body, headers)
                verified.append(True)
            except WebhookVerificationError:
                verified.append(False)
        msg_id = self.headers.get("webhook-id", "")
        with lock:
            seen[(self.path, msg_id)] += 1
            count = seen[(self.path, msg_id)]
        status, extra = 200, {}
        if self.path.startswith("/flaky/"):
            if count <= int(self.path.split("/")[2]):
                status, extra = 503, {"Retry-After": "1"}
        elif self.path == "/gone":
            status = 410
        elif self.path == "/redirect":
            status, extra = 302, {"Location": "/ok"}
        elif self.path == "/slow":
            time.sleep(3)
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        entry = {
            "path": self.path, "id": msg_id, "timestamp": self.headers.get("webhook-timestamp"),
            "signature": self.headers.get("webhook-signature"), "type": event.get("event_type"),
            "event": event, "verified": verified, "status": status, "at": time.time(),
        }
        with lock, open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
