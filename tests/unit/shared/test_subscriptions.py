"""A subscription is made from the contract class it handles: the routing key and its producers come with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service.handlers import build_subscriptions
from shared.contracts.orders import OrderCreated
from shared.contracts.reports import ReportRequested
from shared.messaging.consumer import Subscription
from shared.messaging.envelope import Envelope


async def _ignore(events: Sequence[Envelope[Any]], session: AsyncSession) -> None:
    return None


def test_the_routing_key_and_producers_come_from_the_contract() -> None:
    subscription = Subscription.to(ReportRequested, batch_handler=_ignore)
    assert subscription.routing_key == "report.requested"
    assert subscription.data_model is ReportRequested
    assert subscription.producers == frozenset({"reports_service", "scheduler_service"})


def test_a_model_that_is_no_event_contract_is_refused() -> None:
    class Unrouted(BaseModel):
        value: int

    with pytest.raises(TypeError, match="Unrouted has no event_type"):
        Subscription.to(Unrouted, batch_handler=_ignore)


def test_a_service_registry_lists_each_contract_once() -> None:
    registry = build_subscriptions(reports_to="ops@example.com")
    contracts = [subscription.data_model for subscription in registry]
    assert OrderCreated in contracts
    assert len(set(contracts)) == len(contracts) == len({subscription.routing_key for subscription in registry})
