"""The load scenario (``bench/scenario.lua``) run by wrk against a stand-in gateway on 127.0.0.1.

The stand-in answers the way the gateway does, and only to what the scenario may ask: the API
key, JSON for a new order, reads of orders and tasks the scenario was given before.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from bench.load import ENDPOINTS, endpoint_figures, read_answers, scenario_command

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (Debian: apt-get install wrk)")

KEY = "scenario-key"


Handler = Callable[[web.Request, bytes], web.Response]


class StandIn:
    """Answers like the gateway; counts every request by endpoint and keeps each it had to refuse."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.orders: set[str] = set()
        self.tasks: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.refused: list[str] = []
        self.failing = failing or set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/orders", self.endpoint("POST /orders", self.create_order))
        app.router.add_get("/orders/{id}", self.endpoint("GET /orders/{id}", self.read_order))
        app.router.add_get("/orders", self.endpoint("GET /orders", self.page))
        app.router.add_post("/report/generate", self.endpoint("POST /report/generate", self.generate))
        app.router.add_get("/report/tasks/{id}", self.endpoint("GET /report/tasks/{id}", self.read_task))
        app.router.add_get("/report/all", self.endpoint("GET /report/all", self.page))
        return app

    def endpoint(self, name: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.calls[name] += 1
            body = await request.read()
            if request.headers.get("X-API-Key") != KEY:
                return self.refuse(name, 401)
            if name in self.failing:
                return web.Response(status=500)
            return handler(request, body)

        return handle

    def refuse(self, name: str, status: int) -> web.Response:
        self.refused.append(f"{name} {status}")
        return web.Response(status=status)

    def create_order(self, request: web.Request, body: bytes) -> web.Response:
        if request.content_type != "application/json" or not json.loads(body).get("items"):
            return self.refuse("POST /orders", 422)
        order_id = str(uuid.uuid4())
        self.orders.add(order_id)
        return web.json_response({"id": order_id, "count_product": 3}, status=201)

    def read_order(self, request: web.Request, body: bytes) -> web.Response:
        if request.match_info["id"] not in self.orders:
            return self.refuse("GET /orders/{id}", 404)
        return web.json_response({"id": request.match_info["id"]})

    def generate(self, request: web.Request, body: bytes) -> web.Response:
        if body or not request.query.get("report_date"):
            return self.refuse("POST /report/generate", 422)
        task_id = str(uuid.uuid4())
        self.tasks.add(task_id)
        return web.json_response({"task_id": task_id, "status": "pending"}, status=202)

    def read_task(self, request: web.Request, body: bytes) -> web.Response:
        if request.match_info["id"] not in self.tasks:
            return self.refuse("GET /report/tasks/{id}", 404)
        return web.json_response({"task_id": request.match_info["id"], "status": "done"})

    def page(self, request: web.Request, body: bytes) -> web.Response:
        return web.json_response({"items": [], "total": 0})


@asynccontextmanager
async def serve(stand_in: StandIn) -> AsyncIterator[str]:
    runner = web.AppRunner(stand_in.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def run_scenario(url: str, *, users: int, analysts: int, key: str = KEY) -> dict[str, float]:
    timings = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="scenario-"))
    try:
        command, env = scenario_command(url, timings, users=users, analysts=analysts, seconds=2, api_key=key, analyst_pause_ms=20)
        process = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, output.decode()
        files = await asyncio.to_thread(lambda: sorted(path.name for path in timings.glob("*.tsv")))
        assert files == sorted(f"{thread}.tsv" for thread in range(1, users + 1))  # one file per thread
        return endpoint_figures(output.decode(), await asyncio.to_thread(read_answers, timings))
    finally:
        await asyncio.to_thread(shutil.rmtree, timings)


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, str]]:
    gateway = StandIn()
    async with serve(gateway) as url:
        yield gateway, url


async def test_every_endpoint_is_called_as_the_gateway_expects_and_counted_as_it_was(stand_in: tuple[StandIn, str]) -> None:
    gateway, url = stand_in
    figures = await run_scenario(url, users=4, analysts=2)

    assert gateway.refused == []  # the key on every call, JSON orders, reads only of ids handed out
    for name in ENDPOINTS:
        assert figures[f"{name}|errors"] == 0
        assert figures[f"{name}|rate"] > 0, name
        assert 0 < figures[f"{name}|p50"] <= figures[f"{name}|p95"] <= figures[f"{name}|p99"], name
    for name in ENDPOINTS:  # the script's count is the server's, but for answers the end of the run cut off
        assert 0 <= gateway.calls[name] - figures[f"{name}|requests"] <= 4, (name, figures[f"{name}|requests"], gateway.calls[name])
    # shops: create, read back, list, 6:3:1
    assert 1.5 < gateway.calls["POST /orders"] / gateway.calls["GET /orders/{id}"] < 2.7
    assert 2 < gateway.calls["GET /orders/{id}"] / gateway.calls["GET /orders"] < 4.5
    # analysts, paced: far fewer calls than shops, reports read more often than asked for
    shop_calls = sum(gateway.calls[name] for name in ENDPOINTS[:3])
    analyst_calls = sum(gateway.calls[name] for name in ENDPOINTS[3:])
    assert analyst_calls < shop_calls / 5
    assert gateway.calls["POST /report/generate"] < gateway.calls["GET /report/all"]
    assert figures["all|errors"] == 0
    assert figures["all|rate"] == pytest.approx(sum(figures[f"{name}|rate"] for name in ENDPOINTS), rel=0.01)


async def test_answers_other_than_success_are_failures_of_their_endpoint() -> None:
    gateway = StandIn(failing={"GET /orders"})
    async with serve(gateway) as url:
        figures = await run_scenario(url, users=3, analysts=1)
        assert figures["GET /orders|errors"] == figures["GET /orders|requests"] > 0
        assert figures["POST /orders|errors"] == 0
        assert figures["all|errors"] == figures["GET /orders|errors"]

        refused = await run_scenario(url, users=2, analysts=1, key="wrong")
        assert refused["POST /orders|errors"] > 0
        assert refused["all|errors"] == refused["all|requests"] > 0
