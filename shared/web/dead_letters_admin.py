"""``/admin/<service>/dead-letters``: what the service's consumer parked, replayed or dropped by an operator.

Mounted by ``service_app`` on every service that consumes; the gateway lets only
operators reach ``/admin/...``. The operations are ``shared.messaging.dead_letters``'s.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.messaging.dead_letters import DeadLetters
from shared.web.deps import RuntimeDep
from shared.web.errors import ServiceError
from shared.web.params import ids_or_all

MAX_IDS = 1_000


class DeadLetterOut(BaseModel):
    id: str = Field(description="the message id (the event id); `sha256:...` of the body for a message without one")
    type: str | None
    routing_key: str | None
    attempts: int = Field(description="the attempts it had when it was parked")
    error: str | None
    error_kind: str | None = Field(description="malformed, handler_failed, unroutable, forbidden_source")
    parked_at: datetime | None
    replays: int = Field(description="how often it was replayed before")


class DeadLetterPage(BaseModel):
    queue: str
    dead_letter_queue: str
    items: list[DeadLetterOut]
    total: int = Field(description="messages parked in the queue's DLQ")
    page: int
    count: int


class DeadLetterQueueOut(BaseModel):
    queue: str
    dead_letter_queue: str
    messages: int


class Selection(BaseModel):
    """``queue`` and either ``ids`` (each of them parked) or ``"all": true``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"queue": "reports.order.created", "all": True}]})

    queue: str = Field(min_length=1, max_length=255)
    ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(default=None, min_length=1, max_length=MAX_IDS)
    all: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> Selection:
        ids_or_all(self.ids, self.all)
        return self


class Replayed(BaseModel):
    replayed: int = Field(description="messages moved back to the work queue, their attempts reset")


class Purged(BaseModel):
    purged: int = Field(description="messages dropped from the DLQ")


def dead_letters_router(service: str) -> APIRouter:
    router = APIRouter(prefix=f"/admin/{service}/dead-letters", tags=["admin"])

    @router.get("/queues", response_model=list[DeadLetterQueueOut])
    async def queues(runtime: RuntimeDep) -> list[DeadLetterQueueOut]:
        """Each queue of this service with the number of messages parked in its DLQ."""
        return [DeadLetterQueueOut(**dataclasses.asdict(queue)) for queue in await _of(runtime).queues()]

    @router.get("", response_model=DeadLetterPage)
    async def parked(
        runtime: RuntimeDep,
        queue: Annotated[str, Query(min_length=1, max_length=255, description="a queue of this service, e.g. `reports.order.created`")],
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        count: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> DeadLetterPage:
        """Parked messages of ``queue``, oldest first, with the error that parked each; read without removing or reordering any."""
        dead_letters = _of(runtime)
        consumer_queue = dead_letters.queue(queue)
        items, total = await dead_letters.read(queue, page=page, count=count)
        return DeadLetterPage(
            queue=consumer_queue.name,
            dead_letter_queue=consumer_queue.dlq_name,
            items=[DeadLetterOut(**dataclasses.asdict(item)) for item in items],
            total=total,
            page=page,
            count=count,
        )

    @router.post("/replay", response_model=Replayed)
    async def replay(body: Selection, runtime: RuntimeDep) -> Replayed:
        """Back to the work queue with the attempt count reset; the replay is recorded in ``x-replays``."""
        return Replayed(replayed=await _of(runtime).replay(body.queue, None if body.all else body.ids))

    @router.post("/purge", response_model=Purged)
    async def purge(body: Selection, runtime: RuntimeDep) -> Purged:
        """Drop parked messages for good."""
        return Purged(purged=await _of(runtime).purge(body.queue, None if body.all else body.ids))

    return router


def _of(runtime: RuntimeDep) -> DeadLetters:
    if runtime.dead_letters is None:
        raise ServiceError(404, "this service consumes no queue")
    return runtime.dead_letters
