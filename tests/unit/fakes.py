"""In-memory stand-ins for the outbox and the broker side of a unit of work, for use-case tests.

``RecordingOutbox`` keeps the rows the real ``outbox_row`` builds, so a test reads what the
relay would publish: routing key, type, body and correlation id.
"""

from __future__ import annotations

from typing import Any

import orjson

from shared.messaging.envelope import Envelope
from shared.messaging.outbox import outbox_row


class RecordingOutbox:
    """``EventsOut`` that keeps each row instead of inserting it."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def add(self, envelope: Envelope[Any], *, routing_key: str | None = None, headers: dict[str, Any] | None = None) -> None:
        self.rows.append(outbox_row(envelope, routing_key=routing_key, headers=headers))

    def published(self, routing_key: str) -> list[dict[str, Any]]:
        """The ``data`` of each event the relay would publish with this routing key, in order."""
        return [orjson.loads(row["body"])["data"] for row in self.rows if row["routing_key"] == routing_key]
