import pytest
from pydantic import ValidationError

from orders_service.orders import request_fingerprint
from orders_service.schemas import OrderIn


def _order(**overrides: object) -> OrderIn:
    body = {"customer_email": "ada@example.com", "items": [{"sku": "A", "quantity": 1, "unit_price": "12.5"}]} | overrides
    return OrderIn.model_validate(body)


def test_same_meaning_same_fingerprint() -> None:
    reordered = OrderIn.model_validate_json('{"items":[{"unit_price":"12.50","quantity":1,"sku":"A"}],"customer_email":"ada@example.com"}')
    assert request_fingerprint(_order()) == request_fingerprint(reordered)


def test_different_body_different_fingerprint() -> None:
    assert request_fingerprint(_order()) != request_fingerprint(_order(currency="EUR"))


def test_prices_are_kept_to_two_places() -> None:
    with pytest.raises(ValidationError):
        _order(items=[{"sku": "A", "quantity": 1, "unit_price": "1.001"}])
