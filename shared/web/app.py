"""``create_app``: the same health, metrics, request ids and errors for every service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from shared.web import health
from shared.web.caller import CallerMiddleware
from shared.web.errors import install_error_handlers
from shared.web.metrics import MetricsMiddleware, metrics_endpoint
from shared.web.problem_docs import document_problems
from shared.web.request_id import RequestIdMiddleware
from shared.web.tracing import trace_requests


def create_app(
    *,
    title: str,
    service_name: str,
    routers: Sequence[APIRouter],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]],
    description: str = "",
    version: str = "1.0.0",
    internal_token: str | None = None,
) -> FastAPI:
    # no redirects: behind the gateway, a Location built from the request would name the service's own address
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan, redirect_slashes=False)
    app.state.service_name = service_name
    app.state.health_checks = []
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    app.include_router(health.router)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    _document_errors_as_problems(app)
    # the last middleware added is the outermost: the trace wraps request ids, which wrap metrics, the caller (and token check) and the app
    app.add_middleware(CallerMiddleware, token=internal_token)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    trace_requests(app)
    return app


def _document_errors_as_problems(app: FastAPI) -> None:
    """The document lists every error status with the shape the handlers send (FastAPI's "extending OpenAPI")."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = document_problems(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
