"""The suite end to end, in order: orders and their mail, reports, a schedule, three report workers, health.

Only the gateway is used, with an API key, as a client of the suite would; the mail
catcher's files and the broker's management API are what an operator would look at.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import signal
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from shared.testing.fixtures import eventually
from tests.e2e.conftest import REPORTS_PROCESSES, RunningSuite, pid_listening_on

pytestmark = pytest.mark.slow

ORDERS = 300
TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=3), TODAY - timedelta(days=2), TODAY - timedelta(days=1)]
created: list[dict[str, Any]] = []


def order_times() -> list[datetime]:
    """Spread over three days, some a breath before or after midnight between them."""
    rng = random.Random(7)
    straddling = [
        datetime.combine(day, time(0), UTC) + timedelta(microseconds=offset) for day in DAYS[1:] for offset in (-1, 0, 1, -500_000, 500_000)
    ]
    spread = [
        datetime.combine(rng.choice(DAYS), time(0), UTC) + timedelta(seconds=rng.uniform(0, 86_399))
        for _ in range(ORDERS - len(straddling))
    ]
    return straddling + spread


async def test_300_orders_each_get_one_confirmation_mail(suite: RunningSuite) -> None:
    limit = asyncio.Semaphore(16)

    async def place(index: int, at: datetime) -> dict[str, Any]:
        body = {
            "customer_email": f"customer-{index}@example.com",
            "items": [{"sku": f"SKU-{index % 7}", "quantity": 1 + index % 4, "unit_price": "3.50"}],
            "created_at": at.isoformat(),
        }
        async with limit:
            response = await suite.gateway.post("/orders", json=body, headers={"Idempotency-Key": f"e2e-{index}"})
        assert response.status_code == 201, response.text
        return dict(response.json())

    created.extend(await asyncio.gather(*(place(i, at) for i, at in enumerate(order_times()))))
    assert len({order["id"] for order in created}) == ORDERS

    async def all_confirmed() -> bool:
        return sum(1 for mail in suite.mails() if mail["Subject"].startswith("Order confirmation")) >= ORDERS

    await eventually(all_confirmed, timeout_s=60, interval_s=0.5, what=f"{ORDERS} confirmation mails")
    recipients = Counter(mail["To"] for mail in suite.mails() if mail["Subject"].startswith("Order confirmation"))
    assert recipients == Counter({f"customer-{i}@example.com": 1 for i in range(ORDERS)})


async def test_each_day_reports_exactly_its_orders_with_a_notice_to_operators(suite: RunningSuite) -> None:
    assert created, "runs after the orders test"
    expected: dict[date, dict[str, int]] = defaultdict(dict)
    for order in created:
        expected[datetime.fromisoformat(order["created_at"]).astimezone(UTC).date()][order["id"]] = order["count_product"]

    async def generate(day: date) -> dict[str, Any]:
        response = await suite.gateway.post(f"/report/generate?report_date={day}")
        assert response.status_code == 202
        assert response.json()["status"] == "scheduled"
        task_id = response.json()["task_id"]

        async def finished() -> dict[str, Any] | None:
            task = dict((await suite.gateway.get(f"/report/tasks/{task_id}")).json())
            return task if task["status"] in ("succeeded", "failed") else None

        task: dict[str, Any] = await eventually(finished, timeout_s=30, interval_s=0.2, what=f"report task of {day}")
        assert task["status"] == "succeeded"
        return task

    async def reported_as_expected(day: date) -> bool:
        """Order facts arrive as events; a report asked for before the last one arrived is simply asked for again."""
        task = await generate(day)
        rows = (await suite.gateway.get("/report/", params={"report_date": day.isoformat()})).json()
        found = {row["order_id"]: row["count_product"] for row in rows}
        assert set(found) <= set(expected[day]), "a report row for an order of another day"
        assert task["rows"] == len(found)
        return found == expected[day]

    for day in DAYS:
        await eventually(functools.partial(reported_as_expected, day), timeout_s=60, interval_s=0.5, what=f"the report of {day}")

    async def noticed() -> bool:
        subjects = {mail["Subject"] for mail in suite.mails() if mail["To"] == "ops@example.com"}
        return all(f"Report {day} ready" in subjects for day in DAYS)

    await eventually(noticed, timeout_s=30, interval_s=0.3, what="an operators' notice per report")
    lab_page = await suite.gateway.get("/report/all", params={"page": 1, "count": 10})
    assert lab_page.status_code == 200
    assert len(lab_page.json()) == 10
    assert int(lab_page.headers["x-total-count"]) == ORDERS


async def test_a_seconds_level_schedule_fires_and_produces_a_report(suite: RunningSuite) -> None:
    schedule = {"name": "e2e-every-2s", "cron": "*/2 * * * * *", "timezone": "UTC", "catch_up": "skip"}
    response = await suite.gateway.post("/schedules", json=schedule)
    assert response.status_code == 201, response.text

    async def produced() -> list[dict[str, Any]]:
        found = await suite.gateway.get("/report/tasks", params={"requested_by": "scheduler:e2e-every-2s", "status": "succeeded"})
        return list(found.json())

    tasks = await eventually(produced, timeout_s=30, interval_s=0.3, what="a report from the schedule")
    assert tasks[0]["report_date"] == (datetime.fromisoformat(tasks[0]["scheduled_for"]).date() - timedelta(days=1)).isoformat()
    assert (await suite.gateway.patch("/schedules/e2e-every-2s", json={"enabled": False})).status_code == 200
    runs = (await suite.gateway.get("/schedules/e2e-every-2s/runs")).json()
    assert runs["total"] >= 1
    assert {run["status"] for run in runs["items"]} <= {"fired", "skipped"}


async def test_three_reports_processes_compete_on_one_queue_and_every_event_has_one_effect(suite: RunningSuite) -> None:
    assert len(suite.instances["reports"]) == REPORTS_PROCESSES
    queue = f"/api/queues/{quote(suite.vhost, safe='')}/reports.order.created"

    async def consumers_listed() -> list[dict[str, Any]] | None:
        # The management API lists a queue's consumers from statistics it emits every few seconds.
        details = (await asyncio.to_thread(suite.infrastructure.management().get, queue)).json()
        listed = list(details.get("consumer_details") or [])
        return listed if len(listed) >= REPORTS_PROCESSES else None

    consumers = await eventually(consumers_listed, timeout_s=30, interval_s=0.5, what="the reports consumers listed")
    connections = {consumer["channel_details"]["connection_name"] for consumer in consumers}
    assert len(consumers) == REPORTS_PROCESSES
    assert len(connections) == REPORTS_PROCESSES, "one consumer from each process"
    days = (await suite.gateway.get("/report/days", params={"from": DAYS[0].isoformat(), "to": DAYS[-1].isoformat()})).json()
    assert sum(day["orders"] for day in days) == ORDERS, "each order.created stored once, whichever process took it"
    products = sum(order["count_product"] for order in created)
    assert sum(day["products"] for day in days) == products
    confirmations = [mail for mail in suite.mails() if mail["Subject"].startswith("Order confirmation")]
    assert len(confirmations) == ORDERS, "no confirmation sent twice"


async def test_health_degrades_when_one_reports_process_stops_and_requests_still_succeed(suite: RunningSuite) -> None:
    assert (await suite.gateway.get("/health")).json()["status"] == "healthy"
    victim = suite.instances["reports"][1]
    pid = pid_listening_on(urlsplit(victim).port or 0)
    assert pid is not None, f"no process listens for {victim}"
    os.kill(pid, signal.SIGTERM)

    async def degraded() -> dict[str, Any] | None:
        health = await suite.gateway.get("/health")
        body = dict(health.json())
        return body if health.status_code == 200 and body["status"] == "degraded" else None

    health = await eventually(degraded, timeout_s=30, interval_s=0.3, what="gateway health degraded")
    statuses = {i["url"]: i["status"] for i in health["services"]["reports"]["instances"]}
    assert statuses[victim] == "unreachable"
    assert health["services"]["orders"]["status"] == "healthy"
    answers = [(await suite.gateway.get("/report/all", params={"page": 1, "count": 5})).status_code for _ in range(12)]
    assert answers == [200] * 12
