"""The notifications use cases on the in-memory store: who gets which mail for each event, once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from notifications_service import notifications
from shared.contracts.orders import OrderCreated, OrderItemData
from shared.contracts.reports import ReportFailed, ReportGenerated
from shared.messaging.envelope import Envelope
from shared.messaging.topology import ORDER_CREATED, REPORT_FAILED, REPORT_GENERATED
from tests.unit.notifications_service.fakes import InMemoryNotificationsStore

DAY = date(2026, 12, 1)


def order(customer: str, client: str | None = "shop-a") -> Envelope[OrderCreated]:
    data = OrderCreated(
        order_id=uuid.uuid4(),
        customer_email=customer,
        created_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
        items=[OrderItemData(sku="SKU-<1>", quantity=2, unit_price=Decimal("3.50"))],
        count_product=2,
        total_amount=Decimal("7.00"),
        currency="EUR",
        client=client,
    )
    return Envelope[OrderCreated](type=ORDER_CREATED, source="orders_service", data=data)


def generated() -> Envelope[ReportGenerated]:
    data = ReportGenerated(
        task_id=uuid.uuid4(), report_date=DAY, orders=3, total_products=9, generated_at=datetime(2026, 12, 2, tzinfo=UTC)
    )
    return Envelope[ReportGenerated](type=REPORT_GENERATED, source="reports_service", data=data)


def failed() -> Envelope[ReportFailed]:
    data = ReportFailed(task_id=uuid.uuid4(), report_date=DAY, error="statement timeout <5 s>")
    return Envelope[ReportFailed](type=REPORT_FAILED, source="reports_service", data=data)


async def test_each_order_confirms_to_its_customer_owned_by_the_client_that_placed_it() -> None:
    store = InMemoryNotificationsStore()
    ada, bob = order("ada@example.com"), order("bob@example.com", client=None)
    await notifications.confirm_orders(store, [ada, bob])
    mail = store.pending[ada.id]
    assert (mail.kind, mail.recipient, mail.order_id, mail.client) == ("order_confirmation", "ada@example.com", ada.data.order_id, "shop-a")
    assert mail.mail.subject == f"Order confirmation {ada.data.order_id}"
    assert "2 x SKU-<1> at 3.50 EUR" in mail.mail.text
    assert "SKU-&lt;1&gt;" in mail.mail.html, "what a client sent is escaped in the HTML part"
    assert store.pending[bob.id].client is None


async def test_an_event_delivered_again_adds_no_second_mail() -> None:
    store = InMemoryNotificationsStore()
    ada = order("ada@example.com")
    await notifications.confirm_orders(store, [ada])
    first = store.pending[ada.id]
    await notifications.confirm_orders(store, [ada, ada])
    assert list(store.pending) == [ada.id]
    assert store.pending[ada.id] is first


async def test_report_notices_go_to_the_configured_address_with_totals_and_errors() -> None:
    store = InMemoryNotificationsStore()
    ready, broken = generated(), failed()
    await notifications.announce_reports(store, [ready], reports_to="ops@example.com")
    await notifications.announce_report_failures(store, [broken], reports_to="ops@example.com")
    notice, failure = store.pending[ready.id], store.pending[broken.id]
    assert (notice.kind, notice.recipient, notice.mail.subject) == ("report_generated", "ops@example.com", "Report 2026-12-01 ready")
    assert "3 orders, 9 products" in notice.mail.text
    assert (failure.kind, failure.mail.subject) == ("report_failed", "Report 2026-12-01 FAILED")
    assert "Error: statement timeout <5 s>" in failure.mail.text
    assert "statement timeout &lt;5 s&gt;" in failure.mail.html


async def test_without_a_reports_address_report_events_send_nothing() -> None:
    store = InMemoryNotificationsStore()
    await notifications.announce_reports(store, [generated()], reports_to=None)
    await notifications.announce_report_failures(store, [failed()], reports_to="")
    assert store.pending == {}
