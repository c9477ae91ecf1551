"""``GATEWAY_RESOLVE_EVERY_S``: a name that resolves to several addresses (a headless Service) is one
instance per address, each with its own breaker and health entry, and follows the name as it changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.ports import free_port
from shared.testing.fixtures import eventually
from tests.integration.gateway.conftest import HEADERS, GatewayFactory
from tests.integration.gateway.faults import UpstreamProcess

NAME = "orders.suite.svc.cluster.local"


class Zone:
    """The DNS answers the test gives: a name's A records, changed as pods come and go."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.questions = 0

    async def resolve(self, host: str, port: int) -> list[str]:
        self.questions += 1
        if host not in self.records:
            raise OSError(f"{host}: name not known")
        return list(self.records[host])


@pytest.fixture
async def pods() -> AsyncIterator[list[UpstreamProcess]]:
    """Three upstream processes on one port, each on its own loopback address, as a Service's pods are."""
    port = free_port()
    processes = [UpstreamProcess(host=f"127.0.0.{n}", port=port) for n in (2, 3, 4)]
    for process in processes:
        await process.start()
    yield processes
    for process in processes:
        await process.stop()


async def test_each_resolved_address_is_an_instance_and_the_set_follows_the_name(
    pods: list[UpstreamProcess], gateway_for: GatewayFactory
) -> None:
    zone = Zone()
    first, second, third = pods
    zone.records[NAME] = [first.host, second.host]
    async with gateway_for(orders=[f"http://{NAME}:{first.port}"], resolver=zone.resolve, resolve_every_s=0.1) as (client, _):

        async def instances() -> list[str]:
            health = (await client.get("/health", headers=HEADERS)).json()
            return sorted(instance["url"] for instance in health["services"]["orders"]["instances"])

        async def are(expected: list[str]) -> bool:
            return await instances() == sorted(expected)

        await eventually(lambda: are([first.url, second.url]), timeout_s=10, what="both addresses as instances")
        served = [(await client.get("/orders", headers=HEADERS)).status_code for _ in range(10)]
        spread = [(await pod.calls()).get("GET /orders", 0) for pod in (first, second)]

        # one pod breaks: only its own entry says so, and the other still serves every call
        await second.stop()
        health = (await client.get("/health", headers=HEADERS)).json()["services"]["orders"]
        while_down = [(await client.get("/orders", headers=HEADERS)).status_code for _ in range(10)]

        # the Service's endpoints change: the broken pod leaves, a new one joins
        zone.records[NAME] = [first.host, third.host]
        await eventually(lambda: are([first.url, third.url]), timeout_s=10, what="the new set of addresses")
        after = [(await client.get("/orders", headers=HEADERS)).status_code for _ in range(10)]
        third_calls = (await third.calls()).get("GET /orders", 0)

        # DNS stops answering: the last addresses stay
        del zone.records[NAME]
        asked = zone.questions
        await eventually(lambda: _asked_since(zone, asked), timeout_s=10, what="the name asked again")
        kept = await instances()
        still = (await client.get("/orders", headers=HEADERS)).status_code

    assert served == [200] * 10
    assert spread == [5, 5]
    assert health["status"] == "degraded"
    assert {instance["url"]: instance["status"] for instance in health["instances"]} == {first.url: "healthy", second.url: "unreachable"}
    assert while_down == [200] * 10
    assert after == [200] * 10
    assert third_calls == 5
    assert kept == sorted([first.url, third.url])
    assert still == 200


async def _asked_since(zone: Zone, asked: int) -> bool:
    return zone.questions > asked + 1
