"""One JSON object per log line, with the fields a log pipeline indexes on."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import tracing
from shared.correlation import correlation_id
from shared.logging import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_a_json_line_names_the_service_the_level_the_logger_and_the_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("reports_service", "INFO", json=True)
    token = correlation_id.set("req-42")
    try:
        logging.getLogger("reports_service.handlers").warning("report generated", extra={"report_date": "2026-03-11"})
    finally:
        correlation_id.reset(token)
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["service"] == "reports_service"
    assert record["level"] == "WARNING"
    assert record["logger"] == "reports_service.handlers"
    assert record["message"] == "report generated"
    assert record["correlation_id"] == "req-42"
    assert record["report_date"] == "2026-03-11"
    assert record["time"]


@pytest.mark.usefixtures("restored_logging")
def test_below_the_level_nothing_is_written_and_the_plain_format_stays_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("orders_service", "WARNING", json=False)
    logging.getLogger("orders_service").info("not shown")
    logging.getLogger("orders_service").error("shown")
    (line,) = capsys.readouterr().out.splitlines()
    assert "ERROR [orders_service None] orders_service: shown" in line


@pytest.mark.usefixtures("restored_logging")
def test_a_line_written_inside_a_span_names_its_trace_and_span(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("reports_service", "INFO", json=True)
    tracing.install("reports_service", SimpleSpanProcessor(InMemorySpanExporter()))
    try:
        traced = tracing.tracer()
        assert traced is not None
        with traced.start_as_current_span("work") as span:
            logging.getLogger("reports_service").info("inside")
        logging.getLogger("reports_service").info("outside")
    finally:
        tracing.uninstall()
    inside, outside = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    context = span.get_span_context()
    assert (inside["trace_id"], inside["span_id"]) == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    assert (outside["trace_id"], outside["span_id"]) == (None, None)
