"""A server span per request, continuing the caller's ``traceparent``: the ASGI instrumentation of OpenTelemetry."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.metrics import NoOpMeterProvider

from shared import tracing

# probes and scrapers call these every few seconds; a trace of each would bury the requests
UNTRACED_PATHS = "/health,/metrics"


def trace_requests(app: FastAPI) -> None:
    """Add the middleware outermost, when tracing is on (``shared.tracing``); nothing otherwise.

    Its HTTP metrics stay off (the suite's own are ``shared.web.metrics``), and so do its
    spans for each ``receive`` and ``send`` of the body."""
    provider = tracing.provider()
    if provider is None:
        return
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=UNTRACED_PATHS,
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),
        exclude_spans=["receive", "send"],
    )
