"""Traces across HTTP and AMQP: the W3C trace context taken in, carried through the outbox and the broker, continued.

The chain of one report: the gateway's server span and its call to the service, the
service's server span, the event's publish span as the outbox row is written (its
``traceparent`` in the row's headers, which the relay sends as AMQP headers), the consumer's
span for that message (a child of the publish), and so on for the events it emits, down to
the notification's SMTP send. A batch of several messages is one consumer span linked to
each message's publish (OpenTelemetry's messaging conventions for batches): a span per
message costs more than the consumer's own work for it.

Tracing is on when an exporter is configured by the standard variables: OTLP over HTTP
when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set,
``OTEL_TRACES_EXPORTER=console`` for stdout, ``none`` for nothing. The SDK reads the rest
(``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, the exporter's headers and timeouts). Off, nothing here runs
on the hot paths: no spans are made and no context is written, and a client's
``traceparent`` passes the gateway unchanged.

The provider is this module's own rather than the global one, so that a test can install
an in-memory exporter and take it away again.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACE_HEADERS = ("traceparent", "tracestate")
PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-.*)?")
_TRACE_FLAGS = {format(flags, "02x"): TraceFlags(flags) for flags in range(256)}  # by their two hex digits
INSTRUMENTATION = "order_reporting_suite"

_provider: TracerProvider | None = None
_tracer: Tracer | None = None


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads AMQP headers and ASGI-decoded mappings alike: a value may come as bytes."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        return [value.decode("latin-1") if isinstance(value, bytes) else str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


def exporter_from_environment() -> SpanExporter | None:
    """The exporter the standard variables name, or None (tracing off)."""
    name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if name == "none":
        return None
    if name == "console":
        return ConsoleSpanExporter()
    if name not in ("", "otlp"):
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: the suite exports otlp, console or none")
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure(service_name: str) -> bool:
    """Tracing for this process as the environment asks; whether it is on."""
    exporter = exporter_from_environment()
    if exporter is not None:
        install(service_name, BatchSpanProcessor(exporter))
    return exporter is not None


def install(service_name: str, processor: SpanProcessor) -> TracerProvider:
    """Tracing on, spans going to ``processor``; ``OTEL_SERVICE_NAME`` names the service when set."""
    global _provider, _tracer
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER (parent-based, always on by default)
    provider.add_span_processor(processor)
    _provider, _tracer = provider, provider.get_tracer(INSTRUMENTATION)
    return provider


def uninstall() -> None:
    """Tracing off again, after every span has been handed to its processor."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def tracer() -> Tracer | None:
    """The tracer while tracing is on; None otherwise (and nothing should be traced)."""
    return _tracer


def provider() -> TracerProvider | None:
    return _provider


def inject(carrier: MutableMapping[str, Any], context: Context | None = None) -> None:
    """``traceparent`` (and ``tracestate``) of the current span, or of ``context``, into ``carrier``."""
    PROPAGATOR.inject(carrier, context=context)


def extract(headers: Mapping[str, Any] | None) -> Context:
    """The context a message's or request's ``traceparent`` names (an empty one without it)."""
    return PROPAGATOR.extract(headers or {}, getter=_GETTER)


def published(routing_key: str, message_id: str, headers: dict[str, Any] | None) -> dict[str, Any]:
    """The headers of an event being written to the outbox, with the ``traceparent`` of its publish: a
    producer span, a child of the current span (a new trace when there is none, as for a scheduled fire)."""
    assert _tracer is not None
    span = _tracer.start_span(
        f"publish {routing_key}",
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "rabbitmq", "messaging.destination.name": routing_key, "messaging.message.id": message_id},
    )
    carried = dict(headers or {})
    inject(carried, trace.set_span_in_context(span))
    span.end()
    return carried


def remote_parent(headers: Mapping[str, Any] | None) -> SpanContext | None:
    """The span a message's ``traceparent`` names, for a link; None without a valid one.

    One regular expression and two slices rather than the propagator (which builds a context
    around it): a consumer reads one per message of every batch. The checks are the W3C format's."""
    value = headers.get("traceparent") if headers else None
    if value is None:
        return None
    if value.__class__ is not str:
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    flags = _TRACE_FLAGS.get(value[53:55])
    if flags is None or _TRACEPARENT.fullmatch(value) is None or value[:2] == "ff" or (len(value) != 55 and value[:2] == "00"):
        return None
    trace_id, span_id = int(value[3:35], 16), int(value[36:52], 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, True, flags)


def current_carrier() -> dict[str, str] | None:
    """The trace headers of the current span, for work stored now and done later (a mail the
    dispatcher sends continues the span that recorded it); None outside any trace."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier or None


@contextlib.contextmanager
def child_span(name: str, headers: Mapping[str, Any] | None, kind: SpanKind, **attributes: Any) -> Iterator[Span | None]:
    """A span whose parent is the context in ``headers``, current while the block runs; None while tracing is off."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, context=extract(headers), kind=kind, attributes=attributes) as span:
        yield span


def failed(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))


def current_ids() -> tuple[str | None, str | None]:
    """(trace id, span id) of the current span in hex, for the logs; (None, None) outside any trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
