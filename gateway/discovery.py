"""Upstream instances from DNS: one name (a Kubernetes headless Service, a compose service) stands for
every address it resolves to, and each address is an instance with its own breaker and health entry.

Without this, a name with several replicas is one instance to the gateway: one breaker for all of
them, so one broken replica opens it for the healthy ones, and ``/health`` cannot say which replica
is down. The name is resolved again every ``GATEWAY_RESOLVE_EVERY_S``; an address that stays keeps its
instance and breaker, a new one starts closed, a gone one is dropped. While a name does not
resolve (DNS away, every replica unready) the addresses it last had stay, so an outage of DNS
is not an outage of the suite. URLs whose host is an IP address are taken as they are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from gateway.upstreams import RouteTable

log = logging.getLogger(__name__)

# the addresses a host name resolves to, for a TCP connection to ``port``
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_system(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host`` (what ``/etc/resolv.conf`` and ``/etc/hosts`` say), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def with_address(url: str, address: str) -> str:
    """``url`` with its host replaced by ``address`` (bracketed when IPv6), port and path kept."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class UpstreamDiscovery:
    """Keeps each upstream's instances equal to the addresses its configured URLs resolve to."""

    def __init__(self, routes: RouteTable, urls: dict[str, tuple[str, ...]], *, resolver: Resolver = resolve_system) -> None:
        self._routes = routes
        self._urls = urls
        self._resolver = resolver
        # what each configured URL stood for at the last resolution that answered
        self._last: dict[str, list[str]] = {url: [url] for configured in urls.values() for url in configured}

    async def refresh(self) -> None:
        """Resolve every name once and bring the instances in line; never raises for DNS."""
        for upstream in self._routes.upstreams:
            wanted: list[str] = []
            for url in self._urls[upstream.name]:
                wanted += await self._expand(url)
            added, dropped = upstream.replace_instances(list(dict.fromkeys(wanted)))
            if added or dropped:
                log.info("upstream instances changed", extra={"upstream": upstream.name, "added": added, "dropped": dropped})

    async def _expand(self, url: str) -> list[str]:
        parts = urlsplit(url)
        host = parts.hostname
        if host is None or is_address(host):
            return [url]
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await self._resolver(host, port)
        except OSError as exc:
            log.warning("upstream name did not resolve; its last addresses stay", extra={"url": url, "error": str(exc)})
            return self._last[url]
        if not addresses:
            return self._last[url]
        self._last[url] = [with_address(url, address) for address in addresses]
        return self._last[url]
