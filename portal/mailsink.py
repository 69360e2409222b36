"""The sandbox's SMTP sink: every message Goldsmith sends, kept as one .eml file in a folder.

`make run` (manage.py runall) starts it as a supervised child when e-mail goes to the local
default (EMAIL_HOST 127.0.0.1, EMAIL_PORT 8025 in the sandbox), so notifications are delivered
somewhere instead of retrying for a day; the "Sent mail" page (/sandbox/mail/) reads the
folder (NOTIFY_SANDBOX_MAILDIR, var/mail/). Nothing leaves the machine.

    python -m portal.mailsink --port 8025 --dir var/mail

Files are named `<nanoseconds>-<random>.eml`, so sorting names sorts by arrival; each is
written under a temporary name and renamed, so a reader never sees half a message. The
envelope's sender and recipients come first as X-Envelope-From / X-Envelope-To headers (a Bcc
recipient is in no other header). Free of Django, like portal/devservices.py.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class MaildirHandler:
    """aiosmtpd handler: accept every message and write it to `folder`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        head = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        partial = self.folder / f".{name}.tmp"
        partial.write_bytes(head + envelope.original_content)
        os.replace(partial, self.folder / f"{name}.eml")
        return "250 Message accepted for delivery"


def serve(folder: Path, host: str, port: int) -> Controller:
    """Start the sink in a background thread; the caller stops it with `.stop()`."""
    controller = Controller(MaildirHandler(folder), hostname=host, port=port)
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.mailsink", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"), help="where the .eml files go")
    options = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    controller = serve(options.dir, options.host, options.port)
    print(f"SMTP sink on {options.host}:{options.port}, keeping messages in {options.dir.resolve()}", flush=True)
    try:
        while not stop.wait(1):
            pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
