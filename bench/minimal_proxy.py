"""A minimal GET-only reverse proxy with a choice of HTTP client, to measure the client alone.

``python -m bench.minimal_proxy --port P --upstream URL --client httpx|httpx-tuned|aiohttp``. No auth, limits,
retries or breakers: what is left is the server, the client and their connection pool.
``httpx-tuned`` raises httpx's keep-alive pool (default 20 idle connections) to the load's 50.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

Fetch = Callable[[str], Awaitable[tuple[int, bytes]]]


def build(upstream: str, client: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    fetch: Fetch | None = None

    async def open_client() -> Fetch:
        if client == "aiohttp":
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

            async def fetch_aiohttp(path: str) -> tuple[int, bytes]:
                async with session.get(upstream + path) as response:
                    return response.status, await response.read()

            return fetch_aiohttp
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100 if client == "httpx-tuned" else 20)
        http = httpx.AsyncClient(limits=limits)

        async def fetch_httpx(path: str) -> tuple[int, bytes]:
            response = await http.get(upstream + path)
            return response.status_code, response.content

        return fetch_httpx

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal fetch
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                fetch = await open_client()
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert fetch is not None
        status, body = await fetch(scope["path"])
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--client", choices=["httpx", "httpx-tuned", "aiohttp"], required=True)
    arguments = parser.parse_args()
    app = build(arguments.upstream.rstrip("/"), arguments.client)
    uvicorn.run(app, host="127.0.0.1", port=arguments.port, loop="uvloop", http="httptools", log_level="warning", access_log=False)
