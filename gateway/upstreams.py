"""Route table: which path prefix goes to which upstream, and which instance takes the next call."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from gateway.breaker import BreakerPolicy, BreakerState, CircuitBreaker, Clock, Permit
from gateway.settings import UpstreamTimeouts
from shared import metrics

PREFIXES: dict[str, tuple[str, ...]] = {
    "orders": ("/orders", "/admin/orders"),
    "reports": ("/report", "/admin/reports"),
    "scheduler": ("/schedules", "/admin/scheduler"),
    "notifications": ("/notifications", "/admin/notifications"),
}


@dataclass(eq=False)
class Instance:
    upstream: str
    base_url: str
    breaker: CircuitBreaker


@dataclass(eq=False)
class Upstream:
    """One service behind the gateway; ``route`` is the label HTTP metrics use for it."""

    name: str
    prefixes: tuple[str, ...]
    instances: list[Instance]
    timeouts: UpstreamTimeouts
    policy: BreakerPolicy
    clock: Clock
    route: str = ""
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.route = f"{self.prefixes[0]}/*"

    def pick(self) -> tuple[Instance, Permit] | None:
        """Round-robin over the instances whose breaker lets a call through; None when every one refuses."""
        count = len(self.instances)
        start = next(self._turn)
        for offset in range(count):
            instance = self.instances[(start + offset) % count]
            permit = instance.breaker.acquire()
            if permit is not None:
                return instance, permit
        return None

    def replace_instances(self, base_urls: list[str]) -> tuple[list[str], list[str]]:
        """The instances become ``base_urls``: one already there keeps its breaker, a new one starts
        closed. One list is swapped in, so a ``pick`` under way sees the old list or the new one."""
        current = {instance.base_url: instance for instance in self.instances}
        if list(current) == base_urls:
            return [], []
        self.instances = [current.get(url) or new_instance(self.name, url, self.policy, self.clock) for url in base_urls]
        dropped = [url for url in current if url not in base_urls]
        for url in dropped:
            metrics.GATEWAY_BREAKER_STATE.remove(self.name, url)
        return [url for url in base_urls if url not in current], dropped

    def retry_after_s(self) -> int:
        """Whole seconds until the first open breaker half-opens (at least 1)."""
        return max(1, math.ceil(min(instance.breaker.retry_after_s() for instance in self.instances)))


class RouteTable:
    def __init__(self, upstreams: list[Upstream]) -> None:
        self.upstreams = upstreams
        self._by_prefix = sorted(((prefix, u) for u in upstreams for prefix in u.prefixes), key=lambda pair: -len(pair[0]))

    def match(self, path: str) -> Upstream | None:
        """``/orders`` and ``/orders/...`` match the orders upstream; ``/ordersx`` does not."""
        for prefix, upstream in self._by_prefix:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                return upstream
        return None


def build_route_table(
    urls: dict[str, tuple[str, ...]],
    timeouts: dict[str, UpstreamTimeouts],
    policy: BreakerPolicy,
    clock: Clock,
) -> RouteTable:
    upstreams = [
        Upstream(name, prefixes, [new_instance(name, url, policy, clock) for url in urls[name]], timeouts[name], policy, clock)
        for name, prefixes in PREFIXES.items()
    ]
    return RouteTable(upstreams)


def new_instance(upstream: str, base_url: str, policy: BreakerPolicy, clock: Clock) -> Instance:
    """An instance with a closed breaker whose state its gauge follows."""
    gauge = metrics.GATEWAY_BREAKER_STATE.labels(upstream, base_url)
    gauge.set(BreakerState.CLOSED)
    return Instance(upstream, base_url, CircuitBreaker(policy, clock=clock, on_change=gauge.set))
