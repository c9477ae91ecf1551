"""The outside mail server of the benchmarks: Postfix's ``smtp-sink``, a C test server made for load.

The notifications service hands every confirmation to an SMTP server. In production that
server is another machine's (a relay, a provider); here it shares the two cores with the
suite, so its cost is counted against the suite. The Python catcher ``make run`` uses
(aiosmtpd) takes about 0.27 ms of CPU per message, ``smtp-sink`` about 0.06 ms, as Mailpit
stands in for it in compose. ``smtp-sink`` keeps every message in one dump file, which the
load benchmark reads back to check that each accepted order's confirmation arrived.
"""

from __future__ import annotations

import getpass
import re
import shutil
from pathlib import Path

# Debian's postfix package installs it outside a normal user's PATH
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
BACKLOG = 256
CONFIRMATION = re.compile(rb"^Subject: Order confirmation ([0-9a-f-]{36})\r?$", re.MULTILINE)


def sink_program(dump_dir: Path) -> list[str]:
    """``smtp-sink`` and its options: each mail transaction appended to a dump file in ``dump_dir``.

    ``-u``: the sink drops to this user after binding, and as root it refuses to start without it.
    """
    if not Path(SMTP_SINK).is_file():
        raise FileNotFoundError(f"{SMTP_SINK} not found: it comes with Debian's postfix package, which `make bench` installs")
    return [SMTP_SINK, "-u", getpass.getuser(), "-D", str(dump_dir / "mail-%Y%m%d")]


def sink_command(port: int, dump_dir: Path) -> list[str]:
    return [*sink_program(dump_dir), f"127.0.0.1:{port}", str(BACKLOG)]


def confirmed_orders(dump_dir: Path) -> list[str]:
    """The order id of every confirmation the sink received, once per mail, in arrival order."""
    return [match.decode() for path in sorted(dump_dir.glob("mail-*")) for match in CONFIRMATION.findall(path.read_bytes())]
