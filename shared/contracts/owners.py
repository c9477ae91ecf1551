"""Who may publish what: every routing key of the suite and the services that may send it.

An event has one owner, the service whose state it reports. A command (``report.requested``)
names the services that may ask for it. A consumer dead-letters a message whose envelope
``source`` is not among its routing key's producers and stores nothing from it; the broker
enforces the same table with each service's topic permissions (``deploy/rabbitmq``), so a
service can neither publish nor claim another's events.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.messaging.topology import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    REPORT_BACKFILL_REQUESTED,
    REPORT_CANCEL_REQUESTED,
    REPORT_FAILED,
    REPORT_GENERATED,
    REPORT_REQUESTED,
)

ORDERS = "orders_service"
REPORTS = "reports_service"
SCHEDULER = "scheduler_service"

PRODUCERS: Mapping[str, frozenset[str]] = {
    # events: the one service that owns each
    ORDER_CREATED: frozenset({ORDERS}),
    ORDER_CANCELLED: frozenset({ORDERS}),
    REPORT_GENERATED: frozenset({REPORTS}),
    REPORT_FAILED: frozenset({REPORTS}),
    # commands: who may ask (the reports API, and the scheduler's catalogue)
    REPORT_REQUESTED: frozenset({REPORTS, SCHEDULER}),
    REPORT_BACKFILL_REQUESTED: frozenset({REPORTS}),  # a backfill's days, to the reports service itself
    REPORT_CANCEL_REQUESTED: frozenset({SCHEDULER}),  # a schedule's `replace` policy ends the previous task
}


def producers_of(routing_key: str) -> frozenset[str]:
    found = PRODUCERS.get(routing_key)
    if found is None:
        raise KeyError(f"routing key {routing_key!r} has no producer in shared.contracts.owners.PRODUCERS")
    return found


def routing_keys_of(service: str) -> list[str]:
    """The routing keys a service may publish (its broker user's topic permission)."""
    return sorted(key for key, producers in PRODUCERS.items() if service in producers)
