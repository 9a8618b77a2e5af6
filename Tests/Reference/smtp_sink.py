#!/usr/bin/env python3
"""An SMTP server for uwf's tests (aiosmtpd, from PyPI): accepts every message and logs it as a JSON line.

    smtp_sink.py LOGFILE        prints "listening on PORT" once ready
"""
import json
import os
import signal
import socket
import sys
import threading
import time
from email import message_from_bytes
from email.header import decode_header, make_header

from aiosmtpd.controller import Controller


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


class Sink:
    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content)
        body = message.get_payload(decode=True).decode("utf-8")
        entry = {
            "from": envelope.mail_from, "to": envelope.rcpt_tos, "subject": str(make_header(decode_header(message["Subject"]))),
            "message_id": message["Message-ID"], "body": body,
        }
        with open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        return "250 OK"


sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.close()
controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print(f"listening on {port}", flush=True)
while True:
    time.sleep(3600)
