#!/usr/bin/env python3
"""A stand-in core-banking service for the funds-transfer and payment-batch examples.

    python3 examples/bank-stub.py            # listens on 127.0.0.1:9100

POST /accounts/<id>/debit   {"amount"}          -> 200 {"debit_id", "balance"}
POST /accounts/<id>/credit  {"amount"}          -> 200 {"credit_id"}; 422 when <id> starts with "closed"
POST /accounts/<id>/refund  {"debit_id", ...}   -> 200 {"refunded": <debit_id>, "balance"}
POST /payouts               {"to", "amount"}    -> 200 {"payout_id"}; 422 when "to" starts with "closed"
GET  /accounts/<id>                              -> 200 {"balance"}

Every account starts with 1000. A request repeated with the same Idempotency-Key header (uwf sends
<run id>/<step id>) gets the first answer again and moves no money twice.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

balances = {}
answers = {}
lock = threading.Lock()
counter = [0]


def next_id(prefix):
    counter[0] += 1
    return f"{prefix}-{counter[0]}"


class Bank(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "accounts":
            with lock:
                return self.reply(200, {"account": parts[1], "balance": balances.get(parts[1], 1000)})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        key = self.headers.get("Idempotency-Key")
        with lock:
            if key and key in answers:
                return self.reply(*answers[key])
            status, answer = self.apply(self.path.strip("/").split("/"), body)
            if key:
                answers[key] = (status, answer)
        self.reply(status, answer)

    def apply(self, parts, body):
        amount = float(body.get("amount", 0))
        if parts[:1] == ["payouts"]:
            to = str(body.get("to", ""))
            if to.startswith("closed"):
                return 422, {"error": f"beneficiary account {to} is closed"}
            return 200, {"payout_id": next_id("P"), "to": to, "amount": amount}
        if len(parts) != 3 or parts[0] != "accounts":
            return 404, {"error": "not found"}
        account, action = parts[1], parts[2]
        balance = balances.get(account, 1000)
        if action == "debit":
            if amount > balance:
                return 422, {"error": "insufficient funds", "balance": balance}
            balances[account] = balance - amount
            return 200, {"debit_id": next_id("D"), "balance": balances[account]}
        if action == "credit":
            if account.startswith("closed"):
                return 422, {"error": f"account {account} is closed"}
            balances[account] = balance + amount
            return 200, {"credit_id": next_id("C"), "balance": balances[account]}
        if action == "refund":
            balances[account] = balance + amount
            return 200, {"refunded": body.get("debit_id"), "balance": balances[account]}
        return 404, {"error": "not found"}

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", 9100), Bank).serve_forever()
