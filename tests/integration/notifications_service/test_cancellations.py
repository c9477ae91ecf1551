"""``order.cancelled`` on the real broker, database and an SMTP server: one notice per cancellation,
and no confirmation for a cancelled order, whether it was still pending or comes after."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from notifications_service.settings import NotificationsSettings
from shared.ports import free_port
from shared.testing.events import cancellation_of
from shared.testing.fixtures import eventually
from tests.integration.conftest import publish_handled
from tests.integration.notifications_service.conftest import RecordingSmtp, notifications_client
from tests.integration.notifications_service.test_notifications import _notifications, _status_is
from tests.integration.reports_service.conftest import order_created


async def test_a_confirmation_still_pending_is_dropped_and_the_notice_sent_once(
    make_settings: Callable[..., NotificationsSettings], publish: Any
) -> None:
    port = free_port()  # no SMTP server yet: the confirmation waits
    placed = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC))
    async with notifications_client(make_settings(smtp_port=port)) as client:
        await publish(placed)
        await eventually(lambda: _status_is(client, "pending", 1), what="the confirmation waiting for SMTP")
        cancellation = cancellation_of(placed, reason="out of stock")
        await publish(cancellation, cancellation)
        await eventually(lambda: _status_is(client, "dropped", 1), what="the confirmation dropped")
        server = RecordingSmtp(port)
        server.start()
        try:
            await eventually(lambda: _status_is(client, "sent", 1), what="the cancellation notice sent")
            listed = (await _notifications(client, order_id=str(placed.data.order_id)))["items"]
        finally:
            server.stop()
    (message,) = server.messages
    assert message["Subject"] == f"Order cancelled {placed.data.order_id}"
    assert message["To"] == "ada@example.com"
    assert sorted((item["kind"], item["status"]) for item in listed) == [("order_cancellation", "sent"), ("order_confirmation", "dropped")]


async def test_an_order_created_consumed_after_its_cancellation_sends_no_confirmation(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, publish: Any
) -> None:
    late = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC), order_id=uuid.uuid4())
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        await publish_handled(publish, "notifications.order.cancelled", cancellation_of(late))  # the cancellation first
        await publish_handled(publish, "notifications.order.created", late)
        await eventually(lambda: _status_is(client, "sent", 1), what="the cancellation notice sent")
        listed = (await _notifications(client, order_id=str(late.data.order_id)))["items"]
    assert [item["kind"] for item in listed] == ["order_cancellation"]
    assert [message["Subject"] for message in smtp.messages] == [f"Order cancelled {late.data.order_id}"]
