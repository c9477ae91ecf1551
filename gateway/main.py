"""Composition of the gateway: route table, keys, limits and the proxy in front of its own endpoints.

Run: ``python -m gateway.main``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from gateway.auth import ApiKeys
from gateway.breaker import BreakerPolicy, Clock
from gateway.console.app import build_console
from gateway.discovery import Resolver, UpstreamDiscovery, resolve_system
from gateway.openapi import OpenApiCache
from gateway.proxy import Gateway, ProxyMiddleware
from gateway.rate_limit import RateLimiter
from gateway.retry import RetryPolicy
from gateway.routes import router
from gateway.settings import GatewaySettings
from gateway.upstreams import PREFIXES, build_route_table
from shared.serve import serve
from shared.settings import load_settings
from shared.web.errors import install_error_handlers
from shared.web.metrics import MetricsMiddleware
from shared.web.request_id import RequestIdMiddleware
from shared.web.tracing import trace_requests
from shared.workers import Periodic

TITLE = "Order-reporting suite API"
VERSION = "1.0.0"


def build_app(settings: GatewaySettings | None = None, *, clock: Clock = time.monotonic, resolver: Resolver = resolve_system) -> FastAPI:
    """``resolver``: where upstream names are looked up when ``GATEWAY_RESOLVE_EVERY_S`` is set (the system's)."""
    settings = settings or load_settings(GatewaySettings)
    routes = build_route_table(
        settings.upstream_urls(),
        {name: settings.timeouts_for(name) for name in PREFIXES},
        BreakerPolicy(
            window=settings.breaker_window,
            min_calls=settings.breaker_min_calls,
            failure_rate=settings.breaker_failure_rate,
            open_s=settings.breaker_open_s,
            half_open_calls=settings.breaker_half_open_calls,
        ),
        clock,
    )
    internal_token = settings.internal_token_value
    gateway = Gateway(
        routes,
        ApiKeys(settings.client_keys()),
        RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst, clock=clock),
        RetryPolicy(
            attempts=settings.retry_attempts,
            base_delay_s=settings.retry_base_delay_s,
            max_delay_s=settings.retry_max_delay_s,
            deadline_s=settings.request_deadline_s,
        ),
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        connections_per_instance=settings.connections_per_instance,
        internal_token=internal_token,
        auth_failures=RateLimiter(
            settings.auth_failures_per_s, settings.auth_failures_burst, clock=clock, max_keys=settings.auth_failure_addresses
        ),
    )

    discovery = (
        Periodic(
            "upstream-discovery",
            UpstreamDiscovery(routes, settings.upstream_urls(), resolver=resolver).refresh,
            every_s=settings.resolve_every_s,
        )
        if settings.resolve_every_s > 0
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.open()
        if discovery is not None:
            discovery.start()
        token_header = {"X-Internal-Token": internal_token} if internal_token else {}
        async with httpx.AsyncClient(timeout=settings.health_timeout_s, headers=token_header) as http:
            app.state.http = http
            app.state.openapi = OpenApiCache(routes, http, ttl_s=settings.openapi_cache_s, title=TITLE, version=VERSION)
            try:
                yield
            finally:
                if discovery is not None:
                    await discovery.stop()
                await gateway.close()

    app = FastAPI(title="Gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.routes = routes
    app.state.gateway = gateway
    install_error_handlers(app)
    app.include_router(router)
    # outermost last: the trace wraps request ids, which wrap metrics, which wrap the proxy, which wraps the gateway's own endpoints
    if settings.console_secret is not None:
        app.mount("/console", build_console(settings, app, gateway.api_keys))
    app.add_middleware(ProxyMiddleware, gateway=gateway)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    trace_requests(app)
    return app


if __name__ == "__main__":
    serve(build_app, GatewaySettings, None)
