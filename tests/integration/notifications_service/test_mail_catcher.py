import asyncio
import sys
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from shared.testing.fixtures import eventually, free_port


async def test_the_catcher_stores_each_message_as_an_eml_file(tmp_path: Path) -> None:
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
        assert b"catching mail" in await asyncio.wait_for(catcher.stdout.readline(), 10)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "orders@example.com", "ada@example.com", "hello"
        message.set_content("caught")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port)

        async def stored() -> list[Path]:
            return await asyncio.to_thread(lambda: sorted(tmp_path.glob("*.eml")))

        (eml,) = await eventually(stored, what="a stored message")
    finally:
        catcher.terminate()
        await catcher.wait()
    content = eml.read_text()
    assert "Subject: hello" in content
    assert "caught" in content
