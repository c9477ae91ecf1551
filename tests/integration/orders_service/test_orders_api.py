import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from orders_service.main import build_app
from orders_service.models import idempotency_keys
from orders_service.models import orders as orders_table
from orders_service.models import outbox as outbox_table
from orders_service.orders import purge_expired_keys
from orders_service.settings import OrdersSettings
from shared.contracts.orders import OrderCreated
from shared.db import asyncpg_dsn, create_engine, create_session_factory
from shared.messaging.envelope import Envelope
from shared.testing.broker import bound_queue, drain
from shared.testing.fixtures import serving
from tests.integration.orders_service.conftest import order_body


async def _count(url: str, table) -> int:
    engine = create_engine(url)
    async with engine.connect() as connection:
        value = await connection.scalar(select(func.count()).select_from(table))
    await engine.dispose()
    return int(value or 0)


async def test_create_then_read_an_order(orders_api: httpx.AsyncClient) -> None:
    created = await orders_api.post("/orders", json=order_body())
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["count_product"] == 5
    assert order["total_amount"] == "28.30"
    assert created.headers["location"] == f"/orders/{order['id']}"
    assert created.headers["x-request-id"]
    fetched = await orders_api.get(f"/orders/{order['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == order


async def test_unknown_and_malformed_ids(orders_api: httpx.AsyncClient) -> None:
    missing = await orders_api.get(f"/orders/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert (await orders_api.get("/orders/not-a-uuid")).status_code == 422


async def test_order_created_event_carries_the_order_and_the_request_id(orders_api: httpx.AsyncClient, orders_settings) -> None:
    async with bound_queue(orders_settings.broker_url.get_secret_value(), orders_settings.events_exchange, "order.created") as queue:
        response = await orders_api.post("/orders", json=order_body(), headers={"X-Request-ID": "req-abc-123"})
        (message,) = await drain(queue, 1)
    assert response.headers["x-request-id"] == "req-abc-123"
    envelope = Envelope[OrderCreated].model_validate_json(message.body)
    order = response.json()
    assert envelope.type == "order.created"
    assert envelope.source == "orders_service"
    assert envelope.correlation_id == "req-abc-123"
    assert message.correlation_id == "req-abc-123"
    assert str(envelope.data.order_id) == order["id"]
    assert envelope.data.count_product == 5
    assert str(envelope.data.total_amount) == "28.30"
    assert [item.sku for item in envelope.data.items] == ["BOOK-1", "PEN-9"]


async def hourly_orders(orders_api: httpx.AsyncClient, count: int) -> list[str]:
    """Ids of ``count`` orders created an hour apart from 2026-01-10 12:00 UTC, oldest first."""
    base = datetime(2026, 1, 10, 12, tzinfo=UTC)
    ids = []
    for hours in range(count):
        response = await orders_api.post("/orders", json=order_body(created_at=(base + timedelta(hours=hours)).isoformat()))
        ids.append(response.json()["id"])
    return ids


async def test_listing_filters_pages_and_counts(orders_api: httpx.AsyncClient) -> None:
    ids = await hourly_orders(orders_api, 6)
    everything = (await orders_api.get("/orders", params={"count": 100})).json()
    assert everything["total"] == 6
    assert [o["id"] for o in everything["items"]] == ids[::-1], "newest first"
    window = (await orders_api.get("/orders", params={"created_from": "2026-01-10T13:00:00Z", "created_to": "2026-01-10T16:00:00Z"})).json()
    assert window["total"] == 3
    page2 = (await orders_api.get("/orders", params={"page": 2, "count": 4})).json()
    assert [o["id"] for o in page2["items"]] == ids[1::-1]
    assert page2["total"] == 6
    assert page2["items"][0] == (await orders_api.get(f"/orders/{ids[1]}")).json(), "a listed order reads as it does alone"
    past_the_end = (await orders_api.get("/orders", params={"page": 3, "count": 4})).json()
    assert (past_the_end["items"], past_the_end["total"]) == ([], 6)
    since = (await orders_api.get("/orders", params={"created_from": "2026-01-10T15:00:00Z"})).json()
    assert [o["id"] for o in since["items"]] == ids[:2:-1]
    before = (await orders_api.get("/orders", params={"created_to": "2026-01-10T14:00:00"})).json()
    assert (before["total"], [o["id"] for o in before["items"]]) == (2, ids[1::-1]), "no offset: UTC"
    nothing = (await orders_api.get("/orders", params={"created_from": "2027-01-01T00:00:00Z"})).json()
    assert nothing == {"items": [], "total": 0, "total_exact": True, "page": 1, "count": 20}


async def test_listing_counts_up_to_the_limit(orders_settings: OrdersSettings) -> None:
    """Beyond ORDERS_LIST_COUNT_LIMIT the total is a lower bound, and says so; pages still reach every order."""
    settings = orders_settings.model_copy(update={"list_count_limit": 3})
    async with serving(build_app(settings)) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as orders_api:
        ids = await hourly_orders(orders_api, 5)
        everything = (await orders_api.get("/orders", params={"count": 2})).json()
        assert (everything["total"], everything["total_exact"]) == (3, False)
        last = (await orders_api.get("/orders", params={"page": 3, "count": 2})).json()
        assert ([o["id"] for o in last["items"]], last["total"], last["total_exact"]) == ([ids[0]], 3, False)
        at_the_limit = (await orders_api.get("/orders", params={"created_from": "2026-01-10T14:00:00Z"})).json()
        assert (at_the_limit["total"], at_the_limit["total_exact"]) == (3, True)
        below = (await orders_api.get("/orders", params={"created_to": "2026-01-10T14:00:00Z"})).json()
        assert (below["total"], below["total_exact"], len(below["items"])) == (2, True, 2)


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"count": 0},
        {"count": 5000},
        {"count": "x"},
        {"created_from": "yesterday"},
        {"created_from": "2026-01-02T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"},
    ],
)
async def test_bad_list_parameters_are_422(orders_api: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await orders_api.get("/orders", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_same_key_same_body_returns_the_original_order(orders_api: httpx.AsyncClient, orders_settings) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await orders_api.post("/orders", json=order_body(), headers=headers)
    reordered = order_body(
        items=[{"unit_price": "12.5", "quantity": 2, "sku": "BOOK-1"}, {"sku": "PEN-9", "quantity": 3, "unit_price": "1.1"}]
    )
    second = await orders_api.post("/orders", json=reordered, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    url = orders_settings.database_url.get_secret_value()
    assert await _count(url, orders_table) == 1
    assert await _count(url, outbox_table) == 1, "a replay publishes nothing"


async def test_same_key_other_body_is_422(orders_api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "order-43"}
    assert (await orders_api.post("/orders", json=order_body(), headers=headers)).status_code == 201
    other = await orders_api.post("/orders", json=order_body(currency="USD"), headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


async def test_a_key_in_flight_is_409(orders_api: httpx.AsyncClient, orders_settings) -> None:
    """Another request holds the key (its transaction is open): this one must not wait or duplicate."""
    connection = await asyncpg.connect(asyncpg_dsn(orders_settings.database_url.get_secret_value()))
    try:
        async with connection.transaction():
            # no client (a call from inside), so the lock is of the key under the empty client name
            await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "\norder-44")
            busy = await orders_api.post("/orders", json=order_body(), headers={"Idempotency-Key": "order-44"})
    finally:
        await connection.close()
    assert busy.status_code == 409
    assert busy.headers["retry-after"] == "1"
    assert (await orders_api.post("/orders", json=order_body(), headers={"Idempotency-Key": "order-44"})).status_code == 201


async def test_concurrent_requests_with_one_key_create_one_order(orders_api: httpx.AsyncClient, orders_settings) -> None:
    responses = await asyncio.gather(
        *(orders_api.post("/orders", json=order_body(), headers={"Idempotency-Key": "burst"}) for _ in range(20))
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 201, 409}
    assert codes.count(201) == 1
    assert len({r.json()["id"] for r in responses if r.status_code in (200, 201)}) == 1
    assert await _count(orders_settings.database_url.get_secret_value(), orders_table) == 1


ITEM = {"sku": "A", "quantity": 1, "unit_price": "1.00"}
BAD_BODIES: list[tuple[str, object]] = [
    ("missing email", {"items": [ITEM]}),
    ("invalid email", order_body(customer_email="not-an-email")),
    ("no items", order_body(items=[])),
    ("101 items", order_body(items=[ITEM] * 101)),
    ("items not a list", order_body(items={"sku": "A"})),
    ("quantity zero", order_body(items=[ITEM | {"quantity": 0}])),
    ("quantity too big", order_body(items=[ITEM | {"quantity": 10_001}])),
    ("quantity fractional", order_body(items=[ITEM | {"quantity": 1.5}])),
    ("quantity as text", order_body(items=[ITEM | {"quantity": "two"}])),
    ("quantity as numeric text", order_body(items=[ITEM | {"quantity": "2"}])),
    ("negative price", order_body(items=[ITEM | {"unit_price": "-0.01"}])),
    ("three decimals", order_body(items=[ITEM | {"unit_price": "0.001"}])),
    ("price not a number", order_body(items=[ITEM | {"unit_price": "cheap"}])),
    ("price NaN", order_body(items=[ITEM | {"unit_price": "NaN"}])),
    ("empty sku", order_body(items=[ITEM | {"sku": ""}])),
    ("sku too long", order_body(items=[ITEM | {"sku": "x" * 65}])),
    ("unknown field", order_body(discount="10%")),
    ("unknown item field", order_body(items=[ITEM | {"colour": "red"}])),
    ("bad currency", order_body(currency="euro")),
    ("naive created_at", order_body(created_at="2026-01-01T00:00:00")),
    ("created_at not a date", order_body(created_at="last tuesday")),
    ("created_at in the future", order_body(created_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())),
    ("body is a list", [order_body()]),
    ("body is a string", "order"),
    ("body is null", None),
]


@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[case for case, _ in BAD_BODIES])
async def test_bad_input_is_a_readable_4xx(orders_api: httpx.AsyncClient, orders_settings, case: str, body: object) -> None:
    response = await orders_api.post("/orders", json=body)
    assert 400 <= response.status_code < 500, f"{case}: {response.status_code} {response.text}"
    assert response.json()["detail"], case
    assert await _count(orders_settings.database_url.get_secret_value(), orders_table) == 0


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", {"content-type": "application/json"}),
        (b"", {"content-type": "application/json"}),
        (b'{"customer_email": "a@b.co"', {"content-type": "application/json"}),
        (b"\xff\xfe", {"content-type": "application/json"}),
        (b"customer_email=a", {"content-type": "application/x-www-form-urlencoded"}),
    ],
)
async def test_malformed_bodies_are_4xx(orders_api: httpx.AsyncClient, content: bytes, headers: dict[str, str]) -> None:
    response = await orders_api.post("/orders", content=content, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]


async def test_an_oversized_idempotency_key_is_422(orders_api: httpx.AsyncClient) -> None:
    response = await orders_api.post("/orders", json=order_body(), headers={"Idempotency-Key": "k" * 256})
    assert response.status_code == 422


async def test_health_metrics_and_request_ids(orders_api: httpx.AsyncClient) -> None:
    ready = await orders_api.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "healthy"
    assert ready.json()["checks"]["database"]["status"] == "up"
    assert (await orders_api.get("/health")).json()["status"] == "healthy"
    assert (await orders_api.get("/health/live")).json() == {"status": "alive"}
    await orders_api.post("/orders", json=order_body())
    metrics = (await orders_api.get("/metrics")).text
    assert 'http_requests_total{method="POST",route="/orders",status="201"}' in metrics
    assert "outbox_backlog" in metrics
    generated = (await orders_api.get("/health/live")).headers["x-request-id"]
    assert len(generated) == 32


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (order_body(items=[{"sku": "GOLD", "quantity": 10_000, "unit_price": "9999999999.99"}] * 2), "is more than 999,999,999,999.99"),
        (order_body(created_at="0001-01-01T00:00:00+01:00"), "created_at: must be within the years 1 to 9999"),
    ],
)
async def test_values_past_what_the_database_holds_are_422_not_500(
    orders_api: httpx.AsyncClient, body: dict[str, Any], reason: str
) -> None:
    response = await orders_api.post("/orders", json=body)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]


async def test_a_range_past_the_calendar_and_a_trailing_slash_are_answered_not_500_or_redirected(orders_api: httpx.AsyncClient) -> None:
    response = await orders_api.get("/orders", params={"created_from": "9999-12-31T23:59:59-01:00"})
    assert response.status_code == 422
    assert "created_from: must be within the years 1 to 9999" in response.json()["detail"]
    slash = await orders_api.get("/orders/")
    assert slash.status_code == 404
    assert "location" not in slash.headers


async def test_a_page_past_the_depth_limit_is_refused_with_the_deepest_page(orders_api: httpx.AsyncClient) -> None:
    deep = await orders_api.get("/orders", params={"page": 1_000_000, "count": 100})
    deepest = await orders_api.get("/orders", params={"page": 100, "count": 100})
    assert deep.status_code == 422
    assert deep.headers["content-type"] == "application/problem+json"
    problem = deep.json()
    assert (problem["code"], problem["status"], problem["instance"]) == ("page_too_deep", 422, "/orders")
    assert "at most 100 with count=100" in problem["detail"]
    assert deepest.status_code == 200


async def test_errors_are_problem_documents_and_the_document_says_so(orders_api: httpx.AsyncClient) -> None:
    missing = await orders_api.get(f"/orders/{uuid.uuid4()}")
    invalid = await orders_api.post("/orders", json={"customer_email": "not-an-address", "items": []})
    document = (await orders_api.get("/openapi.json")).json()
    assert missing.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail", "instance", "code", "request_id"} <= set(missing.json())
    assert (missing.json()["title"], missing.json()["code"]) == ("Not Found", "not_found")
    assert invalid.status_code == 422
    assert {error["loc"] for error in invalid.json()["errors"]} >= {"body.customer_email"}
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    get_order = document["paths"]["/orders/{order_id}"]["get"]["responses"]
    assert (get_order["404"]["content"], get_order["422"]["content"], get_order["500"]["content"]) == (problem, problem, problem)
    assert document["paths"]["/orders"]["post"]["responses"]["400"]["content"] == problem
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["Problem"]["properties"]["errors"]


async def test_expired_idempotency_keys_are_purged_and_their_orders_stay(orders_api: httpx.AsyncClient, orders_settings) -> None:
    """A key past its TTL is forgotten (the same key may place a new order), a fresh one still replays, and no
    order is deleted with its key."""
    old = await orders_api.post("/orders", json=order_body(), headers={"Idempotency-Key": "old-key"})
    fresh = await orders_api.post("/orders", json=order_body(), headers={"Idempotency-Key": "fresh-key"})
    url = orders_settings.database_url.get_secret_value()
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                idempotency_keys.update().where(idempotency_keys.c.key == "old-key").values(created_at=func.now() - timedelta(hours=25))
            )
        assert await purge_expired_keys(create_session_factory(engine), timedelta(hours=24)) == 1
        async with engine.connect() as connection:
            kept = (await connection.execute(select(idempotency_keys.c.key))).scalars().all()
    finally:
        await engine.dispose()
    assert kept == ["fresh-key"]
    assert await _count(url, orders_table) == 2, "purging a key never deletes its order"
    assert (await orders_api.get(f"/orders/{old.json()['id']}")).status_code == 200
    again = await orders_api.post("/orders", json=order_body(), headers={"Idempotency-Key": "old-key"})
    assert again.status_code == 201
    assert again.json()["id"] != old.json()["id"], "a forgotten key places a new order"
    replay = await orders_api.post("/orders", json=order_body(), headers={"Idempotency-Key": "fresh-key"})
    assert (replay.status_code, replay.json()["id"]) == (200, fresh.json()["id"])
