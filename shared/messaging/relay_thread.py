"""The outbox relay on an event loop of its own, in a thread of the service's process.

Why not on the service's loop: every publish takes at least one loop iteration (aiormq
hands its channel lock from one publishing task to the next through the loop, and its
write queue holds ten frames). While HTTP requests keep the service's loop busy, each
iteration is long, and the relay published several times slower than requests committed:
the outbox grew for as long as the load lasted and the order -> report lag grew with it.
On its own loop the relay runs whenever it holds the
interpreter, which a thread gets at least every switch interval (5 ms), however busy the
HTTP side is. Its database pool and broker connection live on that loop too, so nothing
crosses threads but the stop signal and the ``connected`` flag that readiness reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import uvloop
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.messaging.outbox import OutboxRelay
from shared.messaging.publisher import BrokerUnavailable, Publisher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RelayParts:
    engine: AsyncEngine
    publisher: Publisher
    relay: OutboxRelay


class RelayThread:
    """Starts and stops a relay built by ``build`` (called on the thread's own loop)."""

    def __init__(self, build: Callable[[], RelayParts], *, start_timeout_s: float = 10.0) -> None:
        self._build = build
        self._start_timeout_s = start_timeout_s
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._publisher: Publisher | None = None
        self._build_error: BaseException | None = None

    @property
    def connected(self) -> bool:
        """Whether the relay's broker connection is up (readiness)."""
        return self._publisher is not None and self._publisher.connected

    async def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()
        if not await asyncio.to_thread(self._ready.wait, self._start_timeout_s):
            raise RuntimeError("the outbox relay thread did not start")
        if self._build_error is not None:
            raise RuntimeError("the outbox relay could not be built") from self._build_error

    async def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            parts = self._build()
        except Exception as error:  # noqa: BLE001 - handed to start(), which raises it in the service
            self._build_error = error
            self._ready.set()
            return
        self._publisher = parts.publisher
        self._ready.set()
        try:
            with contextlib.suppress(BrokerUnavailable):
                await parts.publisher.connect()
            parts.relay.start()
            await self._stopping.wait()
            await parts.relay.stop()
        except Exception:
            log.exception("the outbox relay stopped on an error")
        finally:
            await parts.publisher.close()
            await parts.engine.dispose()
