"""A benchmark's worker is killed together with the processes it started, none left running."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench.http_load import kill_session, start_in_session

# a parent that starts a child, says the child's pid, and waits: as taskiq's worker does
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's parent here may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


async def test_the_worker_and_its_children_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    command = f"{sys.executable} -c '{PARENT}' > {pid_file}"
    parent = await start_in_session("sh", "-c", command, env={})
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    child = int(pid_file.read_text())
    assert running(child)

    await asyncio.wait_for(kill_session(parent), 10)

    assert parent.returncode is not None
    for _ in range(100):  # the signal is delivered at once; its handling may take a moment
        if not running(child):
            break
        await asyncio.sleep(0.05)
    assert not running(child)


async def test_a_worker_that_already_ended_is_no_error() -> None:
    parent = await start_in_session(sys.executable, "-c", "pass", env={})
    await parent.wait()

    await kill_session(parent)

    assert parent.returncode == 0
