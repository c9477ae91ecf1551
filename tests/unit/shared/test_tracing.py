"""Tracing is on only when the standard variables name an exporter; the W3C context round-trips through headers."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import tracing

VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_without_an_endpoint_or_exporter_tracing_stays_off() -> None:
    assert tracing.exporter_from_environment() is None
    assert tracing.configure("orders") is False
    assert tracing.tracer() is None


def test_an_otlp_endpoint_turns_it_on_and_none_keeps_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert isinstance(tracing.exporter_from_environment(), OTLPSpanExporter)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert tracing.exporter_from_environment() is None
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert isinstance(tracing.exporter_from_environment(), ConsoleSpanExporter)


def test_an_exporter_the_suite_does_not_ship_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="'zipkin': the suite exports otlp, console or none"):
        tracing.exporter_from_environment()


def test_a_child_span_continues_the_traceparent_of_its_headers_and_names_itself_in_them() -> None:
    exporter = InMemorySpanExporter()
    tracing.install("orders", SimpleSpanProcessor(exporter))
    try:
        incoming = {"traceparent": b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}  # AMQP may give bytes
        with tracing.child_span("work", incoming, SpanKind.CONSUMER) as span:
            assert span is not None
            carried: dict[str, str] = {}
            tracing.inject(carried)
    finally:
        tracing.uninstall()
    (ended,) = exporter.get_finished_spans()
    assert format(ended.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ended.parent is not None
    assert format(ended.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert carried["traceparent"] == f"00-4bf92f3577b34da6a3ce929d0e0e4736-{format(ended.context.span_id, '016x')}-01"


def test_while_off_a_child_span_is_nothing() -> None:
    with tracing.child_span("work", {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, SpanKind.CLIENT) as span:
        assert span is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1)),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 0)),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later", (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1)),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", None),  # version 00 has four parts
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),
        ("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", None),
        ("00-4bf92f35-00f067aa0ba902b7-01", None),
        ("", None),
    ],
)
def test_a_link_reads_the_traceparent_as_the_propagator_would(value: str | bytes, expected: tuple[int, int, int] | None) -> None:
    found = tracing.remote_parent({"traceparent": value})
    assert (None if found is None else (found.trace_id, found.span_id, int(found.trace_flags))) == expected
    extracted = trace.get_current_span(tracing.extract({"traceparent": value})).get_span_context()
    assert extracted.is_valid == (expected is not None)
