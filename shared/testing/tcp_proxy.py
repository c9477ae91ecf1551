"""A TCP proxy in front of PostgreSQL or RabbitMQ whose link a test can cut, blackhole and restore.

``cut`` closes every connection and refuses new ones (a server gone away); ``blackhole``
keeps connections open but forwards nothing, in either direction (a network partition:
only timeouts and heartbeats notice). ``restore`` lets traffic through again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
from urllib.parse import urlsplit, urlunsplit


class LinkState(enum.Enum):
    OPEN = "open"
    CUT = "cut"
    BLACKHOLED = "blackholed"


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._target = (target_host, target_port)
        self._bind = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = asyncio.Event()
        self._open.set()
        self.state = LinkState.OPEN

    @property
    def port(self) -> int:
        assert self._server is not None, "start the proxy first"
        bound: tuple[str, int] = self._server.sockets[0].getsockname()
        return bound[1]

    @property
    def address(self) -> str:
        return f"{self._bind[0]}:{self.port}"

    @classmethod
    def in_front_of(cls, url: str) -> TcpProxy:
        """A proxy to the server ``url`` names (PostgreSQL's or RabbitMQ's default port when it names none)."""
        parts = urlsplit(url)
        default_port = 5672 if parts.scheme.startswith("amqp") else 5432
        return cls(parts.hostname or "127.0.0.1", parts.port or default_port)

    def url_for(self, url: str) -> str:
        """``url`` (a database or broker URL) with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{self.address}" if credentials else self.address
        return urlunsplit(parts._replace(netloc=netloc))

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, *self._bind, family=socket.AF_INET)
        return self

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def cut(self) -> None:
        """Close every connection; new ones are closed as soon as they arrive."""
        self.state = LinkState.CUT
        self._open.clear()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def blackhole(self) -> None:
        """Keep every connection but forward no byte either way."""
        self.state = LinkState.BLACKHOLED
        self._open.clear()

    def restore(self) -> None:
        self.state = LinkState.OPEN
        self._open.set()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.state is LinkState.CUT:
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}
        for source, sink in ((client_reader, server_writer), (server_reader, client_writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                await self._open.wait()  # a blackholed link holds what it read
                if self.state is not LinkState.OPEN:
                    return
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(sink)
            with contextlib.suppress(Exception):
                sink.transport.abort()
