"""The trust boundary on the running suite: roles per route, shops that see only their own, and service ports that take the gateway only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from shared.testing.fixtures import eventually
from tests.e2e.conftest import API_KEY, CLIENT_KEYS, RunningSuite

pytestmark = pytest.mark.slow

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date()
ORDER = {"customer_email": "ada@example.com", "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"}]}


@pytest.fixture
async def clients(suite: RunningSuite) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    base = str(suite.gateway.base_url)
    keys = {"operator": API_KEY} | {name: key for name, (key, _) in CLIENT_KEYS.items()}
    opened = {name: httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=30) for name, key in keys.items()}
    yield opened
    for client in opened.values():
        await client.aclose()


async def _place(client: httpx.AsyncClient, **headers: str) -> dict[str, Any]:
    response = await client.post("/orders", json=ORDER, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_every_route_answers_each_role_by_the_table(suite: RunningSuite, clients: dict[str, httpx.AsyncClient]) -> None:
    order = await _place(clients["shop-a"])
    routes: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("POST", "/orders", ORDER, "shop"),
        ("GET", "/orders", None, "shop"),
        ("GET", f"/orders/{order['id']}", None, "shop"),
        ("GET", "/notifications", None, "shop"),
        ("GET", f"/notifications/{uuid.uuid4()}", None, "shop"),
        ("GET", f"/report/?report_date={YESTERDAY}", None, "analyst"),
        ("GET", "/report/all", None, "analyst"),
        ("GET", "/report/tasks", None, "analyst"),
        ("GET", f"/report/tasks/{uuid.uuid4()}", None, "analyst"),
        ("GET", "/report/days", None, "analyst"),
        ("POST", f"/report/generate?report_date={YESTERDAY}", None, "analyst"),
        ("GET", "/schedules", None, "analyst"),
        ("GET", "/schedules/daily-orders-report", None, "analyst"),
        ("GET", "/schedules/daily-orders-report/runs", None, "analyst"),
        ("GET", "/schedules/daily-orders-report/preview", None, "analyst"),
        ("POST", "/schedules", {"name": "e2e-roles", "cron": "@yearly"}, "operator"),
        ("PATCH", "/schedules/e2e-roles", {"lookback_s": 60}, "operator"),
        ("POST", "/schedules/e2e-roles/trigger", None, "operator"),
        ("DELETE", "/schedules/e2e-roles", None, "operator"),
    ]
    roles = {"shop-a": "shop", "bi": "analyst", "operator": "operator"}
    for method, path, body, needed in routes:
        for name, role in roles.items():
            response = await clients[name].request(method, path, json=body)
            allowed = role in (needed, "operator")
            if allowed:
                assert response.status_code not in (401, 403), f"{name} {method} {path}: {response.text}"
            else:
                assert response.status_code == 403, f"{name} {method} {path}: {response.status_code}"
                assert response.json()["code"] == "forbidden"
                assert f"needs the {needed} role" in response.json()["detail"]


async def test_a_shop_sees_only_its_own_orders_and_their_mail(suite: RunningSuite, clients: dict[str, httpx.AsyncClient]) -> None:
    mine = await _place(clients["shop-a"])
    theirs = await _place(clients["shop-b"])
    assert mine["client"] == "shop-a"

    assert (await clients["shop-b"].get(f"/orders/{mine['id']}")).status_code == 404
    assert (await clients["shop-a"].get(f"/orders/{mine['id']}")).json()["id"] == mine["id"]
    listed_by_b = {order["id"] for order in (await clients["shop-b"].get("/orders", params={"count": 100})).json()["items"]}
    assert theirs["id"] in listed_by_b
    assert mine["id"] not in listed_by_b
    operator_view = (await clients["operator"].get(f"/orders/{mine['id']}")).json()
    assert operator_view["client"] == "shop-a"

    async def confirmation() -> Any:
        found = (await clients["operator"].get("/notifications", params={"order_id": mine["id"]})).json()["items"]
        return found[0] if found else None

    notice = await eventually(confirmation, timeout_s=30, what="the confirmation of shop-a's order")
    assert (await clients["shop-a"].get(f"/notifications/{notice['id']}")).status_code == 200
    assert (await clients["shop-b"].get(f"/notifications/{notice['id']}")).status_code == 404
    assert (await clients["shop-b"].get("/notifications", params={"order_id": mine["id"]})).json()["items"] == []
    assert {n["order_id"] for n in (await clients["shop-a"].get("/notifications", params={"count": 500})).json()["items"]} >= {mine["id"]}


async def test_caller_headers_a_client_sends_are_replaced_by_the_gateway(
    suite: RunningSuite, clients: dict[str, httpx.AsyncClient]
) -> None:
    mine = await _place(clients["shop-a"])
    forged = {"X-Caller-Name": "shop-a", "X-Caller-Roles": "operator", "X-Internal-Token": "guess"}
    assert (await clients["shop-b"].get(f"/orders/{mine['id']}", headers=forged)).status_code == 404
    assert (await clients["shop-b"].delete("/schedules/daily-orders-report", headers=forged)).status_code == 403


async def test_idempotency_keys_are_each_clients_own(suite: RunningSuite, clients: dict[str, httpx.AsyncClient]) -> None:
    key = f"shared-{uuid.uuid4().hex[:8]}"
    first = await _place(clients["shop-a"], **{"Idempotency-Key": key})
    other = await clients["shop-b"].post("/orders", json=ORDER | {"currency": "EUR"}, headers={"Idempotency-Key": key})
    assert other.status_code == 201, other.text
    assert other.json()["id"] != first["id"]
    replay = await clients["shop-a"].post("/orders", json=ORDER, headers={"Idempotency-Key": key})
    assert (replay.status_code, replay.json()["id"]) == (200, first["id"])


async def test_a_service_port_refuses_calls_that_do_not_come_through_the_gateway(suite: RunningSuite) -> None:
    orders_url = suite.instances["orders"][0]
    async with httpx.AsyncClient(base_url=orders_url, timeout=10) as direct:
        refused = await direct.get("/orders", headers={"X-Caller-Name": "shop-a", "X-Caller-Roles": "operator"})
        assert refused.status_code == 401
        assert refused.json()["code"] == "internal_token_required"
        assert (await direct.post("/orders", json=ORDER)).status_code == 401
        assert (await direct.get("/health/ready")).status_code == 200
        assert (await direct.get("/metrics")).status_code == 200
        assert (await direct.get("/openapi.json")).status_code == 401
    # the gateway's own calls (health, the merged docs) carry the token
    assert (await suite.gateway.get("/health")).json()["status"] == "healthy"
    paths = (await suite.gateway.get("/openapi.json")).json()["paths"]
    assert {"/orders", "/report/generate", "/schedules", "/notifications"} <= set(paths)


async def test_each_service_connects_to_the_broker_as_its_own_user(suite: RunningSuite) -> None:
    assert [user.rsplit("-", 1)[1] for user in suite.broker_users] == ["notifications", "orders", "reports", "scheduler"]

    def users_connected() -> set[str]:
        with suite.infrastructure.management() as client:
            connections = client.get(f"/api/vhosts/{quote(suite.vhost, safe='')}/connections").json()
        return {connection["user"] for connection in connections}

    async def every_service_connected() -> set[str] | None:
        # the management API lists a connection once the broker's statistics have seen it (every few seconds)
        connected = await asyncio.to_thread(users_connected)
        return connected if set(suite.broker_users) <= connected else None

    connected = await eventually(every_service_connected, timeout_s=30, interval_s=0.5, what="every service's broker user connected")
    assert "guest" not in connected
