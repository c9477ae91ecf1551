"""Publishing a day's orders again: the same events, with the ids they were first published with."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pytest

from orders_service import orders
from shared.domain_errors import InvalidRequest
from tests.unit.orders_service.fakes import InMemoryOrdersStore
from tests.unit.orders_service.test_place_order import order_in

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


async def test_a_day_is_published_again_with_each_orders_first_event_id() -> None:
    store = InMemoryOrdersStore()
    # 22:30 UTC on the 4th is already the 5th in Kyiv
    evening, _ = await orders.place_order(store, order_in(created_at="2026-12-04T22:30:00Z"), None, now=NOW)
    morning, _ = await orders.place_order(store, order_in(created_at="2026-12-05T08:00:00Z"), None, now=NOW)
    await orders.place_order(store, order_in(created_at="2026-12-05T22:30:00Z"), None, now=NOW)  # the 6th in Kyiv
    first_ids = {orjson.loads(row["body"])["data"]["order_id"]: row["event_id"] for row in store.outbox}

    assert await orders.republish_day(store, date(2026, 12, 5), tz="Europe/Kyiv", now=NOW) == 2
    again = store.outbox[3:]
    assert [orjson.loads(row["body"])["data"]["order_id"] for row in again] == [str(evening.id), str(morning.id)]
    assert [row["event_id"] for row in again] == [first_ids[str(evening.id)], first_ids[str(morning.id)]]
    assert orjson.loads(again[1]["body"])["data"]["count_product"] == morning.count_product


async def test_a_day_to_come_or_an_unknown_zone_is_refused() -> None:
    store = InMemoryOrdersStore()
    with pytest.raises(InvalidRequest, match="2026-12-07 is in the future"):
        await orders.republish_day(store, date(2026, 12, 7), tz="UTC", now=NOW)
    with pytest.raises(InvalidRequest, match="not an IANA time zone"):
        await orders.republish_day(store, date(2026, 12, 5), tz="Mars/Olympus", now=NOW)
    assert store.outbox == []
