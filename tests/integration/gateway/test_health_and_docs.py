"""The gateway's own endpoints: aggregated health and the merged API docs."""

from __future__ import annotations

from orders_service.main import build_app as build_orders
from orders_service.settings import OrdersSettings
from shared.testing.fixtures import serving
from tests.integration.gateway.conftest import HEADERS, GatewayFactory
from tests.integration.gateway.faults import UpstreamProcess


async def test_health_is_healthy_then_degraded_while_every_service_still_has_an_instance(
    upstreams: list[UpstreamProcess], gateway_for: GatewayFactory
) -> None:
    first, second = upstreams
    both = [first.url, second.url]
    async with gateway_for(orders=both, reports=both, scheduler=[first.url], notifications=[first.url]) as (client, _):
        healthy = await client.get("/health", headers=HEADERS)
        await second.stop()
        degraded = await client.get("/health", headers=HEADERS)
        served = [(await client.get("/orders", headers=HEADERS)).status_code for _ in range(4)]
        live = await client.get("/health/live")
    assert healthy.status_code == 200
    assert healthy.json()["status"] == "healthy"
    assert degraded.status_code == 200
    body = degraded.json()
    assert body["status"] == "degraded"
    assert body["services"]["orders"]["status"] == "degraded"
    assert {i["status"] for i in body["services"]["orders"]["instances"]} == {"healthy", "unreachable"}
    assert body["services"]["scheduler"]["status"] == "healthy"
    assert served == [200] * 4
    assert live.json() == {"status": "alive"}


async def test_health_is_unhealthy_when_a_service_has_no_instance_left_and_the_gateway_stays_ready(
    upstreams: list[UpstreamProcess], gateway_for: GatewayFactory
) -> None:
    first, second = upstreams
    await second.stop()
    async with gateway_for(orders=[first.url], reports=[first.url], scheduler=[first.url], notifications=[second.url]) as (client, _):
        health = await client.get("/health", headers=HEADERS)
        ready = await client.get("/health/ready", headers=HEADERS)
        orders = await client.get("/orders", headers=HEADERS)
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy"
    assert health.json()["services"]["notifications"]["status"] == "unhealthy"
    # the gateway itself still serves the other services: a load balancer must keep it in rotation
    assert ready.status_code == 200
    assert ready.json() == {"status": "healthy", "service": "gateway"}
    assert orders.status_code == 200


async def test_docs_merge_the_services_public_paths_with_the_key_schemes(
    orders_settings: OrdersSettings, upstream: UpstreamProcess, gateway_for: GatewayFactory
) -> None:
    async with (
        serving(build_orders(orders_settings)) as orders_url,
        gateway_for(orders=[orders_url], reports=[upstream.url], scheduler=[upstream.url], notifications=[upstream.url]) as (client, _),
    ):
        document = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert set(document["paths"]) == {
        "/orders",
        "/orders/{order_id}",
        "/orders/{order_id}/cancel",
        "/admin/orders/outbox",
        "/admin/orders/outbox/republish",
        "/orders/days",
        "/admin/orders/republish",
    }, "health, metrics and the fault upstream's own paths stay out"
    assert "401" in document["paths"]["/orders"]["post"]["responses"]
    assert "OrderOut" in document["components"]["schemas"]
    assert "x-unavailable-services" not in document["info"]
    assert set(document["components"]["securitySchemes"]) == {"bearerKey", "apiKeyHeader"}
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text


async def test_public_health_says_only_the_status_and_metrics_need_an_operator(
    upstream: UpstreamProcess, gateway_for: GatewayFactory
) -> None:
    async with gateway_for(orders=[upstream.url]) as (client, _):
        public = (await client.get("/health")).json()
        detailed = (await client.get("/health", headers=HEADERS)).json()
        anonymous_metrics = await client.get("/metrics")
        operator_metrics = await client.get("/metrics", headers=HEADERS)
    assert set(public) == {"status", "service"}, "no instance addresses or errors on the public port"
    assert upstream.url in str(detailed["services"])
    assert anonymous_metrics.status_code == 401
    assert operator_metrics.status_code == 200
    assert "gateway_breaker_state" in operator_metrics.text
