"""The background workers a service runs beside its HTTP routes (ticker, dispatcher, purges).

A worker starts after the runtime's pools, relay and consumer are up and stops before them;
while it runs, readiness reports it under its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Worker(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def running(self) -> bool: ...


class Periodic:
    """``job`` every ``every_s`` seconds, the first time at start; a failing run is logged and the next one comes on time."""

    def __init__(self, name: str, job: Callable[[], Awaitable[None]], *, every_s: float) -> None:
        self.name = name
        self._job = job
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                await self._job()
            except Exception:
                log.warning("periodic job failed; it runs again on schedule", extra={"job": self.name}, exc_info=True)
            await asyncio.sleep(self._every_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()
