"""The whole suite as processes, started by ``make run``'s launcher on free ports (end-to-end tests, load benchmark)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import httpx

from shared.testing.fixtures import eventually


def suite_environment(*, broker_url: str, exchange: str, databases: Mapping[str, str], mail_dir: Path, api_keys: str) -> dict[str, str]:
    """What every run of the whole suite under test sets: a broker vhost, exchange and databases of its own,
    caught mail, reports in UTC, the given API keys and no rate limit worth the name."""
    return {
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "BROKER_URL": broker_url,
        "EVENTS_EXCHANGE": exchange,
        **{f"{service.upper()}_DATABASE_URL": url for service, url in databases.items()},
        "NOTIFICATIONS_MAIL_CATCHER_DIR": str(mail_dir),
        "REPORTS_TIMEZONE": "UTC",
        "GATEWAY_API_KEYS": api_keys,
        "GATEWAY_RATE_LIMIT_PER_S": "100000",
        "GATEWAY_RATE_LIMIT_BURST": "100000",
        "GATEWAY_RABBITMQ_VHOST": unquote(urlsplit(broker_url).path[1:]) or "/",
    }


@asynccontextmanager
async def running_suite(
    procfile: Path,
    env: dict[str, str],
    workdir: Path,
    *,
    scale: str = "",
    cwd: Path | None = None,
    output: IO[bytes] | int | None = asyncio.subprocess.DEVNULL,
    healthy_within_s: float = 90,
) -> AsyncIterator[dict[str, Any]]:
    """Yields the launcher's plan (``gateway`` URL, ``instances``, ``mail_dir``) once ``GET /health`` is healthy.

    The Procfile's relative paths are read from ``cwd`` (default: the Procfile's folder).
    Stops the suite as Ctrl-C does (SIGINT to the launcher, which stops every process).
    """
    state_file = workdir / "state.json"
    launcher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy.launcher",
        "--procfile",
        str(procfile),
        "--free-ports",
        "--scale",
        scale,
        "--state-file",
        str(state_file),
        env=os.environ | env,
        cwd=cwd or procfile.parent,
        stdout=output,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        state: dict[str, Any] = await eventually(lambda: _read_state(state_file), timeout_s=30, what="the launcher's plan")
        async with httpx.AsyncClient(base_url=state["gateway"], timeout=10) as client:

            async def healthy() -> bool:
                if launcher.returncode is not None:
                    raise AssertionError(f"the suite stopped during start-up (exit {launcher.returncode})")
                try:
                    return bool((await client.get("/health")).json()["status"] == "healthy")
                except (httpx.HTTPError, ValueError):
                    return False

            await eventually(healthy, timeout_s=healthy_within_s, interval_s=0.5, what="every service healthy through the gateway")
        yield state
    finally:
        if launcher.returncode is None:
            launcher.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(launcher.wait(), 40)
            except TimeoutError:
                os.killpg(launcher.pid, signal.SIGKILL)


async def _read_state(path: Path) -> dict[str, Any] | None:
    """The launcher writes its plan before it starts anything."""
    text = await asyncio.to_thread(lambda: path.read_text() if path.exists() else "")
    state: dict[str, Any] | None = json.loads(text) if text else None
    return state
