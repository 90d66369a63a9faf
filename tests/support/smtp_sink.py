"""An SMTP server for the notification tests (aiosmtpd).

Usage: smtp_sink.py PORT DIR. Listens on 127.0.0.1:PORT (0: a free port), prints
"PORT <n>" once listening, and writes each accepted message to DIR twice: the raw
message as <n>.eml and, decoded, as <n>.json (envelope recipients, To, Subject,
Message-ID, the plain-text and HTML parts). A recipient whose local part starts with
"reject" is refused for good: 550.
"""

import asyncio
import email
import email.policy
import itertools
import json
import os
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = itertools.count()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "rcpt_tos": envelope.rcpt_tos,
            "to": str(message["To"]),
            "from": str(message["From"]),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        base = os.path.join(self.out, f"{os.getpid()}-{next(self.count):05d}")
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 Message accepted"


async def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    loop = asyncio.get_running_loop()
    sink = Sink(out)
    server = await loop.create_server(
        lambda: SMTP(sink, decode_data=False), "127.0.0.1", port, reuse_address=True
    )
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
