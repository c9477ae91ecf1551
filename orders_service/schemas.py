"""Request and response bodies of the orders API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
OrderStatus = Literal["placed", "cancelled"]


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: int = Field(ge=1, le=10_000, strict=True)
    unit_price: Decimal = Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)

    @field_validator("unit_price", mode="after")
    @classmethod
    def _two_places(cls, value: Decimal) -> Decimal:
        """12.5 and 12.50 are the same price, so they hash the same for idempotency."""
        return value.quantize(Decimal("0.01"))


class OrderIn(BaseModel):
    """A shop's order. ``created_at`` is when the shop took it (defaults to now, never in the future)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"customer_email": "ada@example.com", "currency": "EUR", "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"}]}
            ]
        },
    )

    customer_email: EmailStr
    items: list[OrderItemIn] = Field(min_length=1, max_length=100)
    currency: Currency = "USD"
    created_at: AwareDatetime | None = None


class OrderItemOut(BaseModel):
    sku: str
    quantity: int
    unit_price: Decimal


class OrderOut(BaseModel):
    id: uuid.UUID
    customer_email: str
    currency: str
    items: list[OrderItemOut]
    count_product: int
    total_amount: Decimal
    created_at: datetime
    client: str | None = Field(default=None, description="the API client that placed the order")
    status: OrderStatus = "placed"
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


class CancelIn(BaseModel):
    """Why the order is taken back; kept with it and sent in ``order.cancelled``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "customer changed their mind"}]})

    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00]*$")] | None = None


class OrderPage(BaseModel):
    items: list[OrderOut]
    total: int = Field(description="orders in the range; when total_exact is false, at least this many")
    total_exact: bool = Field(description="false when the range holds more orders than the service counts (ORDERS_LIST_COUNT_LIMIT)")
    page: int
    count: int


class OrderDay(BaseModel):
    day: date = Field(description="a local day of the time zone asked for")
    orders: int
    products: int


class Republished(BaseModel):
    republished: int = Field(description="order.created events put into the outbox again, one per order of the day")
