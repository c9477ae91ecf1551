"""The correlation id of the work in progress (an HTTP request or a consumed event).

Set by the request-id middleware and by the consumer; read by the outbox (event
``correlation_id``) and by the log formatter, so one id follows a request through the suite.
"""

from __future__ import annotations

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return correlation_id.get()
