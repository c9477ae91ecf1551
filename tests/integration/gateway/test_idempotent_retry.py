"""A dropped response in front of the real orders service: retried with an Idempotency-Key, never without."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from orders_service.main import build_app as build_orders
from orders_service.settings import OrdersSettings
from shared.testing.fixtures import serving
from tests.integration.gateway.conftest import HEADERS, GatewayFactory
from tests.integration.gateway.faults import ResponseDroppingProxy

ORDER = {"customer_email": "ada@example.com", "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"}]}


@pytest.fixture
async def proxy(orders_settings: OrdersSettings) -> AsyncIterator[ResponseDroppingProxy]:
    """The real orders service behind a proxy that can lose its responses."""
    async with serving(build_orders(orders_settings)) as orders_url, ResponseDroppingProxy(urlsplit(orders_url).port or 0) as proxy:
        yield proxy


async def test_a_keyed_post_whose_response_was_dropped_is_retried_and_creates_one_order(
    proxy: ResponseDroppingProxy, gateway_for: GatewayFactory
) -> None:
    async with gateway_for(orders=[proxy.url]) as (client, _):
        proxy.drops = 1
        response = await client.post("/orders", json=ORDER, headers={**HEADERS, "Idempotency-Key": "drop-1"})
        listed = (await client.get("/orders", headers=HEADERS)).json()
    assert proxy.dropped == 1
    assert response.status_code == 200, "the retry met the first request's result"
    assert response.headers["idempotent-replayed"] == "true"
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == response.json()["id"]


async def test_a_post_without_a_key_whose_response_was_dropped_is_not_sent_twice(
    proxy: ResponseDroppingProxy, gateway_for: GatewayFactory
) -> None:
    async with gateway_for(orders=[proxy.url]) as (client, _):
        proxy.drops = 1
        response = await client.post("/orders", json=ORDER, headers=HEADERS)
        listed = (await client.get("/orders", headers=HEADERS)).json()
    assert response.status_code == 502
    assert response.json()["code"] == "upstream_unavailable"
    assert listed["total"] == 1, "the order exists once; the client learns to look before sending again"


async def test_an_idempotency_key_named_by_connection_is_dropped_first_so_the_post_is_not_retried(
    proxy: ResponseDroppingProxy, gateway_for: GatewayFactory
) -> None:
    """The key never reaches the service (Connection names it hop-by-hop), so the POST is not safe to send twice."""
    async with gateway_for(orders=[proxy.url]) as (client, _):
        proxy.drops = 1
        headers = {**HEADERS, "Idempotency-Key": "hop-1", "Connection": "keep-alive, Idempotency-Key"}
        response = await client.post("/orders", json=ORDER, headers=headers)
        listed = (await client.get("/orders", headers=HEADERS)).json()
    assert response.status_code == 502
    assert listed["total"] == 1, "sent once: a retry without the key would have made a second order"
