import asyncio
import sys
from email.message import EmailMessage, Message
from pathlib import Path

import aiosmtplib

from notifications_service.mail_catcher import MBOX_NAME, caught_messages, mbox_entry
from shared.ports import free_port
from shared.testing.fixtures import eventually


async def test_the_catcher_appends_each_message_to_one_mbox(tmp_path: Path) -> None:
    port = free_port()
    catcher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notifications_service.mail_catcher",
        "--dir",
        str(tmp_path),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert catcher.stdout is not None
        assert str(tmp_path / MBOX_NAME).encode() in await asyncio.wait_for(catcher.stdout.readline(), 10)
        for index in range(3):
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "orders@example.com", f"ada{index}@example.com", f"hello {index}"
            message.set_content(f"caught {index}\nFrom the shop, with thanks\n")
            await aiosmtplib.send(message, hostname="127.0.0.1", port=port)

        async def three() -> list[Message] | None:
            messages = await asyncio.to_thread(caught_messages, tmp_path)
            return messages if len(messages) == 3 else None

        messages = await eventually(three, what="three stored messages")
    finally:
        catcher.terminate()
        await catcher.wait()
    assert [m["Subject"] for m in messages] == ["hello 0", "hello 1", "hello 2"]
    assert [m.get_from().split()[0] for m in messages] == ["orders@example.com"] * 3
    body = messages[1].get_payload()
    assert "caught 1" in body
    assert ">From the shop" in body, "a body line that reads like a separator is quoted, not a new message"


def test_an_mbox_entry_quotes_separator_lines_and_ends_with_a_blank_line() -> None:
    entry = mbox_entry(b"Subject: x\r\n\r\nFrom here\r\n>From there\r\nend", "a@example.com", 0.0)
    assert entry == b"From a@example.com Thu Jan  1 00:00:00 1970\nSubject: x\n\n>From here\n>>From there\nend\n\n"


def test_nothing_caught_yet_is_an_empty_list(tmp_path: Path) -> None:
    assert caught_messages(tmp_path) == []
