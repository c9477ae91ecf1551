"""An upstream with faults on demand, run as its own process: ``python -m tests.integration.gateway.fault_upstream --port N``.

Every path but the control ones echoes the request. ``POST /_fault`` sets the mode:
``ok``, ``slow`` (``delay_s``), ``hang``, ``flaky`` (every other call 503), ``fail`` (500).
``GET /_calls`` counts calls per method and path since start or ``POST /_reset``.
``GET /_stream?chunks=N&size=B`` sends N chunks of B bytes, the last one only after ``POST /_release``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections import Counter
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

app = FastAPI(title="Fault upstream")
state: dict[str, Any] = {"mode": "ok", "delay_s": 0.0}
calls: Counter[str] = Counter()
turn = itertools.count()
released = asyncio.Event()


@app.get("/health/ready")
async def ready() -> dict[str, str]:
    return {"status": "healthy"}


@app.post("/_fault")
async def set_fault(request: Request) -> dict[str, Any]:
    state.update(await request.json())
    return state


@app.get("/_calls")
async def get_calls() -> dict[str, int]:
    return dict(calls)


@app.post("/_reset")
async def reset() -> dict[str, str]:
    calls.clear()
    state.update(mode="ok", delay_s=0.0)
    return {"status": "reset"}


@app.get("/{prefix}/_stream")
async def stream(chunks: int, size: int) -> StreamingResponse:
    released.clear()

    async def body() -> Any:
        for _ in range(chunks - 1):
            yield b"x" * size
        await released.wait()
        yield b"y" * size

    return StreamingResponse(body(), media_type="application/octet-stream")


@app.post("/_release")
async def release() -> dict[str, str]:
    released.set()
    return {"status": "released"}


@app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
async def echo(path: str, request: Request) -> JSONResponse:
    calls[f"{request.method} /{path}"] += 1
    mode = state["mode"]
    if mode == "slow":
        await asyncio.sleep(float(state["delay_s"]))
    elif mode == "hang":
        await asyncio.sleep(3600)
    elif mode == "fail":
        return JSONResponse({"detail": "failing on purpose"}, status_code=500)
    elif mode == "flaky" and next(turn) % 2 == 0:
        return JSONResponse({"detail": "flaky on purpose"}, status_code=503)
    body = await request.body()
    status = int(request.query_params.get("status", "200"))
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": {name: value for name, value in request.headers.items()},
            "body": body.decode(),
        },
        status_code=status,
        headers={"X-Upstream": "fault", "Connection": "keep-alive"},
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    arguments = parser.parse_args()
    uvicorn.run(app, host=arguments.host, port=arguments.port, log_level="warning", timeout_graceful_shutdown=1)
