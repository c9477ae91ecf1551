"""uvicorn's httptools protocol, sending each response's head and body in one socket write.

uvicorn writes the status line and headers as soon as the app sends
``http.response.start``, and the body as a second write: two ``send`` calls per
response, and on a keep-alive connection two segments the client must wake up for
(uvloop sets ``TCP_NODELAY``, so nothing merges them). Over loopback the kernel runs
the receiver's side of TCP in the sender's time, so each send costs far more than its
bytes. Here the writes made within one turn of the event loop are joined and leave
together when the turn ends: a small response (the head, then the whole body in the
same turn, as Starlette sends it) leaves in one write, and a streamed body still leaves
chunk by chunk, one turn later at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class TurnWriter:
    """A transport stand-in: ``write`` gathers, the end of the turn sends; the rest is the transport's."""

    __slots__ = ("_loop", "_pending", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # a response written just before close still leaves, in order
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """Pass as ``uvicorn.run(..., http=OneWriteHttpToolsProtocol)``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = TurnWriter(transport, self.loop)  # type: ignore[assignment]
