"""``/admin/reports/dead-letters`` and ``python -m reports_service.main dead-letters``: parked messages read, replayed, purged."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
from sqlalchemy import func, select

from reports_service.models import order_facts
from reports_service.settings import ReportsSettings
from shared.db import create_engine
from shared.testing.broker import park
from shared.testing.fixtures import eventually
from tests.integration.reports_service.conftest import order_created, reports_client

QUEUE = "reports.order.created"
DLQ = f"{QUEUE}.dlq"
DAY = datetime(2026, 3, 10, 12, tzinfo=UTC)


async def depth(broker_url: str, queue: str) -> int:
    async with await aio_pika.connect(broker_url) as connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


async def facts(settings: ReportsSettings) -> list[Any]:
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(select(order_facts.c.order_id, func.count()).group_by(order_facts.c.order_id))).all())
    finally:
        await engine.dispose()


async def test_parked_messages_are_listed_in_order_and_stay_where_they_were(reports_api: httpx.AsyncClient, broker_url: str) -> None:
    envelopes = [order_created(DAY) for _ in range(7)]
    await park(broker_url, QUEUE, envelopes)
    ids = [str(envelope.id) for envelope in envelopes]

    async def page(number: int, count: int) -> dict[str, Any]:
        response = await reports_api.get("/admin/reports/dead-letters", params={"queue": QUEUE, "page": number, "count": count})
        assert response.status_code == 200, response.text
        return dict(response.json())

    first = await page(1, 3)
    assert first["total"] == 7
    assert first["dead_letter_queue"] == DLQ
    assert [item["id"] for item in first["items"]] == ids[:3]
    assert first["items"][0] | {"parked_at": None} == {
        "id": ids[0],
        "type": "order.created",
        "routing_key": "order.created",
        "attempts": 5,
        "error": "RuntimeError: the database refused",
        "error_kind": "handler_failed",
        "parked_at": None,
        "replays": 0,
    }
    assert [item["id"] for item in (await page(3, 3))["items"]] == ids[6:]
    again = [item["id"] for item in (await page(1, 50))["items"]]
    assert again == ids, "reading neither removed nor reordered anything"
    queues = (await reports_api.get("/admin/reports/dead-letters/queues")).json()
    assert {"queue": QUEUE, "dead_letter_queue": DLQ, "messages": 7} in queues


async def test_a_replay_by_id_reaches_the_handler_with_its_attempts_reset_and_is_recorded(
    make_settings: Callable[..., ReportsSettings], broker_url: str
) -> None:
    settings = make_settings()
    async with reports_client(settings) as api:
        chosen, kept = order_created(DAY, (3,)), order_created(DAY, (4,))
        await park(broker_url, QUEUE, [chosen, kept])
        unknown = await api.post("/admin/reports/dead-letters/replay", json={"queue": QUEUE, "ids": [str(chosen.id), "not-parked"]})
        assert unknown.status_code == 422
        assert unknown.json()["code"] == "not_parked"
        assert "not-parked" in unknown.json()["detail"]
        assert await depth(broker_url, DLQ) == 2, "a refused replay moves nothing"

        replayed = await api.post("/admin/reports/dead-letters/replay", json={"queue": QUEUE, "ids": [str(chosen.id)]})
        assert replayed.status_code == 200
        assert replayed.json() == {"replayed": 1}
        await eventually(lambda: facts(settings), what="the replayed order stored as a fact")
        assert [row.order_id for row in await facts(settings)] == [chosen.data.order_id]
        left = (await api.get("/admin/reports/dead-letters", params={"queue": QUEUE})).json()
        assert [item["id"] for item in left["items"]] == [str(kept.id)]

        twice = await api.post("/admin/reports/dead-letters/replay", json={"queue": QUEUE, "ids": [str(chosen.id)]})
        assert twice.status_code == 422, "replaying twice moves nothing more"
        assert twice.json()["code"] == "not_parked"


async def test_a_replayed_message_that_fails_again_is_parked_with_its_replays_counted(
    reports_api: httpx.AsyncClient, broker_url: str
) -> None:
    forged = order_created(DAY).model_copy(update={"source": "scheduler_service"})  # parked again on its first delivery
    await park(broker_url, QUEUE, [forged])
    assert (await reports_api.post("/admin/reports/dead-letters/replay", json={"queue": QUEUE, "all": True})).json() == {"replayed": 1}

    async def parked_again() -> dict[str, Any] | None:
        items = (await reports_api.get("/admin/reports/dead-letters", params={"queue": QUEUE})).json()["items"]
        return items[0] if items else None

    item = await eventually(parked_again, what="the forged event parked again")
    assert (item["replays"], item["error_kind"]) == (1, "forbidden_source")
    assert item["attempts"] == 0, "the parked attempts (5) were reset"


async def test_purge_drops_the_chosen_messages_or_all_and_answers_how_many(reports_api: httpx.AsyncClient, broker_url: str) -> None:
    envelopes = [order_created(DAY) for _ in range(4)]
    await park(broker_url, QUEUE, envelopes)
    chosen = [str(envelopes[1].id), str(envelopes[2].id)]
    response = await reports_api.post("/admin/reports/dead-letters/purge", json={"queue": QUEUE, "ids": chosen})
    assert response.json() == {"purged": 2}
    left = (await reports_api.get("/admin/reports/dead-letters", params={"queue": QUEUE})).json()
    assert [item["id"] for item in left["items"]] == [str(envelopes[0].id), str(envelopes[3].id)]
    assert (await reports_api.post("/admin/reports/dead-letters/purge", json={"queue": DLQ, "all": True})).json() == {"purged": 2}
    assert (await reports_api.post("/admin/reports/dead-letters/purge", json={"queue": QUEUE, "all": True})).json() == {"purged": 0}


async def test_bad_requests_name_the_reason(reports_api: httpx.AsyncClient) -> None:
    unknown = await reports_api.get("/admin/reports/dead-letters", params={"queue": "orders.order.created"})
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_queue"
    assert QUEUE in unknown.json()["detail"], "the answer names the service's queues"
    for body in ({"queue": QUEUE}, {"queue": QUEUE, "ids": ["a"], "all": True}, {"queue": QUEUE, "ids": []}, {"all": True}):
        response = await reports_api.post("/admin/reports/dead-letters/replay", json=body)
        assert response.status_code == 422, body
    assert (await reports_api.get("/admin/reports/dead-letters")).status_code == 422, "queue is required"


def _cli_env(settings: ReportsSettings) -> dict[str, str]:
    return os.environ | {
        "REPORTS_DATABASE_URL": settings.database_url.get_secret_value(),
        "BROKER_URL": settings.broker_url.get_secret_value(),
        "EVENTS_EXCHANGE": settings.events_exchange,
        "REPORTS_ENVIRONMENT": "test",
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
    }


async def _cli(settings: ReportsSettings, *arguments: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reports_service.main",
        "dead-letters",
        *arguments,
        env=_cli_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_the_command_line_lists_replays_and_refuses_like_the_api(
    make_settings: Callable[..., ReportsSettings], broker_url: str
) -> None:
    settings = make_settings()
    async with reports_client(settings):
        pass  # the service declared its queues
    envelopes = [order_created(DAY) for _ in range(3)]
    await park(broker_url, QUEUE, envelopes)

    status, out, _ = await _cli(settings)
    assert status == 0
    assert {"queue": QUEUE, "dead_letter_queue": DLQ, "messages": 3} in json.loads(out)
    status, out, _ = await _cli(settings, "list", "--queue", QUEUE, "--count", "2")
    assert status == 0
    assert [item["id"] for item in json.loads(out)["items"]] == [str(e.id) for e in envelopes[:2]]
    status, _, err = await _cli(settings, "replay", "--queue", "nope", "--all")
    assert status == 2
    assert "unknown_queue" in err
    status, out, _ = await _cli(settings, "replay", "--queue", QUEUE, "--ids", str(envelopes[0].id))
    assert status == 0
    assert json.loads(out) == {"replayed": 1}
    assert await depth(broker_url, QUEUE) == 1
    status, out, _ = await _cli(settings, "purge", "--queue", QUEUE, "--all")
    assert status == 0
    assert json.loads(out) == {"purged": 2}


async def test_a_replay_killed_half_way_loses_nothing_and_its_rerun_doubles_no_effect(
    make_settings: Callable[..., ReportsSettings], broker_url: str
) -> None:
    settings = make_settings()
    async with reports_client(settings):
        pass  # the service declared its queues; it is stopped while the replay runs
    total = 5_000
    envelopes = [order_created(DAY) for _ in range(total)]
    await park(broker_url, QUEUE, envelopes)
    await eventually(lambda: _at_least(broker_url, DLQ, total), what="every message parked")

    replay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reports_service.main", "dead-letters", "replay", "--queue", QUEUE, "--all", env=_cli_env(settings)
    )
    await eventually(lambda: _at_most(broker_url, DLQ, total - 1_000), timeout_s=60, interval_s=0.01, what="the replay under way")
    replay.send_signal(signal.SIGKILL)
    await replay.wait()

    async def settled() -> tuple[int, int] | None:
        parked, requeued = await depth(broker_url, DLQ), await depth(broker_url, QUEUE)
        return (parked, requeued) if parked + requeued >= total else None

    parked, requeued = await eventually(settled, what="the messages the killed replay held given back to the DLQ")
    assert parked > 0, "killed half-way: some messages are still parked"
    assert parked + requeued >= total, "every message is parked or back in its queue"
    assert requeued - (total - parked) <= 100, "at most the copies confirmed but not yet acked exist twice"

    status, out, _ = await _cli(settings, "replay", "--queue", QUEUE, "--all")
    assert status == 0
    assert json.loads(out)["replayed"] == parked
    async with reports_client(settings):

        async def all_stored() -> bool:
            return len(await facts(settings)) >= total

        await eventually(all_stored, timeout_s=120, interval_s=0.2, what="every replayed order stored")
        stored = await facts(settings)
    assert len(stored) == total
    assert all(count == 1 for _, count in stored)
    assert {row.order_id for row in stored} == {envelope.data.order_id for envelope in envelopes}
    assert await depth(broker_url, DLQ) == 0


async def _at_least(broker_url: str, queue: str, count: int) -> bool:
    return await depth(broker_url, queue) >= count


async def _at_most(broker_url: str, queue: str, count: int) -> bool:
    return await depth(broker_url, queue) <= count
