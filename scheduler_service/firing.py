"""What one fire of a schedule publishes, and how missed instants are decided."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from scheduler_service.cron import zone
from shared.contracts.reports import ReportRequested
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import new_event
from shared.messaging.topology import REPORT_REQUESTED

SOURCE = "scheduler_service"
CatchUp = Literal["skip", "latest", "all"]


class ScheduledPayload(BaseModel):
    """Any other routing key: the schedule's payload plus ``scheduled_for``."""

    model_config = ConfigDict(extra="allow")


def build_event(name: str, routing_key: str, payload: dict[str, Any], timezone: str, instant: datetime) -> Envelope[Any]:
    if routing_key == REPORT_REQUESTED:
        local_day = instant.astimezone(zone(timezone)).date()
        data: BaseModel = ReportRequested(
            task_id=uuid.uuid4(), report_date=local_day - timedelta(days=1), requested_by=f"scheduler:{name}", scheduled_for=instant
        )
    else:
        data = ScheduledPayload(**payload, scheduled_for=instant.isoformat())
    return new_event(routing_key, SOURCE, data)


@dataclass(frozen=True, slots=True)
class Decision:
    fire: list[datetime]
    skip: list[tuple[datetime, str]]


def decide(instants: list[datetime], now: datetime, *, catch_up: CatchUp, grace: timedelta) -> Decision:
    """Instants at most ``grace`` old fire; older ones are missed and follow the policy."""
    on_time = [instant for instant in instants if now - instant <= grace]
    missed = [instant for instant in instants if now - instant > grace]
    if catch_up == "all":
        return Decision(fire=missed + on_time, skip=[])
    if catch_up == "latest" and missed and not on_time:
        return Decision(
            fire=[missed[-1]], skip=[(instant, "missed; catch-up policy 'latest' fires only the most recent") for instant in missed[:-1]]
        )
    reason = "missed; catch-up policy 'skip'" if catch_up == "skip" else "missed; catch-up policy 'latest' fires only the most recent"
    return Decision(fire=on_time, skip=[(instant, reason) for instant in missed])
