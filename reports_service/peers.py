"""The services the reports service asks over HTTP, on their own ports with the internal token.

Orders answers its day counts (reconciliation); the scheduler answers the task a schedule
fired, until the request reaches this service. A client per call: both are asked rarely
(hourly, or for a task id not found here), so nothing is kept open.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args

import httpx

from shared.domain_errors import Unavailable
from shared.web.caller import INTERNAL_TOKEN


class _Peer:
    def __init__(self, name: str, base_url: str, *, internal_token: str | None, timeout_s: float) -> None:
        self._name = name
        self._base_url = base_url
        self._headers = {INTERNAL_TOKEN.decode(): internal_token} if internal_token else {}
        self._timeout_s = timeout_s

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any | None:
        """The JSON answer, None for a 404, ``Unavailable`` when the peer does not answer."""
        try:
            async with httpx.AsyncClient(base_url=self._base_url, headers=self._headers, timeout=self._timeout_s) as client:
                response = await client.get(path, params=params)
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise Unavailable(f"the {self._name} service did not answer {path}: {type(error).__name__}: {error}"[:500]) from None


class HttpOrdersDays:
    """``GET /orders/days`` of the orders service."""

    def __init__(self, base_url: str, *, internal_token: str | None, timeout_s: float) -> None:
        self._peer = _Peer("orders", base_url, internal_token=internal_token, timeout_s=timeout_s)

    async def day_counts(self, first: date, last: date, *, tz: str) -> Mapping[date, tuple[int, int]]:
        days = await self._peer.get("/orders/days", {"from": first.isoformat(), "to": last.isoformat(), "tz": tz}) or []
        return {date.fromisoformat(day["day"]): (int(day["orders"]), int(day["products"])) for day in days}


Ended = Literal["succeeded", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class FiredTask:
    """A report task as the run that fired it recorded it."""

    schedule: str
    scheduled_for: datetime
    report_date: date
    status: Ended | None  # None: not finished
    fired_at: datetime


class HttpFiredTasks:
    """``GET /admin/scheduler/tasks/{id}`` of the scheduler service."""

    def __init__(self, base_url: str, *, internal_token: str | None, timeout_s: float) -> None:
        self._peer = _Peer("scheduler", base_url, internal_token=internal_token, timeout_s=timeout_s)

    async def fired_task(self, task_id: uuid.UUID) -> FiredTask | None:
        found = await self._peer.get(f"/admin/scheduler/tasks/{task_id}")
        if found is None or found.get("report_date") is None:
            return None
        return FiredTask(
            schedule=found["schedule"],
            scheduled_for=datetime.fromisoformat(found["scheduled_for"]),
            report_date=date.fromisoformat(found["report_date"]),
            status=found["task_status"] if found["task_status"] in get_args(Ended) else None,
            fired_at=datetime.fromisoformat(found["recorded_at"]),
        )
