"""Upstream discovery against an in-memory zone: which instances a set of answers makes, and what they keep."""

from __future__ import annotations

import pytest

from gateway.breaker import BreakerPolicy, BreakerState
from gateway.discovery import UpstreamDiscovery, with_address
from gateway.settings import UpstreamTimeouts
from gateway.upstreams import PREFIXES, RouteTable, build_route_table


class Zone:
    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records

    async def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.records:
            raise OSError(f"{host}: name not known")
        return self.records[host]


def _routes(orders: tuple[str, ...]) -> tuple[RouteTable, dict[str, tuple[str, ...]]]:
    urls = {name: ("http://10.0.0.9:1",) for name in PREFIXES} | {"orders": orders}
    policy = BreakerPolicy(window=4, min_calls=2, failure_rate=0.5, open_s=10, half_open_calls=1)
    return build_route_table(urls, {name: UpstreamTimeouts() for name in PREFIXES}, policy, lambda: 0.0), urls


def _orders(routes: RouteTable) -> list[str]:
    return [instance.base_url for instance in routes.upstreams[0].instances]


async def test_a_name_becomes_one_instance_per_address_and_an_address_url_stays_as_it_is() -> None:
    routes, urls = _routes(("http://orders:8001", "http://10.0.0.7:8001"))
    await UpstreamDiscovery(routes, urls, resolver=Zone({"orders": ["10.1.0.1", "10.1.0.2"]}).resolve).refresh()
    assert _orders(routes) == ["http://10.1.0.1:8001", "http://10.1.0.2:8001", "http://10.0.0.7:8001"]
    assert [instance.base_url for instance in routes.upstreams[1].instances] == ["http://10.0.0.9:1"]


async def test_an_address_that_stays_keeps_its_breaker_and_a_new_one_starts_closed() -> None:
    routes, urls = _routes(("http://orders:8001",))
    zone = Zone({"orders": ["10.1.0.1", "10.1.0.2"]})
    discovery = UpstreamDiscovery(routes, urls, resolver=zone.resolve)
    await discovery.refresh()
    staying = routes.upstreams[0].instances[0]
    while (permit := staying.breaker.acquire()) is not None:
        staying.breaker.record(permit, success=False)
    assert staying.breaker.state is BreakerState.OPEN
    zone.records["orders"] = ["10.1.0.1", "10.1.0.3"]
    await discovery.refresh()
    kept, joined = routes.upstreams[0].instances
    assert kept is staying
    assert kept.breaker.state is BreakerState.OPEN
    assert joined.base_url == "http://10.1.0.3:8001"
    assert joined.breaker.state is BreakerState.CLOSED


async def test_a_name_that_does_not_resolve_keeps_its_last_addresses_or_itself() -> None:
    routes, urls = _routes(("http://orders:8001",))
    zone = Zone({})
    discovery = UpstreamDiscovery(routes, urls, resolver=zone.resolve)
    await discovery.refresh()
    assert _orders(routes) == ["http://orders:8001"], "never resolved: the name itself, which the connector looks up"
    zone.records["orders"] = ["10.1.0.1"]
    await discovery.refresh()
    zone.records["orders"] = []
    await discovery.refresh()
    del zone.records["orders"]
    await discovery.refresh()
    assert _orders(routes) == ["http://10.1.0.1:8001"]


@pytest.mark.parametrize(
    ("url", "address", "expected"),
    [
        ("http://orders:8001", "10.0.0.1", "http://10.0.0.1:8001"),
        ("https://orders", "10.0.0.1", "https://10.0.0.1"),
        ("http://orders:8001/base", "fd00::1", "http://[fd00::1]:8001/base"),
    ],
)
def test_the_address_replaces_the_host_only(url: str, address: str, expected: str) -> None:
    assert with_address(url, address) == expected
