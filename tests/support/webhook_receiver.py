"""A webhook receiver for the webhook tests, verifying with the Standard Webhooks reference
library (`standardwebhooks`).

Usage: webhook_receiver.py PORT DIR. Listens on 127.0.0.1:PORT (0: a free port) and prints
"PORT <n>" once listening. Every POST is checked with the secret in DIR/secret (read on each
request, so the test can write it once the endpoint exists):
- verified: written to DIR/<n>.json as {"headers", "body"} and answered with the status in
  DIR/status (default 204), so a test can make the receiver fail;
- not verified: written to DIR/forged-<n>.json and answered 401.
"""

import http.server
import itertools
import json
import os
import sys

from standardwebhooks.webhooks import Webhook

out = sys.argv[2]
count = itertools.count()


def read(name, default):
    try:
        with open(os.path.join(out, name)) as f:
            return f.read().strip() or default
    except OSError:
        return default


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode()
        headers = {k.lower(): v for k, v in self.headers.items()}
        n = next(count)
        try:
            Webhook(read("secret", "")).verify(body, headers)
        except Exception as e:  # noqa: BLE001 - any refusal is a forgery here
            with open(os.path.join(out, f"forged-{n:06}.json"), "w") as f:
                json.dump({"headers": headers, "body": body, "error": str(e)}, f)
            self.send_response(401)
            self.end_headers()
            return
        status = int(read("status", "204"))
        if 200 <= status < 300:
            tmp = os.path.join(out, f"{n:06}.tmp")
            with open(tmp, "w") as f:
                json.dump({"headers": headers, "body": json.loads(body)}, f)
            os.replace(tmp, os.path.join(out, f"{n:06}.json"))
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


server = Server(("127.0.0.1", int(sys.argv[1])), Receiver)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
