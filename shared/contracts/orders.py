"""Events published by the orders service."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.mail import MailAddress
from shared.messaging.topology import ORDER_CANCELLED, ORDER_CREATED


class OrderItemData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    quantity: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0)


class OrderCreated(BaseModel):
    """``order.created``: enough of the order that consumers never read the orders database."""

    event_type: ClassVar[str] = ORDER_CREATED
    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: uuid.UUID
    customer_email: MailAddress
    created_at: AwareDatetime
    items: list[OrderItemData] = Field(min_length=1)
    count_product: int = Field(ge=1)
    total_amount: Decimal = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    # the API client that placed the order: services that keep something per order keep its owner too
    client: str | None = Field(default=None, max_length=64)


class OrderCancelled(BaseModel):
    """``order.cancelled``: the order is taken back. It carries what a service needs to undo its part
    without having seen ``order.created`` (the two may arrive in either order): the order's local day
    comes from ``created_at``, the notice goes to ``customer_email``."""

    event_type: ClassVar[str] = ORDER_CANCELLED
    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: uuid.UUID
    customer_email: MailAddress
    created_at: AwareDatetime
    count_product: int = Field(ge=1)
    total_amount: Decimal = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    cancelled_at: AwareDatetime
    reason: str | None = Field(default=None, max_length=500)
    client: str | None = Field(default=None, max_length=64)
