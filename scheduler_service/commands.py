"""The commands a schedule may publish: the scheduler's whole catalogue, each with its payload contract.

A schedule names a command by its routing key and gives a payload, which is validated
against that command's model when the schedule is written. Domain events
(``order.created``, ``report.*`` results) belong to the services that own them and are
never in this catalogue, so no API call can make the scheduler speak for another service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scheduler_service.cron import zone
from shared.contracts.reports import ReportCancelRequested, ReportRequested
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import new_event
from shared.messaging.topology import REPORT_CANCEL_REQUESTED, REPORT_REQUESTED

SOURCE = "scheduler_service"


class CommandError(ValueError):
    """A routing key outside the catalogue, or a payload its command does not take; the message says why."""


class ReportRequestPayload(BaseModel):
    """What a ``report.requested`` schedule may say: which day, counted back from the fire's local day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days_before: int = Field(default=1, ge=0, le=366, description="1 (the default): the day before the fire's local day; 0: that day")


def _report_requested(name: str, payload: ReportRequestPayload, timezone: str, instant: datetime) -> BaseModel:
    local_day = instant.astimezone(zone(timezone)).date()
    return ReportRequested(
        task_id=uuid.uuid4(),
        report_date=local_day - timedelta(days=payload.days_before),
        requested_by=f"scheduler:{name}",
        scheduled_for=instant,
    )


@dataclass(frozen=True, slots=True)
class Command:
    routing_key: str
    payload_model: type[BaseModel]
    build: Callable[[str, Any, str, datetime], BaseModel]  # (schedule name, payload, zone, instant) -> event data


CATALOGUE: Mapping[str, Command] = {
    REPORT_REQUESTED: Command(REPORT_REQUESTED, ReportRequestPayload, _report_requested),
}


def command(routing_key: str) -> Command:
    found = CATALOGUE.get(routing_key)
    if found is None:
        raise CommandError(
            f"routing key {routing_key!r} is not a command the scheduler may publish; it publishes {', '.join(sorted(CATALOGUE))}"
        )
    return found


def validate_payload(routing_key: str, payload: Mapping[str, Any]) -> BaseModel:
    """The payload as its command's model, or ``CommandError`` naming each wrong field."""
    model = command(routing_key).payload_model
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()[:5])
        raise CommandError(f"payload of {routing_key}: {reasons}") from None


def task_of(envelope: Envelope[Any]) -> uuid.UUID | None:
    """The task a fired command asks for (``report.requested`` names its ``task_id``): how a run links to what it started."""
    task_id = getattr(envelope.data, "task_id", None)
    return task_id if isinstance(task_id, uuid.UUID) else None


def report_date_of(envelope: Envelope[Any]) -> date | None:
    """The day a fired command's task reports on: what its cancellation names."""
    report_date = getattr(envelope.data, "report_date", None)
    return report_date if isinstance(report_date, date) else None


def cancel_event(name: str, task_id: uuid.UUID, report_date: date | None, reason: str) -> Envelope[Any]:
    """``report.cancel_requested`` for a task a run of schedule ``name`` started (the ``replace`` policy)."""
    data = ReportCancelRequested(task_id=task_id, report_date=report_date or date.min, requested_by=f"scheduler:{name}", reason=reason)
    return new_event(REPORT_CANCEL_REQUESTED, SOURCE, data)


def build_event(name: str, routing_key: str, payload: Mapping[str, Any], timezone: str, instant: datetime) -> Envelope[Any]:
    """The event one fire publishes; raises ``CommandError`` for a row that breaks the catalogue."""
    found = command(routing_key)
    return new_event(routing_key, SOURCE, found.build(name, validate_payload(routing_key, payload), timezone, instant))
