"""A local SMTP server that stores every message it receives as a .eml file (``make run``).

``python -m notifications_service.mail_catcher [--dir var/mail] [--port 1025]``; the defaults are
the notifications service's own settings, so the catcher listens where the service sends.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop
from aiosmtpd.controller import Controller

from notifications_service.settings import NotificationsSettings
from shared.settings import load_settings


class MaildirHandler:
    """Writes each message to ``<dir>/<time>-<id>.eml``; files appear complete (written, then renamed)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(envelope.original_content or envelope.content)
        temporary.rename(self.directory / name)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    settings = load_settings(NotificationsSettings)
    parser.add_argument("--dir", default=Path(settings.mail_catcher_dir), type=Path)
    parser.add_argument("--host", default=settings.smtp_host)
    parser.add_argument("--port", default=settings.smtp_port, type=int)
    arguments = parser.parse_args()
    # its own loop, in the controller's thread; uvloop, as the services run, costs less per message
    controller = Controller(MaildirHandler(arguments.dir), hostname=arguments.host, port=arguments.port, loop=uvloop.new_event_loop())
    controller.start()
    print(f"catching mail on {arguments.host}:{arguments.port} into {arguments.dir.resolve()}", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
