"""A gate that holds a service's background work while its database is out of reach.

Work that fails because the database is gone (``shared.db_faults``) is not the work's
fault: a consumer that counted it would spend a message's attempts inside the outage and
park good messages. So the worker that saw it closes the gate and every worker waits at
``wait_open``; one probe asks the database (``SELECT 1``) with growing pauses and opens
the gate when it answers. Readiness reads ``paused``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from shared import metrics
from shared.db_faults import database_unavailable, network_failure

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[object]]


class DatabaseGate:
    def __init__(
        self, name: str, probe: Probe, *, first_wait_s: float = 0.1, max_wait_s: float = 5.0, probe_timeout_s: float = 5.0
    ) -> None:
        self._name = name
        self._probe = probe
        self._first_wait_s = first_wait_s
        self._max_wait_s = max_wait_s
        self._probe_timeout_s = probe_timeout_s
        self._open = asyncio.Event()
        self._open.set()
        self._prober: asyncio.Task[None] | None = None
        self.pauses = 0

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    async def wait_open(self, stopping: asyncio.Event | None = None) -> None:
        """Return once the database answers again, or as soon as ``stopping`` is set."""
        if stopping is None:
            await self._open.wait()
            return
        opened = asyncio.ensure_future(self._open.wait())
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({opened, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            stopped.cancel()

    async def holds(self, error: BaseException) -> bool:
        """True when ``error`` is the database's: the gate is closed and the caller waits and tries again.

        A bare network error could be the handler's own call to some other server, so it counts
        as the database's only if the database does not answer a probe either.
        """
        if self.paused:
            return True
        if not database_unavailable(error) and (not network_failure(error) or await self._answers()):
            return False
        self._close(error)
        return True

    def _close(self, error: BaseException) -> None:
        if self.paused:
            return
        self._open.clear()
        self.pauses += 1
        metrics.DATABASE_PAUSED.labels(worker=self._name).set(1)
        log.warning(
            "database unavailable; pausing until it answers",
            extra={"worker": self._name, "error": f"{type(error).__name__}: {error}"[:300]},
        )
        self._prober = asyncio.create_task(self._probe_until_open(), name=f"{self._name}-database-probe")

    async def _answers(self) -> bool:
        try:
            async with asyncio.timeout(self._probe_timeout_s):
                await self._probe()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - any failure of the probe means the database does not answer yet
            return False
        return True

    async def _probe_until_open(self) -> None:
        started = time.monotonic()
        wait_s = self._first_wait_s
        while not await self._answers():
            await asyncio.sleep(wait_s * random.uniform(0.8, 1.2))
            wait_s = min(wait_s * 2, self._max_wait_s)
        metrics.DATABASE_PAUSED.labels(worker=self._name).set(0)
        log.info("database answers again; resuming", extra={"worker": self._name, "paused_s": round(time.monotonic() - started, 2)})
        self._open.set()

    async def close(self) -> None:
        """Stop probing (at shutdown); waiters stay blocked and are cancelled with their tasks."""
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
