"""The load every fault runs under, and the one invariant checker every fault ends with.

``OrderLoad`` places orders through the gateway as a careful client does: each order has
its own ``Idempotency-Key`` and is sent again on a refusal that says "later" (408, 429,
502, 503, 504) or a broken connection, so every order is accepted in the end, each once.
Every status seen is kept: a 500 fails the fault.

``check`` waits, up to a deadline, for what a user would see after the fault: every
accepted order in its day's report (exactly once, with its product count), exactly one
confirmation mail per order, no unpublished outbox row, every consumer queue with its
consumers back, and nothing parked but the poison the test sent; then it counts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from shared.db import asyncpg_dsn
from shared.testing.broker import queue_depth

RETRY_LATER = {408, 409, 429, 502, 503, 504}


@dataclass
class OrderLoad:
    """Orders of one fault, on a day of their own, at ``rate_per_s`` from ``concurrency`` clients."""

    gateway: httpx.AsyncClient
    tag: str
    day: date
    rate_per_s: float = 25.0
    concurrency: int = 8
    give_up_after_s: float = 120.0
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> the order
    statuses: Counter[str] = field(default_factory=Counter)
    _placing: list[asyncio.Task[None]] = field(default_factory=list)
    _sent: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self._stop.clear()
        self._placing.append(asyncio.create_task(self._pace()))

    async def stop(self) -> None:
        """Stop sending new orders and wait until every order sent so far is accepted (or given up)."""
        self._stop.set()
        await asyncio.gather(*self._placing)
        self._placing.clear()

    async def burst(self, count: int) -> None:
        """``count`` orders at once (as fast as ``concurrency`` clients go)."""
        limit = asyncio.Semaphore(self.concurrency)

        async def one() -> None:
            async with limit:
                await self._place(self._next())

        await asyncio.gather(*(one() for _ in range(count)))

    def _next(self) -> int:
        self._sent += 1
        return self._sent

    async def _pace(self) -> None:
        limit = asyncio.Semaphore(self.concurrency)
        orders: list[asyncio.Task[None]] = []

        async def one(index: int) -> None:
            try:
                await self._place(index)
            finally:
                limit.release()

        while not self._stop.is_set():
            await limit.acquire()
            orders.append(asyncio.create_task(one(self._next())))
            await asyncio.sleep(1 / self.rate_per_s)
        await asyncio.gather(*orders)

    async def _place(self, index: int) -> None:
        key = f"{self.tag}-{index}"
        body = {
            "customer_email": f"{key}@faults.example.com",
            "items": [{"sku": f"SKU-{index % 5}", "quantity": 1 + index % 4, "unit_price": "2.50"}],
            "created_at": (datetime.combine(self.day, datetime.min.time(), UTC) + timedelta(seconds=index)).isoformat(),
        }
        deadline = time.monotonic() + self.give_up_after_s
        while time.monotonic() < deadline:
            try:
                answer = await self.gateway.post("/orders", json=body, headers={"Idempotency-Key": key}, timeout=15)
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                await asyncio.sleep(0.5)
                continue
            self.statuses[str(answer.status_code)] += 1
            if answer.status_code in (200, 201):
                self.accepted[key] = answer.json()
                return
            if answer.status_code not in RETRY_LATER:
                return
            await asyncio.sleep(min(float(answer.headers.get("retry-after", "0.5")), 2.0))

    @property
    def server_errors(self) -> int:
        return self.statuses["500"]


@dataclass
class FaultResult:
    fault: str
    injected: str
    accepted: int
    lost: int
    duplicated: int
    parked: int
    recovery_s: float
    statuses: dict[str, int]
    redelivered: int = 0  # mails delivered again under the Message-ID of one already caught
    seen: str = ""

    def line(self) -> str:
        return (
            f"{self.fault}: accepted {self.accepted}, lost {self.lost}, duplicated {self.duplicated}, "
            f"parked {self.parked}, recovered in {self.recovery_s:.1f} s, redelivered mails {self.redelivered}, "
            f"answers {dict(sorted(self.statuses.items()))}"
        )


@dataclass
class SuiteView:
    """What the checker reads: the gateway, the caught mail, the broker's management API and the outbox tables."""

    gateway: httpx.AsyncClient
    management: httpx.AsyncClient
    vhost: str
    broker_url: str  # straight to the broker, for exact queue depths (the management API's lag by seconds)
    outbox_databases: dict[str, str]  # service -> database URL, for each service with an outbox
    mails: Any  # () -> list of caught messages


async def _report_rows(gateway: httpx.AsyncClient, day: date) -> list[dict[str, Any]]:
    """Generate the day's report (the API's way) and read it."""
    asked = await gateway.post(f"/report/generate?report_date={day}")
    if asked.status_code != 202:
        return []
    task_id = asked.json()["task_id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        task = await gateway.get(f"/report/tasks/{task_id}")
        if task.status_code == 200 and task.json()["status"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.2)
    rows = await gateway.get("/report/", params={"report_date": day.isoformat()})
    return list(rows.json()) if rows.status_code == 200 else []


async def queues(view: SuiteView) -> list[dict[str, Any]]:
    answer = await view.management.get(f"/api/queues/{quote(view.vhost, safe='')}")
    answer.raise_for_status()
    return list(answer.json())


async def parked_messages(view: SuiteView) -> int:
    names = [queue["name"] for queue in await queues(view) if queue["name"].endswith(".dlq")]
    return sum([await queue_depth(view.broker_url, name) for name in names])


async def _consumers_back(view: SuiteView) -> list[str]:
    """The work queues with no consumer (empty when every consumer is attached)."""
    return [
        queue["name"]
        for queue in await queues(view)
        if not queue["name"].endswith(".dlq") and ".retry." not in queue["name"] and int(queue.get("consumers", 0)) == 0
    ]


async def _unpublished(view: SuiteView) -> int:
    total = 0
    for url in view.outbox_databases.values():
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
        try:
            total += int(await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") or 0)
        finally:
            await connection.close()
    return total


async def check(
    view: SuiteView, load: OrderLoad, *, fault: str, injected: str, fault_ended: float, poison: int = 0, within_s: float = 120
) -> FaultResult:
    """Wait until the suite shows every accepted order once everywhere, then count what is lost, doubled or parked."""
    expected = {order["id"]: order["count_product"] for order in load.accepted.values()}
    recipients = {order["customer_email"] for order in load.accepted.values()}
    deadline = time.monotonic() + within_s
    rows: list[dict[str, Any]] = []
    confirmations: Counter[str] = Counter()
    problems = ["not checked yet"]
    while time.monotonic() < deadline:
        problems = []
        try:
            rows = await _report_rows(view.gateway, load.day)
            confirmations = Counter(
                mail["To"] for mail in await asyncio.to_thread(view.mails) if mail["Subject"].startswith("Order confirmation")
            )
            if {row["order_id"] for row in rows} != set(expected):
                problems.append(f"{len(set(expected) - {row['order_id'] for row in rows})} orders missing from the report")
            if missing := [r for r in recipients if confirmations[r] == 0]:
                problems.append(f"{len(missing)} orders without a confirmation")
            if unpublished := await _unpublished(view):
                problems.append(f"{unpublished} outbox rows unpublished")
            if idle := await _consumers_back(view):
                problems.append(f"no consumer on {', '.join(idle)}")
        except (httpx.HTTPError, OSError, asyncpg.PostgresError) as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
        if not problems:
            break
        await asyncio.sleep(1)
    recovery_s = time.monotonic() - fault_ended
    await asyncio.sleep(1)  # a late duplicate has a moment to show
    rows = await _report_rows(view.gateway, load.day)
    caught = [
        mail
        for mail in await asyncio.to_thread(view.mails)
        if mail["Subject"].startswith("Order confirmation") and mail["To"] in recipients
    ]
    # a message SMTP accepted just before the database went away is sent again, under the same
    # Message-ID (derived from the event): one confirmation, delivered twice, which mail systems collapse
    distinct = {(mail["To"], str(mail["Message-ID"]).strip()) for mail in caught}
    confirmations = Counter(recipient for recipient, _ in distinct)
    redelivered = len(caught) - len(distinct)
    reported = Counter(row["order_id"] for row in rows)
    wrong_count = sum(1 for row in rows if expected.get(row["order_id"]) not in (None, row["count_product"]))
    lost = sum(1 for order_id in expected if reported[order_id] == 0) + sum(1 for r in recipients if confirmations[r] == 0)
    duplicated = sum(n - 1 for n in reported.values() if n > 1) + sum(confirmations[r] - 1 for r in recipients if confirmations[r] > 1)
    result = FaultResult(
        fault=fault,
        injected=injected,
        accepted=len(expected),
        lost=lost + wrong_count,
        duplicated=duplicated,
        parked=await parked_messages(view),
        recovery_s=round(recovery_s, 1),
        statuses=dict(load.statuses),
        redelivered=redelivered,
    )
    assert not problems, f"{fault}: after {within_s:g} s still {'; '.join(problems)}\n{result.line()}"
    assert result.lost == 0, result.line()
    assert result.duplicated == 0, result.line()
    assert result.parked == poison, result.line()
    assert load.server_errors == 0, f"{fault}: clients got 500 answers\n{result.line()}"
    return result
