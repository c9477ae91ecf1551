from collections.abc import AsyncIterator

import httpx
import pytest

from orders_service.main import build_app
from orders_service.settings import OrdersSettings
from shared.testing.fixtures import serving


@pytest.fixture
async def orders_api(orders_settings: OrdersSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(build_app(orders_settings)) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


def order_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"}, {"sku": "PEN-9", "quantity": 3, "unit_price": "1.10"}],
    }
    return body | overrides
