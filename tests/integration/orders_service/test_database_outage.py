"""While the orders database is out of reach the API answers 503 with Retry-After, never 500, and heals by itself."""

import httpx

from orders_service.main import build_app
from orders_service.settings import OrdersSettings
from shared.testing.fixtures import eventually, serving
from shared.testing.tcp_proxy import TcpProxy
from tests.integration.orders_service.conftest import order_body


async def test_the_api_answers_503_while_its_database_is_cut_off_and_recovers(orders_settings: OrdersSettings) -> None:
    database_url = orders_settings.database_url.get_secret_value()
    async with TcpProxy.in_front_of(database_url) as proxy:
        settings = orders_settings.model_copy(update={"database_url": type(orders_settings.database_url)(proxy.url_for(database_url))})
        async with serving(build_app(settings)) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            placed = await client.post("/orders", json=order_body())
            assert placed.status_code == 201
            proxy.cut()
            answers = [
                await client.post("/orders", json=order_body(), headers={"X-Request-ID": "outage-post"}),
                await client.get("/orders", headers={"X-Request-ID": "outage-list"}),
                await client.get(f"/orders/{placed.json()['id']}", headers={"X-Request-ID": "outage-one"}),
            ]
            for answer, request_id in zip(answers, ("outage-post", "outage-list", "outage-one"), strict=True):
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.headers["retry-after"] == "2"
                problem = answer.json()
                assert problem["code"] == "dependency_unavailable"
                assert problem["request_id"] == request_id
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            proxy.restore()
            await eventually(lambda: _accepted(client), timeout_s=20, what="orders accepted again")


async def _accepted(client: httpx.AsyncClient) -> bool:
    return (await client.post("/orders", json=order_body())).status_code == 201
