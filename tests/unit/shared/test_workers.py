"""A periodic worker runs its job at start and on schedule, a failing run does not end it,
and it stops when asked."""

from __future__ import annotations

import asyncio

from shared.workers import Periodic


async def test_a_periodic_job_runs_at_start_again_after_a_failure_and_stops() -> None:
    runs: list[int] = []
    third = asyncio.Event()

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise ValueError("the first run fails")
        if len(runs) == 3:
            third.set()

    worker = Periodic("test-job", job, every_s=0)
    assert not worker.running
    worker.start()
    await asyncio.wait_for(third.wait(), 5)
    assert worker.running, "a failing run does not end the worker"
    await worker.stop()
    assert not worker.running
    stopped_at = len(runs)
    await asyncio.sleep(0)
    assert len(runs) == stopped_at


async def test_stopping_a_worker_that_never_started_is_harmless() -> None:
    async def job() -> None:
        raise AssertionError("never runs")

    await Periodic("never-started", job, every_s=1).stop()
