import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any

import aio_pika
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import Column, MetaData, String, Table, Uuid, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import tracing
from shared.contracts.orders import OrderCreated
from shared.correlation import current_correlation_id
from shared.db import create_engine, create_session_factory, drop_database, ensure_database
from shared.messaging.consumer import ATTEMPTS_HEADER, Consumer, RetryPolicy, Subscription, define_processed_events_table
from shared.messaging.envelope import Envelope
from shared.messaging.publisher import OutgoingMessage, Publisher
from shared.messaging.topology import ConsumerQueue
from shared.testing import observed
from shared.testing.broker import drain, queue_depth
from shared.testing.fixtures import eventually
from shared.testing.infrastructure import Infrastructure
from shared.testing.tcp_proxy import TcpProxy
from tests.unit.shared.test_envelope import _order_created

metadata = MetaData()
processed_events = define_processed_events_table(metadata)
effects = Table("effects", metadata, Column("event_id", Uuid, nullable=False), Column("note", String(50)))
QUEUE = ConsumerQueue("tester", "order.created")


@pytest.fixture(scope="module")
async def consumer_db(infrastructure: Infrastructure, run_id: str) -> AsyncIterator[str]:
    url = infrastructure.database_url(f"consumer_{run_id}")
    await ensure_database(url)
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await engine.dispose()
    yield url
    await drop_database(url)


class Harness:
    """A consumer whose handler records effects and fails for chosen events."""

    def __init__(self, db_url: str, broker_url: str, exchange_name: str, *, tiers_ms: tuple[int, ...] = (50, 100, 200)) -> None:
        self.engine = create_engine(db_url)
        self.calls: Counter[uuid.UUID] = Counter()
        self.fail_times: dict[uuid.UUID, int] = {}
        self.held: dict[uuid.UUID, asyncio.Event] = {}
        self.consumer = Consumer(
            service="tester",
            broker_url=broker_url,
            exchange_name=exchange_name,
            session_factory=create_session_factory(self.engine),
            processed_events=processed_events,
            subscriptions=[Subscription("order.created", OrderCreated, self.handle)],
            retry=RetryPolicy(max_attempts=3, tiers_ms=tiers_ms),
            batch_size=50,
            concurrency=2,
        )
        self.publisher = Publisher(broker_url, exchange_name)

    async def handle(self, event: Envelope[Any], session: AsyncSession) -> None:
        self.calls[event.id] += 1
        if event.id in self.held:
            await self.held[event.id].wait()
        await session.execute(insert(effects).values(event_id=event.id, note="done"))
        if self.fail_times.get(event.id, 0) > 0:
            self.fail_times[event.id] -= 1
            raise RuntimeError(f"boom for {event.id}")

    async def effects_of(self, event_id: uuid.UUID) -> int:
        async with self.engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(effects).where(effects.c.event_id == event_id)) or 0)

    async def send(self, envelope: Envelope[Any]) -> None:
        await self.publisher.publish(OutgoingMessage.from_envelope(envelope))

    async def __aenter__(self) -> "Harness":
        self.consumer.start()
        await eventually(lambda: _true(self.consumer.attached), what="consumer attached")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()
        await self.publisher.close()
        await self.engine.dispose()


async def _true(value: bool) -> bool:
    return value


def _event() -> Envelope[OrderCreated]:
    return Envelope[OrderCreated](type="order.created", source="orders_service", data=_order_created())


async def test_a_duplicated_event_has_one_effect(consumer_db: str, broker_url: str, exchange_name: str) -> None:
    async with Harness(consumer_db, broker_url, exchange_name) as harness:
        event = _event()
        before = observed.acked(QUEUE.name)
        for _ in range(3):
            await harness.send(event)

        async def all_acked() -> bool:
            return observed.acked(QUEUE.name) >= before + 3

        await eventually(all_acked, what="the three deliveries handled and acked")
        assert await harness.effects_of(event.id) == 1
        assert harness.calls[event.id] == 1


async def test_a_short_retry_is_not_held_behind_a_long_one(consumer_db: str, broker_url: str, exchange_name: str) -> None:
    """Tiers of 1 s and 5 min: an event that failed twice waits 5 min; one that failed once comes back after 1 s,
    where one retry queue of per-message TTLs would hold it behind the 5 min message at its head."""
    async with Harness(consumer_db, broker_url, exchange_name, tiers_ms=(1_000, 300_000)) as harness:
        slow, quick = _event(), _event()
        harness.fail_times[slow.id] = 2
        await harness.send(slow)
        long_wait = QUEUE.retry_name(300_000)
        await eventually(lambda: _depth_is(broker_url, long_wait, 1), timeout_s=15, what="the twice-failed event in the 5 min tier")
        harness.fail_times[quick.id] = 1
        await harness.send(quick)
        await eventually(lambda: _effects_are(harness, quick.id, 1), timeout_s=5, what="the once-failed event back after its 1 s")
        assert harness.calls[quick.id] == 2
        assert await queue_depth(broker_url, long_wait) == 1, "the 5 min retry still waits"
        assert await harness.effects_of(slow.id) == 0


async def test_a_transient_failure_is_retried_and_then_succeeds_once(consumer_db: str, broker_url: str, exchange_name: str) -> None:
    async with Harness(consumer_db, broker_url, exchange_name) as harness:
        event = _event()
        harness.fail_times[event.id] = 2
        await harness.send(event)
        await eventually(lambda: _effects_are(harness, event.id, 1), what="effect after two failures")
        assert harness.calls[event.id] == 3
        assert await queue_depth(broker_url, QUEUE.dlq_name) == 0


async def test_a_failing_handler_is_retried_then_dead_lettered_with_its_attempts(
    consumer_db: str, broker_url: str, exchange_name: str
) -> None:
    async with Harness(consumer_db, broker_url, exchange_name) as harness:
        event = _event()
        harness.fail_times[event.id] = 99
        await harness.send(event)
        parked = await _read_dlq(broker_url)
        assert harness.calls[event.id] == 3
        assert await harness.effects_of(event.id) == 0, "a failed attempt's writes are rolled back"
    assert parked.message_id == str(event.id)
    assert parked.headers[ATTEMPTS_HEADER] == 3
    assert "boom" in str(parked.headers["x-error"])
    assert parked.headers["x-error-kind"] == "handler_failed"
    assert Envelope[OrderCreated].model_validate_json(parked.body) == event


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"id": "1", "type": "order.created"}', b'{"type":"order.created","source":"x","data":{"order_id":"nope"}}']
)
async def test_a_malformed_message_goes_straight_to_the_dlq(consumer_db: str, broker_url: str, exchange_name: str, body: bytes) -> None:
    async with Harness(consumer_db, broker_url, exchange_name) as harness:
        async with await aio_pika.connect(broker_url) as connection:
            exchange = await (await connection.channel()).get_exchange(exchange_name)
            await exchange.publish(aio_pika.Message(body, message_id="bad-1"), routing_key="order.created")
        parked = await _read_dlq(broker_url)
        assert not harness.calls
    assert parked.body == body
    assert parked.headers["x-error-kind"] == "malformed"
    assert parked.headers[ATTEMPTS_HEADER] == 0
    assert "invalid message" in str(parked.headers["x-error"])


async def test_a_message_of_an_unknown_version_or_over_the_size_limit_is_parked_unread(
    consumer_db: str, broker_url: str, exchange_name: str
) -> None:
    newer = _event().model_copy(update={"version": 2})
    oversized = b'{"padding": "' + b"x" * (1 << 20) + b'"}'
    async with Harness(consumer_db, broker_url, exchange_name) as harness:
        async with await aio_pika.connect(broker_url) as connection:
            exchange = await (await connection.channel()).get_exchange(exchange_name)
            await exchange.publish(aio_pika.Message(newer.to_json(), message_id=str(newer.id)), routing_key="order.created")
            await exchange.publish(aio_pika.Message(oversized, message_id="big-1"), routing_key="order.created")
        connection = await aio_pika.connect(broker_url)
        try:
            queue = await (await connection.channel()).declare_queue(QUEUE.dlq_name, passive=True)
            parked = {message.message_id: message for message in await drain(queue, 2, timeout_s=20)}
        finally:
            await connection.close()
        assert not harness.calls
    assert parked[str(newer.id)].headers["x-error-kind"] == "unsupported_version"
    assert "knows up to version 1" in str(parked[str(newer.id)].headers["x-error"])
    assert parked["big-1"].headers["x-error-kind"] == "oversized"
    assert parked["big-1"].body == oversized


async def test_one_failing_event_does_not_hold_back_its_batch(consumer_db: str, broker_url: str, exchange_name: str) -> None:
    async with Harness(consumer_db, broker_url, exchange_name) as harness:
        events = [_event() for _ in range(40)]
        harness.fail_times[events[7].id] = 99
        await asyncio.gather(*(harness.send(event) for event in events))
        await _read_dlq(broker_url)
        for event in events:
            if event is not events[7]:
                assert await harness.effects_of(event.id) == 1


async def test_a_message_still_running_is_not_acked_with_later_ones(consumer_db: str, broker_url: str, exchange_name: str) -> None:
    """Later batches are acked while an earlier message runs; that one stays unacked, so a
    consumer that dies now gets it back from the broker (the ack tracker's one rule)."""
    harness = Harness(consumer_db, broker_url, exchange_name)
    await harness.__aenter__()
    try:
        slow = _event()
        harness.held[slow.id] = asyncio.Event()
        await harness.send(slow)
        await eventually(lambda: _true(harness.calls[slow.id] == 1), what="slow event started")
        later = [_event() for _ in range(20)]
        await asyncio.gather(*(harness.send(event) for event in later))
        for event in later:
            await eventually(partial(_effects_are, harness, event.id, 1), what="later events committed")
        await harness.consumer.stop(drain_timeout_s=0.5)  # dies with the slow one unfinished
        await eventually(lambda: _depth_is(broker_url, QUEUE.name, 1), what="only the slow event back in the queue")
        assert await harness.effects_of(slow.id) == 0
    finally:
        await harness.publisher.close()
        await harness.engine.dispose()
    async with Harness(consumer_db, broker_url, exchange_name) as again:
        await eventually(lambda: _effects_are(again, slow.id, 1), what="slow event handled by the next consumer")


@contextlib.asynccontextmanager
async def _batching_consumer(
    db_url: str, broker_url: str, exchange_name: str, *, on_batch: Callable[[Sequence[Envelope[Any]]], None] | None = None, **options: Any
) -> AsyncIterator[tuple[list[int], Publisher]]:
    """A started consumer whose batch handler notes each batch's size (and calls ``on_batch``), and a publisher."""
    engine = create_engine(db_url)
    batches: list[int] = []

    async def record(events: Sequence[Envelope[Any]], session: AsyncSession) -> None:
        batches.append(len(events))
        if on_batch is not None:
            on_batch(events)
        await session.execute(insert(effects), [{"event_id": event.id, "note": "batched"} for event in events])

    consumer = Consumer(
        service="tester",
        broker_url=broker_url,
        exchange_name=exchange_name,
        session_factory=create_session_factory(engine),
        processed_events=processed_events,
        subscriptions=[Subscription("order.created", OrderCreated, batch_handler=record)],
        **options,
    )
    publisher = Publisher(broker_url, exchange_name)
    consumer.start()
    try:
        await eventually(lambda: _true(consumer.attached), what="consumer attached")
        yield batches, publisher
    finally:
        await consumer.stop()
        await publisher.close()
        await engine.dispose()


async def test_messages_arriving_during_a_linger_share_one_batch(consumer_db: str, broker_url: str, exchange_name: str) -> None:
    """One worker gathers while the others wait their turn: four workers lingering side by side
    would each take one of the first messages and commit four batches."""
    async with _batching_consumer(consumer_db, broker_url, exchange_name, concurrency=4, batch_linger_s=0.5) as (batches, publisher):
        for _ in range(12):  # one at a time, well inside the first message's linger
            await publisher.publish(OutgoingMessage.from_envelope(_event()))
            await asyncio.sleep(0.01)
        await eventually(lambda: _true(sum(batches) == 12), what="every message handled")
        assert len(batches) <= 2, batches


@pytest.mark.parametrize(("batch_size", "prefetch", "full"), [(10, 200, 10), (100, 5, 5)], ids=["batch size", "prefetch"])
async def test_a_full_batch_does_not_wait_out_the_linger(
    consumer_db: str, broker_url: str, exchange_name: str, batch_size: int, prefetch: int, full: int
) -> None:
    """The linger bounds the wait for a batch to fill; once it is full the worker goes on. With a
    fixed wait, a worker could gather at most one batch per linger, whatever the backlog. A
    batch is full at the prefetch: no more messages can be on their way."""
    options: dict[str, Any] = {"batch_size": batch_size, "prefetch": prefetch, "batch_linger_s": 120}
    async with _batching_consumer(consumer_db, broker_url, exchange_name, **options) as (batches, publisher):
        await publisher.publish_many([OutgoingMessage.from_envelope(_event()) for _ in range(30)])
        # far inside the linger: only full batches can have been handled by now
        await eventually(lambda: _true(sum(batches) == 30), timeout_s=30, what="full batches handled")
        assert batches == [full] * (30 // full)


@pytest.mark.slow
async def test_the_consumer_resumes_after_a_broker_restart(
    consumer_db: str, broker_url: str, exchange_name: str, infrastructure: Infrastructure
) -> None:
    async with Harness(consumer_db, broker_url, exchange_name) as harness:
        before = _event()
        await harness.send(before)
        await eventually(lambda: _effects_are(harness, before.id, 1), what="first event handled")
        await asyncio.to_thread(infrastructure.stop_broker)
        await asyncio.to_thread(infrastructure.start_broker)
        await eventually(lambda: _true(harness.consumer.attached), timeout_s=60, what="consumer re-attached")
        after = _event()
        await harness.send(after)
        await eventually(lambda: _effects_are(harness, after.id, 1), what="event after restart handled")


async def test_a_database_outage_spends_no_attempt_and_parks_nothing(consumer_db: str, broker_url: str, exchange_name: str) -> None:
    """With the database cut off the consumer pauses and holds its messages; none is retried or parked, and all
    are handled once the database answers (the retry policy here would park a failing message within 0.4 s)."""
    async with TcpProxy.in_front_of(consumer_db) as proxy, Harness(proxy.url_for(consumer_db), broker_url, exchange_name) as harness:
        proxy.cut()
        events = [_event() for _ in range(30)]
        for event in events:
            await harness.send(event)
        await eventually(lambda: _true(harness.consumer.paused), what="consumer paused")
        await asyncio.sleep(2)
        assert await queue_depth(broker_url, QUEUE.dlq_name) == 0
        assert harness.consumer.paused
        proxy.restore()
        for event in events:
            await eventually(partial(_effects_are, harness, event.id, 1), what=f"event {event.id} handled")
        assert not harness.consumer.paused
        assert await queue_depth(broker_url, QUEUE.dlq_name) == 0
        for tier in (50, 100, 200):
            assert await queue_depth(broker_url, QUEUE.retry_name(tier)) == 0
        assert all(harness.calls[event.id] == 1 for event in events)


async def _depth_is(broker_url: str, name: str, depth: int) -> bool:
    return await queue_depth(broker_url, name) == depth


async def _effects_are(harness: Harness, event_id: uuid.UUID, count: int) -> bool:
    return await harness.effects_of(event_id) == count


async def _read_dlq(broker_url: str) -> aio_pika.abc.AbstractIncomingMessage:
    connection = await aio_pika.connect(broker_url)
    try:
        queue = await (await connection.channel()).declare_queue(QUEUE.dlq_name, passive=True)
        (message,) = await drain(queue, 1, timeout_s=20)
        return message
    finally:
        await connection.close()


class _Lines(logging.Handler):
    """What the consumer logs, with the correlation and trace ids current as each line is written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str | None, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.getMessage(), current_correlation_id(), tracing.current_ids()[0]))


async def test_each_event_of_a_batch_logs_its_own_correlation_and_trace_ids(consumer_db: str, broker_url: str, exchange_name: str) -> None:
    lines = _Lines()
    logger = logging.getLogger("shared.messaging.consumer")
    logger.addHandler(lines)
    try:
        async with Harness(consumer_db, broker_url, exchange_name) as harness:
            events = [_event().model_copy(update={"correlation_id": f"request-{n}"}) for n in range(2)]
            traces = [uuid.uuid4().hex for _ in events]
            for event, trace_id in zip(events, traces, strict=True):
                harness.fail_times[event.id] = 99
                traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
                await harness.publisher.publish(OutgoingMessage.from_envelope(event, headers={"traceparent": traceparent}))

            async def both_parked() -> bool:
                return sum(message == "message parked" for message, _, _ in lines.lines) == 2

            await eventually(both_parked, what="both events parked after their attempts")
    finally:
        logger.removeHandler(lines)
    expected = set(zip([event.correlation_id for event in events], traces, strict=True))
    for kind in ("handler failed; retrying later", "message parked"):
        assert {(correlation, trace_id) for message, correlation, trace_id in lines.lines if message == kind} == expected, kind


async def test_while_tracing_each_message_is_the_parent_or_a_link_of_the_span_that_handled_it(
    consumer_db: str, broker_url: str, exchange_name: str
) -> None:
    exporter = InMemorySpanExporter()
    tracing.install("tester", SimpleSpanProcessor(exporter))
    try:
        async with Harness(consumer_db, broker_url, exchange_name) as harness:
            events = [_event() for _ in range(20)]
            publishes = {event.id: (int(uuid.uuid4().hex, 16), int(uuid.uuid4().hex[:16], 16)) for event in events}
            messages = [
                OutgoingMessage.from_envelope(event, headers={"traceparent": f"00-{trace_id:032x}-{span_id:016x}-01"})
                for event, (trace_id, span_id) in zip(events, publishes.values(), strict=True)
            ]
            await harness.publisher.publish_many(messages)
            await eventually(lambda: _all_effects(harness, events), what="all 20 events handled")
    finally:
        tracing.uninstall()
    reached = set()
    for span in exporter.get_finished_spans():
        assert span.kind == SpanKind.CONSUMER
        assert span.name == "process order.created"
        if span.parent is not None:  # one message: the child of its publish
            reached.add((span.context.trace_id, span.parent.span_id))
            assert span.parent.trace_id == span.context.trace_id
        reached.update((link.context.trace_id, link.context.span_id) for link in span.links)  # a batch: linked to each
    assert reached == set(publishes.values())


async def _all_effects(harness: Harness, events: list[Envelope[Any]]) -> bool:
    return all([await harness.effects_of(event.id) == 1 for event in events])


async def test_while_tracing_a_batch_handler_runs_inside_the_span_of_its_batch(
    consumer_db: str, broker_url: str, exchange_name: str
) -> None:
    """What a batch handler stores for later, and the events it writes, continue the span that linked its messages."""
    exporter = InMemorySpanExporter()
    seen: dict[uuid.UUID, dict[str, str] | None] = {}

    def note_carrier(events: Sequence[Envelope[Any]]) -> None:
        carrier = tracing.current_carrier()
        seen.update((event.id, carrier) for event in events)

    tracing.install("tester", SimpleSpanProcessor(exporter))
    try:
        batching = _batching_consumer(consumer_db, broker_url, exchange_name, on_batch=note_carrier, batch_size=50, concurrency=2)
        async with batching as (_, publisher):
            events = [_event() for _ in range(20)]
            publishes = {event.id: f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01" for event in events}
            messages = [OutgoingMessage.from_envelope(event, headers={"traceparent": publishes[event.id]}) for event in events]
            await publisher.publish_many(messages)
            await eventually(lambda: _true(len(seen) == len(events)), what="all 20 events handled")
    finally:
        tracing.uninstall()
    handled_by = {}
    for span in exporter.get_finished_spans():
        parents = [span.parent] if span.parent is not None else [link.context for link in span.links]
        for parent in parents:
            handled_by[f"{parent.trace_id:032x}-{parent.span_id:016x}"] = f"{span.context.trace_id:032x}-{span.context.span_id:016x}"
    for event in events:
        carrier = seen[event.id]
        assert carrier is not None
        assert carrier["traceparent"][3:52] == handled_by[publishes[event.id][3:52]]  # trace and span ids


async def test_outside_any_span_there_is_no_carrier_to_store() -> None:
    tracing.install("tester", SimpleSpanProcessor(InMemorySpanExporter()))
    try:
        assert tracing.current_carrier() is None
    finally:
        tracing.uninstall()
    assert tracing.current_carrier() is None
