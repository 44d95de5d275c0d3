"""A real SMTP server on loopback for the tests (aiosmtpd).

Usage: smtp_sink.py DIR — prints the port it listens on, then stores each
message as DIR/NNNN.json with its recipients, subject and decoded parts.
"""
import asyncio
import email
import email.policy
import json
import pathlib
import socket
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        parts = {}
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_subtype()] = part.get_content()
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "subject": str(msg["Subject"]),
            "content_type": msg.get_content_type(),
            "text": parts.get("plain", ""),
            "html": parts.get("html", ""),
        }
        tmp = self.dir / f"{self.count:04d}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.rename(self.dir / f"{self.count:04d}.json")
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main():
    port = free_port()
    controller = Controller(Sink(sys.argv[1]), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
