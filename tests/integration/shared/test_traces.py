"""One trace for a report requested at the gateway, across HTTP, the outbox, the broker and SMTP.

The gateway, the reports service (with its relay and consumer) and the notifications service
run in this process against the real database and broker; an in-memory exporter keeps every
span they end.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr
from sqlalchemy import text

from gateway.main import build_app as build_gateway
from gateway.settings import GatewaySettings
from notifications_service.main import build_app as build_notifications
from notifications_service.settings import NotificationsSettings
from reports_service.main import build_app as build_reports
from reports_service.settings import ReportsSettings
from shared import tracing
from shared.db import create_engine
from shared.ports import free_port
from shared.testing.fixtures import eventually, serving, truncate_all, wait_until_consuming
from tests.integration.notifications_service.conftest import RecordingSmtp

KEY = "trace-test-key-1"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.install("traces-test", SimpleSpanProcessor(exporter))
    yield exporter
    tracing.uninstall()


def _chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    """The span and its ancestors, the span first."""
    chain = [span]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    return chain


async def test_a_report_requested_at_the_gateway_is_one_trace_down_to_the_smtp_send(
    spans: InMemorySpanExporter,
    smtp: RecordingSmtp,
    reports_db: str,
    notifications_database: str,
    broker_url: str,
    exchange_name: str,
) -> None:
    await truncate_all(notifications_database)
    common: dict[str, Any] = {"broker_url": broker_url, "events_exchange": exchange_name, "environment": "test", "log_json": False}
    reports = ReportsSettings(database_url=reports_db, outbox_poll_interval_s=0.2, **common)
    notifications = NotificationsSettings(
        database_url=notifications_database,
        smtp_port=smtp.port,
        reports_to="ops@example.com",
        dispatch_poll_interval_s=0.2,
        **common,
    )
    connection = await aio_pika.connect(broker_url)
    async with (
        connection,
        serving(build_reports(reports)) as reports_url,
        serving(build_notifications(notifications)) as notifications_url,
        httpx.AsyncClient(base_url=reports_url) as reports_api,
        httpx.AsyncClient(base_url=notifications_url) as notifications_api,
    ):
        await wait_until_consuming(reports_api)
        await wait_until_consuming(notifications_api)
        # a queue of the test's own on the events exchange sees report.requested as the relay sent it
        channel = await connection.channel()
        exchange = await channel.get_exchange(exchange_name)
        watch = await channel.declare_queue(exclusive=True)
        await watch.bind(exchange, "report.requested")
        gateway = GatewaySettings(
            reports_urls=(reports_url,),
            orders_urls=(f"http://127.0.0.1:{free_port()}",),
            scheduler_urls=(f"http://127.0.0.1:{free_port()}",),
            notifications_urls=(notifications_url,),
            api_keys=SecretStr(f"bi:{KEY}:analyst"),
            environment="test",
            log_json=False,
        )
        async with serving(build_gateway(gateway)) as gateway_url, httpx.AsyncClient(base_url=gateway_url) as api:
            day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
            answer = await api.post("/report/generate", params={"report_date": day}, headers={"X-API-Key": KEY, "traceparent": TRACEPARENT})
            assert answer.status_code == 202, answer.text
            await eventually(lambda: _true(len(smtp.messages) == 1), what="the report-generated mail at the SMTP server")

        # the outbox row kept the trace of the request that wrote it
        engine = create_engine(reports_db, pool_size=1)
        try:
            async with engine.connect() as db:
                stored = await db.scalar(text("SELECT headers->>'traceparent' FROM outbox WHERE routing_key = 'report.requested'"))
        finally:
            await engine.dispose()
        assert stored is not None
        assert stored.split("-")[1] == TRACE_ID
        # and the message on the broker carries it on, as the relay's publish span
        message = await watch.get(timeout=5)
        sent = str(message.headers["traceparent"])
        assert sent.split("-")[1] == TRACE_ID

    async def smtp_span_ended() -> list[ReadableSpan]:
        return [span for span in spans.get_finished_spans() if span.name == "smtp send"]

    (send,) = await eventually(smtp_span_ended, what="the smtp send span")
    finished = spans.get_finished_spans()
    assert {format(span.context.trace_id, "032x") for span in finished} == {TRACE_ID}
    chain = _chain(send, {span.context.span_id: span for span in finished})
    assert [(span.kind, span.name.split(" ")[0]) for span in reversed(chain)] == [
        (SpanKind.SERVER, "POST"),  # the gateway, continuing the client's traceparent
        (SpanKind.CLIENT, "POST"),  # its call to the reports service
        (SpanKind.SERVER, "POST"),  # the reports API
        (SpanKind.PRODUCER, "publish"),  # the relay, from the outbox row
        (SpanKind.CONSUMER, "process"),  # report.requested, generating the report
        (SpanKind.PRODUCER, "publish"),  # report.generated
        (SpanKind.CONSUMER, "process"),  # the notifications service recording the notice
        (SpanKind.CLIENT, "smtp"),  # the dispatcher's send
    ]
    assert format(chain[-1].parent.span_id if chain[-1].parent else 0, "016x") == CLIENT_SPAN
    assert [span.name for span in chain if span.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER)] == [
        "process report.generated",
        "publish report.generated",
        "process report.requested",
        "publish report.requested",
    ]
    assert sent == _traceparent_of(chain[4])  # the message's traceparent names the publish span


def _traceparent_of(span: ReadableSpan) -> str:
    return f"00-{format(span.context.trace_id, '032x')}-{format(span.context.span_id, '016x')}-01"


async def _true(value: bool) -> bool:
    return value
