"""Events that another service forged, or whose address would add a mail header, are parked with the reason and mail nobody."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
from sqlalchemy import insert

from notifications_service.models import notifications
from notifications_service.settings import NotificationsSettings
from shared.db import create_engine
from shared.testing.broker import drain
from shared.testing.fixtures import eventually
from tests.integration.notifications_service.conftest import RecordingSmtp, notifications_client
from tests.integration.reports_service.conftest import order_created

INJECTED = "ada@example.com\r\nBcc: everyone@example.org"


async def _parked(
    broker_url: str, exchange_name: str, body: bytes, *, publish_as: str | None = None
) -> aio_pika.abc.AbstractIncomingMessage:
    """Publish ``body`` as ``order.created`` (as the user of ``publish_as``, if given) and read it from the DLQ."""
    async with await aio_pika.connect(publish_as or broker_url) as connection:
        exchange = await (await connection.channel()).get_exchange(exchange_name)
        await exchange.publish(aio_pika.Message(body), routing_key="order.created")
    async with await aio_pika.connect(broker_url) as connection:
        dlq = await (await connection.channel()).declare_queue("notifications.order.created.dlq", passive=True)
        (parked,) = await drain(dlq, 1, timeout_s=10)
    return parked


async def test_an_order_event_from_another_service_is_parked_and_mails_nobody(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, broker_url: str, exchange_name: str
) -> None:
    forged = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC)).model_copy(update={"source": "scheduler_service"})
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        parked = await _parked(broker_url, exchange_name, forged.to_json())
        assert (await client.get("/notifications")).json()["total"] == 0
    assert parked.headers["x-error-kind"] == "forbidden_source"
    assert parked.headers["x-error"] == "order.created from 'scheduler_service': only orders_service may publish it"
    assert smtp.messages == []


async def test_an_address_with_a_line_break_is_parked_and_adds_no_header(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, broker_url: str, exchange_name: str
) -> None:
    event = orjson.loads(order_created(datetime(2026, 3, 10, 12, tzinfo=UTC)).to_json())
    event["data"]["customer_email"] = INJECTED
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        parked = await _parked(broker_url, exchange_name, orjson.dumps(event))
        assert (await client.get("/notifications")).json()["total"] == 0
    assert parked.headers["x-error-kind"] == "malformed"
    assert "data.customer_email" in str(parked.headers["x-error"])
    assert smtp.messages == []


async def test_a_stored_notification_that_cannot_be_a_mail_ends_failed_and_is_never_sent(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, notifications_db: str
) -> None:
    """A row recorded before addresses were checked: the message builder refuses the line break, for good."""
    engine = create_engine(notifications_db, pool_size=1)
    async with engine.begin() as connection:
        await connection.execute(
            insert(notifications).values(
                id=uuid.uuid4(),
                event_id=uuid.uuid4(),
                kind="order_confirmation",
                recipient=INJECTED,
                subject="Order",
                body_text="t",
                body_html="h",
            )
        )
    await engine.dispose()
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:

        async def failed() -> Any:
            page = (await client.get("/notifications", params={"status": "failed"})).json()
            return page["items"][0] if page["items"] else None

        row = await eventually(failed, timeout_s=10, what="the notification ended failed")
    assert row["attempts"] == 1
    assert "not a mail that can be sent" in row["last_error"]
    assert "linefeed or carriage return" in row["last_error"]
    assert smtp.messages == []


async def test_the_service_runs_under_its_own_broker_user(
    make_settings: Callable[..., NotificationsSettings],
    smtp: RecordingSmtp,
    broker_url: str,
    exchange_name: str,
    broker_users: dict[str, str],
) -> None:
    """Declaring its queues, consuming, and parking through its requeue exchange: all within its own permissions."""
    async with notifications_client(make_settings(smtp_port=smtp.port, broker_url=broker_users["notifications"])) as client:
        malformed = b'{"type": "order.created", "data": {}}'
        parked = await _parked(broker_url, exchange_name, malformed, publish_as=broker_users["orders"])
        assert parked.headers["x-error-kind"] == "malformed"
        good = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC))
        async with await aio_pika.connect(broker_users["orders"]) as connection:
            exchange = await (await connection.channel()).get_exchange(exchange_name)
            await exchange.publish(aio_pika.Message(good.to_json()), routing_key="order.created")

        async def sent() -> bool:
            return bool((await client.get("/notifications", params={"status": "sent"})).json()["total"] == 1)

        await eventually(sent, what="the confirmation, consumed under the notifications user")
    assert [message["To"] for message in smtp.messages] == ["ada@example.com"]
