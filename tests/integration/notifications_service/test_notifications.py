import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

import aio_pika
import httpx
import pytest

from notifications_service.settings import NotificationsSettings
from shared.contracts.orders import OrderCreated
from shared.contracts.reports import ReportFailed, ReportGenerated
from shared.messaging.envelope import Envelope
from shared.ports import free_port
from shared.testing import observed
from shared.testing.broker import drain
from shared.testing.fixtures import eventually
from tests.integration.notifications_service.conftest import RecordingSmtp, notifications_client
from tests.integration.reports_service.conftest import order_created


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    assert body is not None, f"no {subtype} part"
    content: str = body.get_content()
    return content


async def _notifications(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/notifications", params=params)).json()
    return body


async def _true(value: bool) -> bool:
    return value


def _order_for(customer_email: str) -> Envelope[OrderCreated]:
    event = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC))
    return event.model_copy(update={"data": event.data.model_copy(update={"customer_email": customer_email})})


async def _status_is(client: httpx.AsyncClient, status: str, total: int, **params: Any) -> bool:
    return bool((await _notifications(client, status=status, **params))["total"] == total)


async def test_an_order_confirmation_arrives_with_the_order(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, publish: Any
) -> None:
    event = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC), (2, 3))
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        await publish(event)
        await eventually(lambda: _status_is(client, "sent", 1), what="confirmation sent")
        listed = await _notifications(client, order_id=str(event.data.order_id))
    (message,) = smtp.messages
    order = event.data
    assert message["To"] == "ada@example.com"
    assert str(order.order_id) in message["Subject"]
    assert message["Message-ID"].strip() == f"<{event.id}@notifications.order-reporting>"  # long headers are folded
    text = _part(message, "plain")
    html = _part(message, "html")
    for item in order.items:
        assert f"{item.quantity} x {item.sku}" in text
        assert item.sku in html
    assert f"Total: {order.total_amount} EUR" in text
    assert listed["items"][0]["status"] == "sent"
    assert listed["items"][0]["attempts"] == 1


async def test_smtp_down_then_up_delivers_once(make_settings: Callable[..., NotificationsSettings], publish: Any) -> None:
    port = free_port()  # nothing listens here yet
    async with notifications_client(make_settings(smtp_port=port)) as client:
        await publish(order_created(datetime(2026, 3, 10, 12, tzinfo=UTC)))

        async def waiting() -> bool:
            page = await _notifications(client, status="pending")
            return bool(page["total"] == 1)

        await eventually(waiting, what="the notification waiting while SMTP is down")
        tried = observed.sends("server_unreachable")

        async def tried_again() -> bool:
            return observed.sends("server_unreachable") >= tried + 2

        await eventually(tried_again, what="the dispatcher trying the server again")
        (held,) = (await _notifications(client, status="pending"))["items"]
        assert held["attempts"] == 0, "an unreachable server spends no attempt of the message"
        server = RecordingSmtp(port)
        server.start()
        try:
            await eventually(lambda: _status_is(client, "sent", 1), what="delivered after recovery")
        finally:
            server.stop()
    assert len(server.messages) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the test server on 127.0.0.1 only
async def test_credentials_the_server_refuses_hold_the_mail_without_spending_its_attempts(
    make_settings: Callable[..., NotificationsSettings], publish: Any
) -> None:
    server = RecordingSmtp(free_port())
    server.start(password="right")
    try:
        settings = make_settings(smtp_port=server.port, smtp_username="shop", smtp_password="wrong")
        async with notifications_client(settings) as client:
            tried = observed.sends("server_unreachable")
            await publish(order_created(datetime(2026, 3, 10, 12, tzinfo=UTC)))

            async def refused_twice() -> bool:
                return observed.sends("server_unreachable") >= tried + 2

            await eventually(refused_twice, what="the dispatcher's logins refused, and tried again")
            (held,) = (await _notifications(client, status="pending"))["items"]
    finally:
        server.stop()
    assert held["attempts"] == 0, "a configuration the server refuses is not the message's failure"
    assert server.messages == []


async def test_a_550_ends_failed_with_the_reason_and_no_more_attempts(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, publish: Any
) -> None:
    event = _order_for("reject-me@example.com")
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        await publish(event)
        await eventually(lambda: _status_is(client, "failed", 1), what="failed notification")
        # a later order sent means the dispatcher has passed over the table since: the failed one was left alone
        await publish(order_created(datetime(2026, 3, 10, 13, tzinfo=UTC)))
        await eventually(lambda: _status_is(client, "sent", 1), what="the next order's confirmation")
        (failed,) = (await _notifications(client, status="failed"))["items"]
        detail = (await client.get(f"/notifications/{failed['id']}")).json()
    assert detail["attempts"] == 1
    assert "550" in detail["last_error"]
    assert "mailbox unavailable" in detail["last_error"]
    assert smtp.refused == ["reject-me@example.com"]
    assert [message["To"] for message in smtp.messages] == ["ada@example.com"]


async def test_a_451_is_tried_again_and_then_sent_once(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, publish: Any
) -> None:
    event = _order_for("greylist-me@example.com")
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        await publish(event)
        await eventually(lambda: _status_is(client, "sent", 1), what="sent after the greylisting")
        (sent,) = (await _notifications(client, status="sent"))["items"]
    assert sent["attempts"] == 2, "the 451 spent one attempt; the next one went through"
    assert sent["last_error"] is None
    assert smtp.refused == ["greylist-me@example.com"]
    assert [message["To"] for message in smtp.messages] == ["greylist-me@example.com"]


async def test_a_duplicated_event_sends_one_message(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, publish: Any
) -> None:
    event = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC))
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        acked = observed.acked("notifications.order.created")
        await publish(event, event, event)
        await eventually(lambda: _true(observed.acked("notifications.order.created") >= acked + 3), what="the three deliveries acked")
        await eventually(lambda: _status_is(client, "sent", 1), what="one sent")
        assert (await _notifications(client))["total"] == 1
    assert len(smtp.messages) == 1


async def test_a_malformed_event_goes_to_the_dlq(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, broker_url: str, exchange_name: str
) -> None:
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        async with await aio_pika.connect(broker_url) as connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(exchange_name)
            await exchange.publish(aio_pika.Message(b'{"type": "order.created", "data": {}}'), routing_key="order.created")
            dlq = await channel.declare_queue("notifications.order.created.dlq", passive=True)
            (parked,) = await drain(dlq, 1, timeout_s=10)
        assert (await _notifications(client))["total"] == 0
    assert parked.headers["x-error-kind"] == "malformed"
    assert smtp.messages == []


async def test_report_notices_go_to_the_operators(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, publish: Any
) -> None:
    generated = ReportGenerated(
        task_id=uuid.uuid4(), report_date=date(2026, 3, 10), orders=12, total_products=40, generated_at=datetime.now(UTC)
    )
    failed = ReportFailed(task_id=uuid.uuid4(), report_date=date(2026, 3, 11), error="disk on fire")
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        await publish(
            Envelope[ReportGenerated](type="report.generated", source="reports_service", data=generated),
            Envelope[ReportFailed](type="report.failed", source="reports_service", data=failed),
        )
        await eventually(lambda: _status_is(client, "sent", 2, recipient="ops@example.com"), what="two report notices")
    subjects = sorted(message["Subject"] for message in smtp.messages)
    assert subjects == ["Report 2026-03-10 ready", "Report 2026-03-11 FAILED"]
    body = _part(next(m for m in smtp.messages if "FAILED" in m["Subject"]), "plain")
    assert "disk on fire" in body


async def test_no_operator_address_means_no_report_notice(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, publish: Any
) -> None:
    generated = ReportGenerated(
        task_id=uuid.uuid4(), report_date=date(2026, 3, 10), orders=1, total_products=1, generated_at=datetime.now(UTC)
    )
    async with notifications_client(make_settings(smtp_port=smtp.port, reports_to=None)) as client:
        notices = observed.acked("notifications.report.generated")
        await publish(
            Envelope[ReportGenerated](type="report.generated", source="reports_service", data=generated),
            order_created(datetime(2026, 3, 10, 12, tzinfo=UTC)),
        )
        await eventually(lambda: _true(observed.acked("notifications.report.generated") >= notices + 1), what="the report.generated acked")
        await eventually(lambda: _status_is(client, "sent", 1), what="the order confirmation")
        assert (await _notifications(client))["total"] == 1
    assert [m["To"] for m in smtp.messages] == ["ada@example.com"]


async def test_listing_filters_pages_and_errors(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, publish: Any
) -> None:
    events = [order_created(datetime(2026, 3, 10, h, tzinfo=UTC)) for h in range(5)]
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        await publish(*events)
        await eventually(lambda: _status_is(client, "sent", 5), what="five sent")
        page = await _notifications(client, recipient="ada@example.com", page=2, count=2)
        assert (page["total"], page["total_exact"], len(page["items"]), page["page"]) == (5, True, 2, 2)
        assert (await _notifications(client, recipient="nobody@example.com"))["total"] == 0
        assert (await client.get(f"/notifications/{uuid.uuid4()}")).status_code == 404
        assert (await client.get("/notifications", params={"status": "lost"})).status_code == 422
        assert (await client.get("/notifications", params={"count": 0})).status_code == 422
        assert (await client.get("/notifications", params={"order_id": "x"})).status_code == 422


async def test_listing_counts_up_to_the_limit(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, publish: Any
) -> None:
    """Beyond NOTIFICATIONS_LIST_COUNT_LIMIT the total is a lower bound, and says so; pages still reach every row."""
    events = [order_created(datetime(2026, 3, 10, h, tzinfo=UTC)) for h in range(5)]
    async with notifications_client(make_settings(smtp_port=smtp.port, list_count_limit=3)) as client:
        await publish(*events)

        async def five_received() -> bool:
            return len(smtp.messages) == 5

        await eventually(five_received, what="five confirmations received")
        everything = await _notifications(client, count=2)
        last = await _notifications(client, page=3, count=2)
        one_order = await _notifications(client, order_id=str(events[0].data.order_id))
    assert (everything["total"], everything["total_exact"]) == (3, False)
    assert (len(last["items"]), last["total"], last["total_exact"]) == (1, 3, False)
    assert (one_order["total"], one_order["total_exact"], len(one_order["items"])) == (1, True, 1)


async def test_a_nul_in_a_filter_is_422_not_500(make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp) -> None:
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        response = await client.get("/notifications", params={"recipient": "ada\x00@example.com"})
    assert response.status_code == 422
    assert "recipient" in response.json()["detail"]
