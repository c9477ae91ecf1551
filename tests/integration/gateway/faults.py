"""Fault injection on real sockets: upstream processes to stop and restart, and a proxy that drops responses."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx

from shared.ports import free_port
from shared.testing.fixtures import eventually


class UpstreamProcess:
    """The fault upstream as a child process on a fixed port, so it can stop and come back at the same URL."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        """``host``: any loopback address (127.0.0.2, ...), so several can share one port as a Service's pods do."""
        self.host = host
        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self._process is not None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.gateway.fault_upstream", "--host", self.host, "--port", str(self.port)
        )

        async def up() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"{self.url}/health/ready")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up, timeout_s=20, what=f"fault upstream on {self.port}")

    async def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            await asyncio.wait_for(self._process.wait(), 10)
            self._process = None

    async def fault(self, mode: str, **options: Any) -> None:
        async with httpx.AsyncClient() as client:
            (await client.post(f"{self.url}/_fault", json={"mode": mode, **options})).raise_for_status()

    async def calls(self) -> dict[str, int]:
        async with httpx.AsyncClient() as client:
            counted: dict[str, int] = (await client.get(f"{self.url}/_calls")).json()
            return counted


class ResponseDroppingProxy:
    """TCP proxy in front of a service: passes requests through, and drops the next ``drops`` responses.

    A dropped response reaches this proxy from the service (so the service did its work)
    but the client only sees its connection close: the fault a retry with an
    Idempotency-Key must survive without doing the work twice.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.drops = 0
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> ResponseDroppingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            while True:
                request = await _read_http_message(client_reader)
                if request is None:
                    return
                upstream_writer.write(request)
                await upstream_writer.drain()
                response = await _read_http_message(upstream_reader)
                if response is None:
                    return
                if self.drops > 0:
                    self.drops -= 1
                    self.dropped += 1
                    return  # the response is lost and the connection closes
                client_writer.write(response)
                await client_writer.drain()
        finally:
            upstream_writer.close()
            client_writer.close()


async def _read_http_message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message with a Content-Length body (what the gateway and uvicorn send)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body
