"""wrk and service processes for the HTTP benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import httpx

SCRIPT = Path(__file__).with_name("wrk.lua")


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")


async def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    method: str = "GET",
    body: str = "",
    api_key: str = "",
    delay_ms: int = 0,
) -> dict[str, float]:
    """One wrk run; returns rate, p50/p90/p99 (ms) and errors (socket errors plus non-2xx/3xx)."""
    env = os.environ | {"WRK_METHOD": method, "WRK_BODY": body, "WRK_API_KEY": api_key, "WRK_DELAY_MS": str(delay_ms)}
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(SCRIPT),
        url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    for line in output.decode().splitlines():
        if line.startswith("SUMMARY "):
            summary = json.loads(line.removeprefix("SUMMARY "))
            return {
                "requests": summary["requests"],
                "rate": summary["requests"] / (summary["duration_us"] / 1e6),
                "p50_ms": summary["p50_us"] / 1000,
                "p90_ms": summary["p90_us"] / 1000,
                "p99_ms": summary["p99_us"] / 1000,
                "errors": summary["socket_errors"] + summary["non_2xx"],
            }
    raise RuntimeError(f"wrk printed no summary:\n{output.decode()}")


async def start_python(module: str, *arguments: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", module, *arguments, env=os.environ | env)


async def wait_until_live(url: str, process: asyncio.subprocess.Process | None = None, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient() as client:
        while asyncio.get_running_loop().time() < deadline:
            if process is not None and process.returncode is not None:
                raise RuntimeError(f"{url} exited with {process.returncode} during start-up")
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up within {timeout_s} s")


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def start_in_session(*command: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """A process in a session (and process group) of its own, for ``kill_session``."""
    return await asyncio.create_subprocess_exec(*command, env=os.environ | env, start_new_session=True)


async def kill_session(process: asyncio.subprocess.Process) -> None:
    """SIGKILL a process started by ``start_in_session`` and every process it started: for a
    worker whose work is all counted, where a graceful stop only costs time (Celery's warm
    shutdown takes 6 to 8 s here) and a kill of the parent alone would orphan its children
    (taskiq's worker runs its consumer in a child process)."""
    with contextlib.suppress(ProcessLookupError):  # the whole group has already ended
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
