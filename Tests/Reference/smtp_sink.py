#!/usr/bin/env python3
"""An SMTP server for uwf's tests (aiosmtpd, from PyPI): accepts every message and logs it as a JSON line.

    smtp_sink.py LOGFILE [--starttls CERT KEY | --tls CERT KEY] [--auth USER PASSWORD]
        prints "listening on PORT" once ready. --starttls refuses mail until the client has upgraded; --tls speaks
        TLS from the first byte; --auth refuses mail from clients that have not logged in (over TLS only).
"""
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from email import message_from_bytes
from email.header import decode_header, make_header

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


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
options = sys.argv[2:]


def option(name, count):
    if name not in options:
        return None
    i = options.index(name)
    return options[i + 1 : i + 1 + count]


class Sink:
    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content)
        body = message.get_payload(decode=True).decode("utf-8")
        entry = {
            "from": envelope.mail_from, "to": envelope.rcpt_tos, "subject": str(make_header(decode_header(message["Subject"]))),
            "message_id": message["Message-ID"], "body": body, "login": getattr(session, "auth_data", None),
        }
        with open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        return "250 OK"


sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.close()

def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, auth_data=auth_data.login.decode() if ok else None)
    return check


kwargs = {}
for flag in ("--starttls", "--tls"):
    pair = option(flag, 2)
    if pair:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair[0], pair[1])
        if flag == "--starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
login = option("--auth", 2)
if login:
    # aiosmtpd knows only STARTTLS as "TLS": with --tls the whole connection is encrypted, so it may not insist.
    kwargs.update(authenticator=authenticator(login[0], login[1]), auth_required=True, auth_require_tls="--tls" not in options)
controller = Controller(Sink(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print(f"listening on {port}", flush=True)
while True:
    time.sleep(3600)
