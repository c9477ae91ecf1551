"""A task a schedule fired is ``scheduled`` at ``GET /report/tasks/{id}`` from the moment the fire commits.

The real scheduler and reports services, each on its own port with the internal token, as
``make run`` and compose wire them (``REPORTS_SCHEDULER_URL``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import httpx

from reports_service.main import build_app as build_reports
from reports_service.settings import ReportsSettings
from scheduler_service.main import build_app as build_scheduler
from shared.ports import free_port
from shared.testing.fixtures import eventually, serving, wait_until_consuming
from tests.integration.scheduler_service.test_schedules_api import _settings as scheduler_settings

TOKEN = "fired-tasks-test-token"
HEADERS = {"x-internal-token": TOKEN}


async def test_a_fired_task_reads_scheduled_until_its_request_arrives_then_the_reports_own_state(
    scheduler_db: str, broker_url: str, exchange_name: str, make_settings: Callable[..., ReportsSettings]
) -> None:
    # the scheduler publishes where this reports service does not listen: its request never arrives
    elsewhere = scheduler_settings(scheduler_db, broker_url, f"{exchange_name}.elsewhere", internal_token=TOKEN)
    async with (
        serving(build_scheduler(elsewhere)) as scheduler_url,
        httpx.AsyncClient(base_url=scheduler_url, headers=HEADERS) as scheduler,
        serving(build_reports(make_settings(scheduler_url=scheduler_url, internal_token=TOKEN))) as reports_url,
        httpx.AsyncClient(base_url=reports_url, headers=HEADERS) as reports,
    ):
        await scheduler.post("/schedules", json={"name": "nightly", "cron": "@yearly", "payload": {"days_before": 1}})
        run = (await scheduler.post("/schedules/nightly/trigger")).json()
        task = await reports.get(f"/report/tasks/{run['task_id']}")
        assert task.status_code == 200, task.text
        seen = task.json()
        assert (seen["status"], seen["requested_by"], seen["attempts"]) == ("scheduled", "scheduler:nightly", 0)
        assert datetime.fromisoformat(seen["scheduled_for"]) == datetime.fromisoformat(run["scheduled_for"])
        fired = (await scheduler.get(f"/admin/scheduler/tasks/{run['task_id']}")).json()
        assert (fired["schedule"], fired["task_status"], fired["report_date"]) == ("nightly", None, seen["report_date"])

        unknown = uuid.uuid4()
        assert (await reports.get(f"/report/tasks/{unknown}")).status_code == 404
        missing = await scheduler.get(f"/admin/scheduler/tasks/{unknown}")
        assert (missing.status_code, missing.json()["detail"]) == (404, f"no schedule fired task {unknown}")
        assert (await scheduler.get("/admin/scheduler/tasks/not-a-uuid")).status_code == 422

    # the same exchange: the task is never 404 between the fire and its report, and ends as the reports service ran it
    here = scheduler_settings(scheduler_db, broker_url, exchange_name, internal_token=TOKEN)
    async with (
        serving(build_scheduler(here)) as scheduler_url,
        httpx.AsyncClient(base_url=scheduler_url, headers=HEADERS) as scheduler,
        serving(build_reports(make_settings(scheduler_url=scheduler_url, internal_token=TOKEN))) as reports_url,
        httpx.AsyncClient(base_url=reports_url, headers=HEADERS) as reports,
    ):
        await wait_until_consuming(reports)
        run = (await scheduler.post("/schedules/nightly/trigger")).json()
        states: list[str] = []

        async def succeeded() -> bool:
            answer = await reports.get(f"/report/tasks/{run['task_id']}")
            assert answer.status_code == 200, answer.text
            states.append(answer.json()["status"])
            return states[-1] == "succeeded"

        await eventually(succeeded, what=f"task {run['task_id']} generated")
        assert set(states) <= {"scheduled", "running", "succeeded"}


async def test_a_scheduler_that_does_not_answer_is_503_with_the_reason(make_settings: Callable[..., ReportsSettings]) -> None:
    settings = make_settings(scheduler_url=f"http://127.0.0.1:{free_port()}", peer_timeout_s=2)
    async with serving(build_reports(settings)) as reports_url, httpx.AsyncClient(base_url=reports_url) as reports:
        answer = await reports.get(f"/report/tasks/{uuid.uuid4()}")
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith("the scheduler service did not answer /admin/scheduler/tasks/")
