"""``/admin/<service>/outbox``: the events the relay parked (the broker refused each of them every
time, mostly because no queue is bound to its routing key), and sending them again.

Mounted by ``service_app`` on every service with an outbox; the gateway lets only
operators reach ``/admin/...``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.web.deps import RuntimeDep
from shared.web.errors import ServiceError
from shared.web.params import ids_or_all, within_depth

PARKED = "available_at = 'infinity' AND published_at IS NULL"
MAX_IDS = 1_000


class ParkedEvent(BaseModel):
    event_id: uuid.UUID
    routing_key: str
    event_type: str
    attempts: int
    last_error: str | None
    created_at: datetime


class ParkedPage(BaseModel):
    items: list[ParkedEvent]
    total: int = Field(description="parked events of this service")
    page: int
    count: int


class RepublishIn(BaseModel):
    """Either ``ids`` (event ids, each of them parked) or ``"all": true``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"all": True}]})

    ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=MAX_IDS)
    all: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> RepublishIn:
        ids_or_all(self.ids, self.all)
        return self


class Republished(BaseModel):
    republished: int = Field(description="events made due now; the relay publishes them on its next pass")


def outbox_admin_router(service: str) -> APIRouter:
    router = APIRouter(prefix=f"/admin/{service}/outbox", tags=["admin"])

    @router.get("", response_model=ParkedPage)
    async def parked(
        runtime: RuntimeDep,
        status: Annotated[Literal["unroutable"], Query(description="unroutable: parked after OUTBOX_MAX_ATTEMPTS refusals")] = "unroutable",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        count: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> ParkedPage:
        """Parked events, oldest first, with the broker's last refusal."""
        within_depth(page, count, runtime.settings.list_depth_limit)
        table = _table(runtime)
        async with runtime.driver_pool.acquire() as connection:
            total = await connection.fetchval(f"SELECT count(*) FROM {table} WHERE {PARKED}")
            rows = await connection.fetch(
                f"SELECT event_id, routing_key, event_type, attempts, last_error, created_at FROM {table} WHERE {PARKED} "
                "ORDER BY id LIMIT $1 OFFSET $2",
                count,
                (page - 1) * count,
            )
        return ParkedPage(items=[ParkedEvent(**dict(row)) for row in rows], total=int(total or 0), page=page, count=count)

    @router.post("/republish", response_model=Republished)
    async def republish(body: RepublishIn, runtime: RuntimeDep) -> Republished:
        """Make parked events due again, with their attempts reset: once their routing key is bound, they are published."""
        table = _table(runtime)
        async with runtime.driver_pool.acquire() as connection, connection.transaction():
            if body.all:
                result = await connection.execute(f"UPDATE {table} SET available_at = now(), attempts = 0 WHERE {PARKED}")
                return Republished(republished=int(result.split()[-1]))
            ids = sorted(set(body.ids or []))
            found = await connection.fetch(f"SELECT event_id FROM {table} WHERE {PARKED} AND event_id = ANY($1::uuid[]) FOR UPDATE", ids)
            missing = sorted(set(ids) - {row["event_id"] for row in found})
            if missing:
                shown = ", ".join(str(event_id) for event_id in missing[:10])
                raise ServiceError(422, f"ids: not parked events of this service: {shown}", code="not_parked")
            await connection.execute(f"UPDATE {table} SET available_at = now(), attempts = 0 WHERE event_id = ANY($1::uuid[])", ids)
        return Republished(republished=len(ids))

    return router


def _table(runtime: Any) -> str:
    if runtime.outbox is None:
        raise ServiceError(404, "this service has no outbox")
    return str(runtime.outbox.table.name)
