"""``/admin/notifications/dead-letters``: the notifications service's parked events, replayed into a sent mail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from notifications_service.settings import NotificationsSettings
from shared.testing.broker import park
from shared.testing.fixtures import eventually
from tests.integration.notifications_service.conftest import RecordingSmtp, notifications_client
from tests.integration.reports_service.conftest import order_created

QUEUE = "notifications.order.created"


async def test_a_parked_order_is_listed_and_its_replay_sends_the_confirmation(
    make_settings: Callable[..., NotificationsSettings], smtp: RecordingSmtp, broker_url: str
) -> None:
    event = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC))
    async with notifications_client(make_settings(smtp_port=smtp.port)) as client:
        queues = (await client.get("/admin/notifications/dead-letters/queues")).json()
        assert QUEUE in {queue["queue"] for queue in queues}
        await park(broker_url, QUEUE, [event])
        listed = (await client.get("/admin/notifications/dead-letters", params={"queue": QUEUE})).json()
        assert [item["id"] for item in listed["items"]] == [str(event.id)]

        replayed = await client.post("/admin/notifications/dead-letters/replay", json={"queue": QUEUE, "ids": [str(event.id)]})
        assert replayed.json() == {"replayed": 1}

        async def sent() -> bool:
            return len(smtp.messages) == 1

        await eventually(sent, what="the replayed order's confirmation")
        assert (await client.get("/admin/notifications/dead-letters", params={"queue": QUEUE})).json()["total"] == 0
    assert str(event.data.order_id) in smtp.messages[0]["Subject"]
