"""How the instants a schedule missed are decided: fired or skipped, by its catch-up policy and the limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

CatchUp = Literal["skip", "latest", "all"]


@dataclass(frozen=True, slots=True)
class Decision:
    fire: list[datetime]
    skip: list[tuple[datetime, str]]


def decide(instants: list[datetime], now: datetime, *, catch_up: CatchUp, grace: timedelta, max_fires: int | None = None) -> Decision:
    """Instants at most ``grace`` old fire; older ones are missed and follow the policy.

    ``max_fires`` bounds one catch-up (as a Kubernetes CronJob gives up after 100 missed
    starts): beyond it the oldest instants are skipped, so a long outage of a frequent
    schedule does not come back as a flood.
    """
    decision = _by_policy(instants, now, catch_up=catch_up, grace=grace)
    if max_fires is None or len(decision.fire) <= max_fires:
        return decision
    over = len(decision.fire) - max_fires
    reason = f"more than {max_fires} instants due at once; a catch-up fires the {max_fires} most recent"
    return Decision(fire=decision.fire[over:], skip=[*((instant, reason) for instant in decision.fire[:over]), *decision.skip])


def _by_policy(instants: list[datetime], now: datetime, *, catch_up: CatchUp, grace: timedelta) -> Decision:
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
