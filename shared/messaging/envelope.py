"""The envelope every event travels in, and its mapping onto AMQP properties."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

DataT = TypeVar("DataT", bound=BaseModel)

CONTENT_TYPE = "application/json"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[DataT]):
    """``{"id", "type", "version", "occurred_at", "source", "correlation_id", "data"}``.

    Unknown fields are ignored so producers can add fields without breaking consumers;
    breaking changes bump ``version``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str = Field(min_length=1, max_length=255)
    version: int = Field(default=1, ge=1)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    source: str = Field(min_length=1, max_length=255)
    correlation_id: str | None = Field(default=None, max_length=255)
    data: DataT

    @field_validator("occurred_at", mode="after")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
