import asyncio

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from shared.db_faults import database_unavailable, network_failure
from shared.db_gate import DatabaseGate


def _wrapped(error: BaseException) -> sa_exc.DBAPIError:
    """What SQLAlchemy raises for a driver error: the driver's exception as ``orig``."""
    return sa_exc.DBAPIError("SELECT 1", None, error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        _wrapped(asyncpg.AdminShutdownError("terminating connection")),
        sa_exc.TimeoutError("QueuePool limit reached"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_failures_of_the_database_itself_are_recognised(error: BaseException) -> None:
    assert database_unavailable(error)


def test_a_failure_raised_from_a_database_failure_is_recognised() -> None:
    error = RuntimeError("could not record the event")
    error.__cause__ = asyncpg.AdminShutdownError("terminating connection")
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.NumericValueOutOfRangeError("numeric field overflow"),
        _wrapped(asyncpg.UndefinedColumnError("column does not exist")),
        ValueError("a handler's bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_failures_of_the_work_are_not_the_database(error: BaseException) -> None:
    assert not database_unavailable(error)
    assert not network_failure(error)


def test_a_refused_connection_is_a_network_failure_but_not_surely_the_database() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
    assert network_failure(refused)
    assert not database_unavailable(refused)


class FakeDatabase:
    """A probe target that is down until told otherwise, counting the probes."""

    def __init__(self, *, up: bool) -> None:
        self.up = up
        self.probes = 0

    async def probe(self) -> None:
        self.probes += 1
        if not self.up:
            raise ConnectionRefusedError(111, "refused")


async def test_the_gate_closes_on_a_database_failure_and_opens_when_the_probe_answers() -> None:
    database = FakeDatabase(up=False)
    gate = DatabaseGate("test", database.probe, first_wait_s=0.01, max_wait_s=0.02)
    assert await gate.holds(asyncpg.AdminShutdownError("terminating connection"))
    assert gate.paused
    await asyncio.sleep(0.1)
    assert gate.paused
    assert database.probes >= 2
    database.up = True
    async with asyncio.timeout(2):
        await gate.wait_open()
    assert not gate.paused
    assert gate.pauses == 1
    await gate.close()


async def test_a_network_failure_is_the_databases_only_when_the_database_does_not_answer() -> None:
    refused = ConnectionRefusedError(111, "refused")
    database = FakeDatabase(up=True)
    gate = DatabaseGate("test", database.probe, first_wait_s=0.01)
    assert not await gate.holds(refused)  # the handler's own call failed: the database is fine
    assert not gate.paused
    database.up = False
    assert await gate.holds(refused)
    assert gate.paused
    await gate.close()


async def test_a_failure_of_the_work_leaves_the_gate_open() -> None:
    database = FakeDatabase(up=True)
    gate = DatabaseGate("test", database.probe)
    assert not await gate.holds(ValueError("a handler's bug"))
    assert database.probes == 0
    assert not gate.paused


async def test_waiting_for_the_database_ends_when_the_worker_stops() -> None:
    gate = DatabaseGate("test", FakeDatabase(up=False).probe, first_wait_s=0.01)
    await gate.holds(asyncpg.AdminShutdownError("terminating connection"))
    stopping = asyncio.Event()
    stopping.set()
    async with asyncio.timeout(1):
        await gate.wait_open(stopping)
    assert gate.paused
    await gate.close()
