import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.messaging import write_batching
from shared.messaging.publisher import OutgoingMessage, Publisher
from shared.messaging.write_batching import TurnBatchingWriter
from shared.testing.broker import bound_queue, drain
from tests.integration.shared.test_consumer import _event


@pytest.fixture
async def socket_pair() -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A real TCP connection over loopback: what the server side receives, and the client's writer."""
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(reader)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    reader = await accepted.get()
    yield reader, writer
    writer.close()
    server.close()


async def test_writes_that_keep_coming_leave_together_in_order(socket_pair: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    reader, writer = socket_pair
    sends: list[bytes] = []
    real_write = writer.write

    def counting_write(data: bytes) -> None:
        sends.append(bytes(data))
        real_write(data)

    writer.write = counting_write  # type: ignore[method-assign,assignment]
    batching = TurnBatchingWriter(writer)
    for chunk in (b"one,", b"two,"):
        batching.write(chunk)
    await asyncio.sleep(0)
    batching.write(b"three,")  # a write in the next turn joins them
    await asyncio.sleep(0)
    assert sends == []
    await asyncio.sleep(0)  # a turn without a write: it all leaves
    assert sends == [b"one,two,three,"]
    for turn in range(write_batching.MAX_TURNS + 5):  # writes every turn still leave every MAX_TURNS turns
        batching.write(b"%d," % turn)
        await asyncio.sleep(0)
    assert len(sends) == 2
    batching.write(b"last,")
    await batching.drain()  # drain sends what is waiting first
    batching.write(b"closing")
    batching.close()  # and so does close
    received = b"".join(sends)
    assert received == b"one,two,three," + b"".join(b"%d," % turn for turn in range(write_batching.MAX_TURNS + 5)) + b"last,closing"
    assert await reader.read() == received


async def test_a_large_write_leaves_at_once(socket_pair: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    reader, writer = socket_pair
    batching = TurnBatchingWriter(writer)
    batching.write(b"x" * write_batching.MAX_BYTES)
    assert await asyncio.wait_for(reader.readexactly(write_batching.MAX_BYTES), 5) == b"x" * write_batching.MAX_BYTES


async def test_a_batch_of_publishes_shares_sends_and_arrives_whole_and_in_order(
    broker_url: str, exchange_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sends = 0
    real_flush = TurnBatchingWriter.flush

    def counting_flush(self: TurnBatchingWriter) -> None:
        nonlocal sends
        sends += bool(self._buffer)
        real_flush(self)

    monkeypatch.setattr(TurnBatchingWriter, "flush", counting_flush)
    publisher = Publisher(broker_url, exchange_name)
    events = [_event() for _ in range(200)]
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        with write_batching.installed():
            assert write_batching.install(), "aiormq's writer moved: the installed aiormq needs a new hook"
            assert write_batching.is_installed()
            await publisher.connect()
        sends = 0
        outcomes = await publisher.publish_many([OutgoingMessage.from_envelope(event) for event in events])
        assert outcomes == [None] * 200  # every one confirmed
        assert sends <= 200 / 5, f"{sends} sends for 200 publishes"
        received = await drain(queue, 200)
    await publisher.close()
    assert [message.message_id for message in received] == [str(event.id) for event in events]
