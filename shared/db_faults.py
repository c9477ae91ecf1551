"""Which failures are the database's, not the work's.

A consumer that cannot reach its own database must not count that against a message (it
would spend the message's attempts inside an outage and park good work), and an API
must answer 503 rather than 500. The failures named here go away by themselves: the
server is unreachable or restarting, a connection was lost or killed, the pool is
exhausted, a failover leaves the server read-only, or the transaction lost a race
(serialization failure, deadlock) and only needs running again.

A bare network error (connection refused, reset, a timeout) is ambiguous: it is what the
driver raises when PostgreSQL is down, and also what a handler's own call to another
server raises. ``network_failure`` names those; a caller that must tell them apart asks
the database itself (``Consumer`` probes it before pausing).
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from sqlalchemy import exc as sa_exc

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: connection exception
    asyncpg.CannotConnectNowError,  # 57P03: the server is starting or in recovery
    asyncpg.AdminShutdownError,  # 57P01: shut down, or the backend was terminated
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.SerializationError,  # 40001
    asyncpg.DeadlockDetectedError,  # 40P01
    asyncpg.ReadOnlySQLTransactionError,  # 25006: a standby, during a failover
    asyncpg.ConnectionDoesNotExistError,  # the connection was lost mid-query
    sa_exc.TimeoutError,  # the pool had no connection to give in time
)
_NETWORK: tuple[type[BaseException], ...] = (OSError, TimeoutError)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and what it was raised from (``raise ... from``, SQLAlchemy's ``orig``)."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            pending.append(current.__cause__)
        original = getattr(current, "orig", None)
        if isinstance(original, BaseException):
            pending.append(original)


def database_unavailable(error: BaseException) -> bool:
    """True when ``error`` says, without doubt, that the database is out of reach or the transaction only needs a rerun."""
    for current in _chain(error):
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _UNAVAILABLE):
            return True
    return False


def network_failure(error: BaseException) -> bool:
    """True for a refused, reset or timed-out connection: the database's if it does not answer either."""
    return any(isinstance(current, _NETWORK) for current in _chain(error))
