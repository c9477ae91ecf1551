import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aio_pika
import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, text

from reports_service.models import order_facts
from reports_service.settings import ReportsSettings
from reports_service.store import DAY_LOCK_CLASS
from shared.contracts.reports import ReportFailed, ReportGenerated
from shared.db import asyncpg_dsn, create_engine
from shared.messaging.envelope import Envelope
from shared.testing import observed
from shared.testing.broker import bound_queue, drain
from shared.testing.fixtures import eventually
from tests.integration.reports_service.conftest import order_created, reports_client

DAY = date(2026, 3, 10)


async def _facts(url: str) -> int:
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(order_facts))
    await engine.dispose()
    return int(count or 0)


async def _ingested(url: str, expected: int) -> bool:
    return await _facts(url) >= expected


async def _generate(client: httpx.AsyncClient, day: date) -> dict[str, Any]:
    response = await client.post("/report/generate", params={"report_date": day.isoformat()})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["message"]
    return await _finished(client, body["task_id"])


async def _finished(client: httpx.AsyncClient, task_id: str, timeout_s: float = 30) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        response = await client.get(f"/report/tasks/{task_id}")
        if response.status_code == 404:  # a scheduler's task exists once its event is consumed
            return None
        task = response.json()
        return task if task["status"] in ("succeeded", "failed") else None

    result: dict[str, Any] = await eventually(done, timeout_s=timeout_s, what=f"task {task_id} finished")
    return result


def _recompute(envelopes: list[Envelope[Any]], day: date, tz: str) -> dict[str, int]:
    zone = ZoneInfo(tz)
    return {str(e.data.order_id): e.data.count_product for e in envelopes if e.data.created_at.astimezone(zone).date() == day}


@pytest.mark.parametrize("tz", ["UTC", "Europe/Moscow"])
async def test_a_report_equals_an_independent_recomputation(make_settings: Callable[..., ReportsSettings], publish, tz: str) -> None:
    settings = make_settings(timezone=tz)
    rng = random.Random(7)
    midnight = datetime.combine(DAY, datetime.min.time(), ZoneInfo(tz)).astimezone(UTC)
    envelopes = [
        order_created(
            midnight + timedelta(seconds=rng.randint(-6 * 3600, 30 * 3600)), tuple(rng.randint(1, 9) for _ in range(rng.randint(1, 4)))
        )
        for _ in range(400)
    ]
    envelopes += [order_created(midnight), order_created(midnight - timedelta(microseconds=1))]  # the exact boundary
    async with reports_client(settings) as client:
        await publish(*envelopes)
        await eventually(lambda: _ingested(settings.database_url.get_secret_value(), len(envelopes)), what="facts ingested")
        task = await _generate(client, DAY)
        rows = (await client.get("/report/", params={"report_date": DAY.isoformat()})).json()
    expected = _recompute(envelopes, DAY, tz)
    assert str(envelopes[-2].data.order_id) in expected
    assert str(envelopes[-1].data.order_id) not in expected
    assert {row["order_id"]: row["count_product"] for row in rows} == expected
    assert all(row["report_at"] == DAY.isoformat() for row in rows)
    assert [row["order_id"] for row in rows] == sorted(row["order_id"] for row in rows), "ordered by order id"
    assert task["status"] == "succeeded"
    assert (task["rows"], task["total_products"]) == (len(expected), sum(expected.values()))
    assert task["started_at"] <= task["finished_at"]


async def test_moscow_day_starts_at_21_utc_the_day_before(make_settings: Callable[..., ReportsSettings], publish) -> None:
    settings = make_settings(timezone="Europe/Moscow")
    before = order_created(datetime(2026, 3, 9, 20, 59, 59, tzinfo=UTC), (1,))
    first = order_created(datetime(2026, 3, 9, 21, 0, 0, tzinfo=UTC), (2,))
    last = order_created(datetime(2026, 3, 10, 20, 59, 59, tzinfo=UTC), (3,))
    after = order_created(datetime(2026, 3, 10, 21, 0, 0, tzinfo=UTC), (4,))
    async with reports_client(settings) as client:
        await publish(before, first, last, after)
        await eventually(lambda: _ingested(settings.database_url.get_secret_value(), 4), what="facts ingested")
        await _generate(client, DAY)
        rows = (await client.get("/report/", params={"report_date": DAY.isoformat()})).json()
    assert sorted(row["count_product"] for row in rows) == [2, 3]


async def test_duplicated_and_redelivered_events_have_one_effect(reports_api: httpx.AsyncClient, reports_db: str, publish) -> None:
    first = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC), (5,))
    same_order_other_event = order_created(first.data.created_at, (5,), order_id=first.data.order_id)
    acked = observed.acked("reports.order.created")
    await publish(first, first, same_order_other_event, first)

    async def all_acked() -> bool:
        return observed.acked("reports.order.created") >= acked + 4

    await eventually(all_acked, what="the four deliveries handled and acked")
    task = await _generate(reports_api, DAY)
    assert await _facts(reports_db) == 1
    assert task["rows"] == 1
    assert task["total_products"] == 5


async def test_a_late_order_joins_its_reported_day(reports_api: httpx.AsyncClient, reports_db: str, publish) -> None:
    await publish(order_created(datetime(2026, 3, 10, 8, tzinfo=UTC), (1,)))
    await eventually(lambda: _ingested(reports_db, 1), what="fact ingested")
    assert (await _generate(reports_api, DAY))["rows"] == 1
    late = order_created(datetime(2026, 3, 10, 23, 59, tzinfo=UTC), (6,))
    await publish(late)

    async def two_rows() -> list[Any] | None:
        rows = (await reports_api.get("/report/", params={"report_date": DAY.isoformat()})).json()
        return rows if len(rows) == 2 else None

    rows = await eventually(two_rows, what="late order in the report")
    assert {row["order_id"]: row["count_product"] for row in rows}[str(late.data.order_id)] == 6
    totals = (await reports_api.get("/report/days", params={"from": "2026-03-10", "to": "2026-03-10"})).json()
    assert totals == [{"report_at": "2026-03-10", "orders": 2, "products": 7}]


async def test_generations_of_one_day_never_overlap_other_days_run_meanwhile(
    reports_api: httpx.AsyncClient, reports_db: str, publish
) -> None:
    await publish(order_created(datetime(2026, 3, 10, 8, tzinfo=UTC)), order_created(datetime(2026, 3, 11, 8, tzinfo=UTC)))
    await eventually(lambda: _ingested(reports_db, 2), what="facts ingested")
    holder = await asyncpg.connect(asyncpg_dsn(reports_db))
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT pg_advisory_xact_lock($1, $2::date - DATE '1970-01-01')", DAY_LOCK_CLASS, DAY)
        blocked = (await reports_api.post("/report/generate", params={"report_date": "2026-03-10"})).json()["task_id"]
        other = (await reports_api.post("/report/generate", params={"report_date": "2026-03-11"})).json()["task_id"]
        assert (await _finished(reports_api, other))["status"] == "succeeded", "another day is not held up"

        async def running() -> bool:
            return bool((await reports_api.get(f"/report/tasks/{blocked}")).json()["status"] == "running")

        await eventually(running, what="the blocked task running, waiting for its day's lock")
        assert (await _facts(reports_db)) == 2
        await transaction.rollback()
    finally:
        await holder.close()
    assert (await _finished(reports_api, blocked))["status"] == "succeeded"


async def test_two_concurrent_requests_for_one_day_give_one_report(reports_api: httpx.AsyncClient, reports_db: str, publish) -> None:
    await publish(*(order_created(datetime(2026, 3, 10, h, tzinfo=UTC), (h + 1,)) for h in range(24)))
    await eventually(lambda: _ingested(reports_db, 24), what="facts ingested")
    responses = await asyncio.gather(*(reports_api.post("/report/generate", params={"report_date": "2026-03-10"}) for _ in range(2)))
    tasks = [await _finished(reports_api, r.json()["task_id"]) for r in responses]
    assert [t["status"] for t in tasks] == ["succeeded", "succeeded"]
    assert [t["rows"] for t in tasks] == [24, 24]
    rows = (await reports_api.get("/report/", params={"report_date": "2026-03-10"})).json()
    assert len(rows) == 24


@asynccontextmanager
async def _day_that_cannot_be_stored(reports_db: str, day: date) -> AsyncIterator[None]:
    """A trigger refuses the day's reported_days row, so every generation of that day fails."""
    engine = create_engine(reports_db, pool_size=1)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE FUNCTION refuse_day() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.report_at = DATE '{day.isoformat()}' THEN RAISE EXCEPTION 'disk on fire'; END IF; RETURN NEW; END $$"
            )
        )
        await connection.execute(
            text("CREATE TRIGGER refuse_day BEFORE INSERT OR UPDATE ON reported_days FOR EACH ROW EXECUTE FUNCTION refuse_day()")
        )
    try:
        yield
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TRIGGER refuse_day ON reported_days"))
            await connection.execute(text("DROP FUNCTION refuse_day()"))
        await engine.dispose()


async def test_a_failing_generation_ends_failed_and_publishes_report_failed(
    make_settings: Callable[..., ReportsSettings], reports_db: str
) -> None:
    settings = make_settings(retry_max_attempts=2)
    broker_url, exchange = settings.broker_url.get_secret_value(), settings.events_exchange
    async with (
        _day_that_cannot_be_stored(reports_db, date(2026, 2, 2)),
        bound_queue(broker_url, exchange, "report.failed") as failures,
        reports_client(settings) as client,
    ):
        task = await _generate(client, date(2026, 2, 2))
        (message,) = await drain(failures, 1)
    assert task["status"] == "failed"
    assert "disk on fire" in task["error"]
    assert task["attempts"] == 2
    failed = Envelope[ReportFailed].model_validate_json(message.body)
    assert str(failed.data.task_id) == task["task_id"]
    assert "disk on fire" in failed.data.error


async def test_a_task_waiting_for_its_next_attempt_reads_retrying_with_the_failure_and_when(
    make_settings: Callable[..., ReportsSettings], reports_db: str
) -> None:
    settings = make_settings(retry_max_attempts=2, retry_tiers_ms=(3000,))
    async with _day_that_cannot_be_stored(reports_db, date(2026, 2, 2)), reports_client(settings) as client:
        response = await client.post("/report/generate", params={"report_date": "2026-02-02"})
        task_id = response.json()["task_id"]

        async def retrying() -> dict[str, Any] | None:
            task = dict((await client.get(f"/report/tasks/{task_id}")).json())
            return task if task["status"] == "retrying" else None

        between = await eventually(retrying, timeout_s=15, what="the task waiting for its second attempt")
        final = await _finished(client, task_id)
    assert between["attempts"] == 1
    assert between["error"].startswith("attempt 1 of 2 failed: ")
    assert "disk on fire" in between["error"]
    waited = datetime.fromisoformat(between["next_attempt_at"]) - datetime.fromisoformat(between["started_at"])
    assert timedelta(seconds=3) <= waited <= timedelta(seconds=4), "the first tier's delay: 3 s after the attempt began"
    assert (final["status"], final["attempts"], final["next_attempt_at"]) == ("failed", 2, None)


async def test_a_scheduler_request_with_an_unseen_task_id_creates_the_task(reports_api: httpx.AsyncClient, publish) -> None:
    from shared.contracts.reports import ReportRequested

    task_id = uuid.uuid4()
    request = ReportRequested(
        task_id=task_id, report_date=DAY, requested_by="scheduler:daily-orders-report", scheduled_for=datetime(2026, 3, 11, tzinfo=UTC)
    )
    await publish(Envelope[ReportRequested](type="report.requested", source="scheduler_service", data=request))
    task = await _finished(reports_api, str(task_id))
    assert task["status"] == "succeeded"
    assert task["requested_by"] == "scheduler:daily-orders-report"
    assert task["scheduled_for"].startswith("2026-03-11T00:00:00")


async def test_tasks_are_listed_newest_first_and_filtered_by_who_asked(reports_api: httpx.AsyncClient, publish) -> None:
    from shared.contracts.reports import ReportRequested

    by_api = (await reports_api.post("/report/generate", params={"report_date": DAY.isoformat()})).json()["task_id"]
    scheduled = uuid.uuid4()
    request = ReportRequested(task_id=scheduled, report_date=DAY, requested_by="scheduler:nightly", scheduled_for=datetime.now(UTC))
    await publish(Envelope[ReportRequested](type="report.requested", source="scheduler_service", data=request))
    await _finished(reports_api, str(scheduled))
    await _finished(reports_api, by_api)

    everything = await reports_api.get("/report/tasks")
    nightly = await reports_api.get("/report/tasks", params={"requested_by": "scheduler:nightly", "status": "succeeded"})
    other_day = await reports_api.get("/report/tasks", params={"report_date": "2020-01-01"})
    bad_status = await reports_api.get("/report/tasks", params={"status": "pending"})
    assert [task["task_id"] for task in everything.json()] == [str(scheduled), by_api]
    assert (everything.headers["x-total-count"], everything.headers["x-total-count-exact"]) == ("2", "true")
    assert [task["task_id"] for task in nightly.json()] == [str(scheduled)]
    assert other_day.json() == []
    assert bad_status.status_code == 422


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/report/generate", {"report_date": "2024-13-01"}),
        ("/report/generate", {"report_date": "yesterday"}),
        ("/report/generate", {"report_date": "2099-01-01"}),
        ("/report/generate", {}),
        ("/report/", {"report_date": "15.01.2024"}),
        ("/report/", {}),
        ("/report/all", {"page": 0}),
        ("/report/all", {"count": 0}),
        ("/report/all", {"count": 1001}),
        ("/report/all", {"page": "one"}),
        ("/report/days", {"from": "2026-03-10", "to": "2026-03-01"}),
        ("/report/days", {"from": "2020-01-01", "to": "2026-03-01"}),
    ],
)
async def test_bad_dates_and_paging_are_422(reports_api: httpx.AsyncClient, path: str, params: dict[str, Any]) -> None:
    method = reports_api.post if path.endswith("generate") else reports_api.get
    response = await method(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_unknown_task_is_404_never_pending(reports_api: httpx.AsyncClient) -> None:
    response = await reports_api.get(f"/report/tasks/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert (await reports_api.get("/report/tasks/not-a-uuid")).status_code == 422


async def test_listing_all_rows_pages_newest_day_first(
    reports_api: httpx.AsyncClient, make_settings: Callable[..., ReportsSettings], reports_db: str, publish
) -> None:
    days = [date(2026, 3, d) for d in (8, 9, 10)]
    await publish(*(order_created(datetime(d.year, d.month, d.day, 12, tzinfo=UTC)) for d in days for _ in range(3)))
    await eventually(lambda: _ingested(reports_db, 9), what="facts ingested")
    for day in days:
        await _generate(reports_api, day)
    empty = await reports_api.get("/report/", params={"report_date": "2026-03-01"})
    assert (empty.status_code, empty.json()) == (200, [])
    first = await reports_api.get("/report/all", params={"page": 1, "count": 4})
    second = await reports_api.get("/report/all", params={"page": 3, "count": 4})
    assert (first.headers["x-total-count"], first.headers["x-total-count-exact"]) == ("9", "true")
    assert [row["report_at"] for row in first.json()] == ["2026-03-10"] * 3 + ["2026-03-09"]
    assert [row["report_at"] for row in second.json()] == ["2026-03-08"]

    # beyond REPORTS_LIST_COUNT_LIMIT the total is a lower bound, and says so; pages still reach every row
    async with reports_client(make_settings(list_count_limit=4)) as capped:
        first = await capped.get("/report/all", params={"page": 1, "count": 4})
        last = await capped.get("/report/all", params={"page": 3, "count": 4})
        tasks = await capped.get("/report/tasks", params={"count": 1})
    assert (first.headers["x-total-count"], first.headers["x-total-count-exact"]) == ("4", "false")
    assert [row["report_at"] for row in last.json()] == ["2026-03-08"]
    assert (tasks.headers["x-total-count"], tasks.headers["x-total-count-exact"]) == ("3", "true")


async def test_two_instances_share_the_queues_with_no_double_effect(
    make_settings: Callable[..., ReportsSettings], reports_db: str, publish
) -> None:
    settings = make_settings()
    envelopes = [order_created(datetime(2026, 3, 10, 12, tzinfo=UTC)) for _ in range(600)]
    async with reports_client(settings) as first, reports_client(settings):
        await publish(*envelopes, *envelopes[:100])  # with redeliveries mixed in
        await eventually(lambda: _ingested(reports_db, 600), what="facts ingested")
        task = await _generate(first, DAY)
    engine = create_engine(reports_db, pool_size=1)
    async with engine.connect() as connection:
        processed = await connection.scalar(text("SELECT count(*) FROM processed_events WHERE consumer = 'reports.order.created'"))
    await engine.dispose()
    assert await _facts(reports_db) == 600
    assert processed == 600
    assert task["rows"] == 600


async def test_regenerating_after_a_time_zone_change_keeps_the_report_exact(make_settings: Callable[..., ReportsSettings], publish) -> None:
    evening = order_created(datetime(2026, 3, 10, 22, tzinfo=UTC), (1,))  # 10 March in UTC, 11 March in Moscow
    noon = order_created(datetime(2026, 3, 10, 12, tzinfo=UTC), (2,))
    utc = make_settings()
    async with reports_client(utc) as client:
        await publish(evening, noon)
        await eventually(lambda: _ingested(utc.database_url.get_secret_value(), 2), what="facts ingested")
        assert (await _generate(client, DAY))["rows"] == 2
    async with reports_client(make_settings(timezone="Europe/Moscow")) as client:
        task = await _generate(client, DAY)
        rows = (await client.get("/report/", params={"report_date": DAY.isoformat()})).json()
    assert task["rows"] == 1
    assert [row["order_id"] for row in rows] == [str(noon.data.order_id)]


async def test_an_order_event_forged_by_another_service_never_reaches_a_report(
    reports_api: httpx.AsyncClient, publish: Any, broker_url: str
) -> None:
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    taken, forged = order_created(day, (2,)), order_created(day, (50,)).model_copy(update={"source": "scheduler_service"})
    await publish(forged, taken)
    async with await aio_pika.connect(broker_url) as connection:
        dlq = await (await connection.channel()).declare_queue("reports.order.created.dlq", passive=True)
        (parked,) = await drain(dlq, 1, timeout_s=10)
    assert parked.message_id == str(forged.id)
    assert parked.headers["x-error-kind"] == "forbidden_source"

    task_id = (await reports_api.post("/report/generate", params={"report_date": "2026-03-10"})).json()["task_id"]

    async def succeeded() -> bool:
        return bool((await reports_api.get(f"/report/tasks/{task_id}")).json()["status"] == "succeeded")

    await eventually(succeeded, what="the day's report")
    rows = (await reports_api.get("/report/", params={"report_date": "2026-03-10"})).json()
    assert [(row["order_id"], row["count_product"]) for row in rows] == [(str(taken.data.order_id), 2)]


async def test_the_service_runs_under_its_own_broker_user(
    make_settings: Callable[..., ReportsSettings], publish: Any, broker_url: str, exchange_name: str, broker_users: dict[str, str]
) -> None:
    """Consuming orders and requests, and publishing report.generated, all within the reports user's permissions."""
    settings = make_settings(broker_url=broker_users["reports"])
    async with bound_queue(broker_url, exchange_name, "report.generated") as generated, reports_client(settings) as client:
        await publish(order_created(datetime(2026, 3, 10, 9, tzinfo=UTC), (3,)))
        await eventually(lambda: _facts(settings.database_url.get_secret_value()), what="the order's facts")
        task = await _generate(client, DAY)
        (message,) = await drain(generated, 1)
    assert task["status"] == "succeeded"
    assert Envelope[ReportGenerated].model_validate_json(message.body).data.total_products == 3


async def test_days_at_the_start_of_the_calendar_and_a_nul_in_a_filter_are_answered_not_500(reports_api: httpx.AsyncClient) -> None:
    first_days = await reports_api.get("/report/days", params={"to": "0001-01-01"})
    assert (first_days.status_code, first_days.json()) == (200, [])
    nul = await reports_api.get("/report/tasks", params={"requested_by": "api\x00"})
    assert nul.status_code == 422
    assert "requested_by" in nul.json()["detail"]


async def test_a_day_over_the_row_limit_is_paged_with_next_links(make_settings: Callable[..., ReportsSettings], publish) -> None:
    settings = make_settings(day_row_limit=3)
    envelopes = [order_created(datetime(2026, 3, 10, 12, minute, tzinfo=UTC), (minute + 1,)) for minute in range(5)]
    async with reports_client(settings) as client:
        await publish(*envelopes)
        await eventually(lambda: _ingested(settings.database_url.get_secret_value(), len(envelopes)), what="facts ingested")
        await _generate(client, DAY)
        whole = await client.get("/report/", params={"report_date": DAY.isoformat()})
        too_many = await client.get("/report/", params={"report_date": DAY.isoformat(), "count": 4})
        pages, url = [], f"/report/?report_date={DAY.isoformat()}&count=2"
        while url:
            page = await client.get(url)
            assert page.status_code == 200
            pages.append([row["order_id"] for row in page.json()])
            url = page.links.get("next", {}).get("url", "")
    assert whole.status_code == 422
    assert whole.headers["content-type"] == "application/problem+json"
    assert whole.json()["code"] == "report_too_large"
    assert "count=" in whole.json()["detail"]
    assert too_many.status_code == 422
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [order_id for page in pages for order_id in page] == sorted(str(e.data.order_id) for e in envelopes)
