"""A local SMTP server that appends every message it receives to one mbox file (``make run``).

``python -m notifications_service.mail_catcher [--dir var/mail] [--port 1025]``; the defaults are
the notifications service's own settings, so the catcher listens where the service sends.
Read the mail with ``mutt -f var/mail/caught.mbox``, any client that opens mbox files, or
``caught_messages()``. One file, appended to, rather than a file per message: creating a file
costs as much CPU as the rest of the catcher's work on a message.
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import re
import time
from email.message import Message
from pathlib import Path
from typing import Any, BinaryIO

import uvloop
from aiosmtpd.controller import Controller

from notifications_service.settings import NotificationsSettings
from shared.settings import load_settings

MBOX_NAME = "caught.mbox"
# mboxrd: a body line that would read as a message separator gets one more '>'
SEPARATOR_LIKE = re.compile(rb"^(>*From )", re.MULTILINE)


def mbox_entry(content: bytes, sender: str, received: float) -> bytes:
    """One message as mbox text: the ``From`` line, the message with LF line ends, a blank line."""
    body = SEPARATOR_LIKE.sub(rb">\1", content.replace(b"\r\n", b"\n"))
    if not body.endswith(b"\n"):
        body += b"\n"
    return b"From " + (sender or "MAILER-DAEMON").encode() + b" " + time.asctime(time.gmtime(received)).encode() + b"\n" + body + b"\n"


def caught_messages(directory: Path) -> list[Message]:
    """Every message caught so far into ``directory``, oldest first."""
    path = directory / MBOX_NAME
    if not path.exists():
        return []
    box = mailbox.mbox(path, create=False)
    try:
        return list(box)
    finally:
        box.close()


class MboxHandler:
    """Appends each message to ``<dir>/caught.mbox`` in one write, so a reader never sees half of one."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / MBOX_NAME
        self._file: BinaryIO = self.path.open("ab", buffering=0)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._file.write(mbox_entry(envelope.original_content or envelope.content, envelope.mail_from, time.time()))
        return "250 Message accepted for delivery"

    def close(self) -> None:
        self._file.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    settings = load_settings(NotificationsSettings)
    parser.add_argument("--dir", default=Path(settings.mail_catcher_dir), type=Path)
    parser.add_argument("--host", default=settings.smtp_host)
    parser.add_argument("--port", default=settings.smtp_port, type=int)
    arguments = parser.parse_args()
    handler = MboxHandler(arguments.dir)
    # its own loop, in the controller's thread; uvloop, as the services run, costs less per message
    controller = Controller(handler, hostname=arguments.host, port=arguments.port, loop=uvloop.new_event_loop())
    controller.start()
    print(f"catching mail on {arguments.host}:{arguments.port} into {handler.path.resolve()}", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        handler.close()


if __name__ == "__main__":
    main()
