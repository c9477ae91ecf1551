"""A gateway in front of fault upstream processes, with a clock the tests can move forward."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gateway.discovery import resolve_system
from gateway.main import build_app
from gateway.settings import GatewaySettings
from shared.ports import free_port
from shared.testing.fixtures import serving
from tests.integration.gateway.faults import UpstreamProcess

KEY = "test-key-123"
OTHER_KEY = "other-key-456"
HEADERS = {"X-API-Key": KEY}


class ShiftableClock:
    """Real monotonic time plus an offset the test moves forward (breaker open periods)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(scope="module")
async def upstreams() -> AsyncIterator[list[UpstreamProcess]]:
    processes = [UpstreamProcess(), UpstreamProcess()]
    for process in processes:
        await process.start()
    yield processes
    for process in processes:
        await process.stop()


@pytest.fixture
async def upstream(upstreams: list[UpstreamProcess]) -> UpstreamProcess:
    """The first fault upstream, running, in mode ``ok``, with its call counts reset."""
    for process in upstreams:
        if not process.running:
            await process.start()
        async with httpx.AsyncClient() as client:
            await client.post(f"{process.url}/_reset")
    return upstreams[0]


GatewayFactory = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, ShiftableClock]]]


@pytest.fixture
def gateway_for() -> GatewayFactory:
    """``async with gateway_for(orders=[url], **settings) as (client, clock)``; unnamed upstreams point at a closed port."""

    @asynccontextmanager
    async def start(
        *,
        orders: list[str] | None = None,
        reports: list[str] | None = None,
        scheduler: list[str] | None = None,
        notifications: list[str] | None = None,
        **overrides: Any,
    ) -> AsyncIterator[tuple[httpx.AsyncClient, ShiftableClock]]:
        nowhere = f"http://127.0.0.1:{free_port()}"
        values: dict[str, Any] = {
            "orders_urls": tuple(orders or [nowhere]),
            "reports_urls": tuple(reports or [nowhere]),
            "scheduler_urls": tuple(scheduler or [nowhere]),
            "notifications_urls": tuple(notifications or [nowhere]),
            "api_keys": SecretStr(f"test:{KEY},other:{OTHER_KEY}"),
            "environment": "test",
            "log_json": False,
            "retry_base_delay_s": 0.01,
            "retry_max_delay_s": 0.05,
        }
        resolver = overrides.pop("resolver", resolve_system)
        settings = GatewaySettings(**(values | overrides))
        clock = ShiftableClock()
        async with (
            serving(build_app(settings, clock=clock, resolver=resolver)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            yield client, clock

    return start
