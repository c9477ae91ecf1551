import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.testing.fixtures import serving
from shared.web.one_write import OneWriteHttpToolsProtocol, TurnWriter


class RecordingTransport:
    """A real transport, with every ``write`` that reaches it recorded."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def recording(protocol: type[HttpToolsProtocol], writes: list[bytes]) -> type[HttpToolsProtocol]:
    class Recording(protocol):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(RecordingTransport(transport, writes))

    return Recording


async def small(_: Request) -> Response:
    return JSONResponse({"id": "order-1", "items": ["a", "b"]})


async def streamed(_: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(3):
            await asyncio.sleep(0.01)
            yield b"chunk-%d;" % index

    return StreamingResponse(chunks(), media_type="text/plain")


async def closing(_: Request) -> Response:
    return Response(b"last words", headers={"Connection": "close"})


APP = FastAPI(routes=[Route("/small", small), Route("/streamed", streamed), Route("/closing", closing)])


async def test_a_small_response_leaves_in_one_write_on_a_kept_alive_connection() -> None:
    writes: list[bytes] = []
    async with serving(APP, http=recording(OneWriteHttpToolsProtocol, writes)) as url, httpx.AsyncClient(base_url=url) as client:
        for _ in range(3):
            response = await client.get("/small")
            assert response.status_code == 200
            assert response.json() == {"id": "order-1", "items": ["a", "b"]}
    assert len(writes) == 3  # one per response: head and body together
    assert all(write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b'"items":["a","b"]}') for write in writes)


async def test_uvicorn_alone_writes_head_and_body_apart() -> None:
    """The reason for the module: if uvicorn starts writing once per response, this fails and the module can go."""
    writes: list[bytes] = []
    async with serving(APP, http=recording(HttpToolsProtocol, writes)) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/small")).status_code == 200
    assert len(writes) == 2


async def test_a_streamed_body_still_leaves_chunk_by_chunk_in_order() -> None:
    writes: list[bytes] = []
    async with serving(APP, http=recording(OneWriteHttpToolsProtocol, writes)) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/streamed")
    assert response.text == "chunk-0;chunk-1;chunk-2;"
    assert len(writes) >= 3  # each chunk waits for its own turn, not for the whole body


async def test_a_response_before_close_is_sent_before_the_connection_closes() -> None:
    async with serving(APP) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /closing HTTP/1.1\r\nHost: test\r\n\r\n")
        received = await asyncio.wait_for(reader.read(), 5)  # until the server closes
        writer.close()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(b"\r\n\r\nlast words")


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_writes_within_a_turn_join_and_later_turns_leave_apart() -> None:
    transport = FakeTransport()
    writer = TurnWriter(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    writer.write(b"head;")
    writer.write(b"body")
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"head;body"]
    writer.write(b"next")
    await asyncio.sleep(0)
    assert transport.writes == [b"head;body", b"next"]


async def test_close_sends_what_waits_and_a_closed_transport_gets_nothing() -> None:
    transport = FakeTransport()
    writer = TurnWriter(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    writer.write(b"goodbye")
    writer.close()
    assert transport.writes == [b"goodbye"]
    assert transport.closed
    writer.write(b"too late")
    await asyncio.sleep(0)
    assert transport.writes == [b"goodbye"]
