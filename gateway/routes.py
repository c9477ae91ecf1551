"""The gateway's own endpoints: aggregated health, the merged API docs, metrics."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gateway.auth import Client, presented_key
from gateway.openapi import OpenApiCache
from gateway.proxy import Gateway
from gateway.upstreams import Instance, RouteTable
from shared.web.errors import error_response
from shared.web.metrics import metrics_endpoint as shared_metrics_endpoint

router = APIRouter()

Status = Literal["healthy", "degraded", "unhealthy"]


async def instance_health(client: httpx.AsyncClient, instance: Instance, timeout_s: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"url": instance.base_url, "breaker": instance.breaker.state.name.lower()}
    try:
        response = await client.get(f"{instance.base_url}/health/ready", timeout=timeout_s)
        body = response.json()
        entry["status"] = body.get("status", "unhealthy")
        entry["checks"] = body.get("checks", {})
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        entry["status"] = "unreachable"
        entry["error"] = f"{type(exc).__name__}: {exc}"[:200]
    return entry


def upstream_status(instances: list[dict[str, Any]]) -> Status:
    """Healthy when every instance is; degraded while at least one still serves; else unhealthy."""
    serving = [i for i in instances if i["status"] in ("healthy", "degraded") and i["breaker"] != "open"]
    if not serving:
        return "unhealthy"
    if len(serving) == len(instances) and all(i["status"] == "healthy" for i in instances):
        return "healthy"
    return "degraded"


async def aggregate_health(routes: RouteTable, client: httpx.AsyncClient, timeout_s: float) -> tuple[Status, dict[str, Any]]:
    probes = [[instance_health(client, instance, timeout_s) for instance in upstream.instances] for upstream in routes.upstreams]
    results = await asyncio.gather(*(asyncio.gather(*group) for group in probes))
    services: dict[str, Any] = {}
    overall: Status = "healthy"
    for upstream, instances in zip(routes.upstreams, results, strict=True):
        status = upstream_status(list(instances))
        services[upstream.name] = {"status": status, "instances": list(instances)}
        if status == "unhealthy":
            overall = "unhealthy"
        elif status == "degraded" and overall == "healthy":
            overall = "degraded"
    return overall, services


@router.get("/health/live", tags=["health"])
async def live() -> dict[str, str]:
    return {"status": "alive"}


def _caller(request: Request) -> Client | None:
    """The client whose key the request carries (the gateway's own endpoints are off the proxy's hot path)."""
    headers = request.headers
    gateway: Gateway = request.app.state.gateway
    key = presented_key(headers.get("authorization", "").encode("latin-1"), headers.get("x-api-key", "").encode("latin-1"))
    return gateway.api_keys.client_for(key)


def _is_operator(request: Request) -> bool:
    client = _caller(request)
    return client is not None and "operator" in client.roles


@router.get("/health/ready", tags=["health"])
async def ready(request: Request) -> JSONResponse:
    """The gateway's own readiness: it answers once it can proxy, whatever its upstreams' state.

    A load balancer (a Kubernetes Service) takes a gateway out of rotation on this answer; were
    it the suite's, one service down would take every gateway out at once, and the routes of the
    other services with them. A service that is down is the breaker's and ``/health``'s matter.
    """
    gateway: Gateway = request.app.state.gateway
    if not gateway.is_open:
        return JSONResponse({"status": "unhealthy", "service": "gateway"}, status_code=503)
    return JSONResponse({"status": "healthy", "service": "gateway"})


@router.get("/health", tags=["health"])
async def health(request: Request) -> JSONResponse:
    """The suite's health; each service's instances, breakers and errors only for an operator's key."""
    state = request.app.state
    status, services = await aggregate_health(state.routes, state.http, state.settings.health_timeout_s)
    body: dict[str, Any] = {"status": status, "service": "gateway"}
    if _is_operator(request):
        body["services"] = services
    return JSONResponse(body, status_code=503 if status == "unhealthy" else 200)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    cache: OpenApiCache = request.app.state.openapi
    return JSONResponse(await cache.document())


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Order-reporting suite API")


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics, which name every instance: an operator's key (scrape with a bearer token)."""
    client = _caller(request)
    if client is None:
        return error_response(request, 401, "an operator's API key is required", headers={"WWW-Authenticate": 'Bearer realm="api"'})
    if "operator" not in client.roles:
        return error_response(request, 403, f"GET /metrics needs the operator role; client {client.name!r} has {client.roles_header}")
    routes: RouteTable = request.app.state.routes
    for upstream in routes.upstreams:
        for instance in upstream.instances:
            _ = instance.breaker.state  # an open breaker whose time is up reports half-open
    return await shared_metrics_endpoint(request)
