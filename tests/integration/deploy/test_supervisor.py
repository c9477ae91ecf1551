"""The supervisor of ``make run``, on real processes: restarts with backoff, gives up on crash loops, stops for sure."""

from __future__ import annotations

import asyncio
import io
import time

from honcho.printer import Printer

from deploy.supervisor import RestartPolicy, Supervisor

FAST = RestartPolicy(first_delay_s=0.05, max_delay_s=0.2, start_s=0.5, start_retries=2, stop_timeout_s=0.5)


def _supervisor(policy: RestartPolicy = FAST) -> tuple[Supervisor, io.StringIO]:
    output = io.StringIO()
    return Supervisor(Printer(output, colour=False), policy), output


async def _until(condition: object, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_process_that_ends_is_started_again_and_each_restart_is_counted_and_logged() -> None:
    supervisor, output = _supervisor()
    supervisor.add("worker", "echo working; sleep 0.6; exit 3", {})
    run = asyncio.create_task(supervisor.run())
    await _until(lambda: supervisor.programs["worker"].restarts >= 2)
    supervisor.stop()
    assert await asyncio.wait_for(run, 5) == 0
    log = output.getvalue()
    assert log.count("worker | working") >= 2
    assert "worker: ended with exit code 3 after 0.6 s; restart 1 in 0.05 s" in log
    assert "restarts: worker " in log


async def test_a_killed_process_is_started_again() -> None:
    supervisor, _ = _supervisor()
    supervisor.add("service", "exec sleep 30", {})
    run = asyncio.create_task(supervisor.run())
    await _until(lambda: supervisor.programs["service"].running)
    first = supervisor.programs["service"].process
    assert first is not None
    first.kill()
    await _until(lambda: supervisor.programs["service"].restarts == 1 and supervisor.programs["service"].running)
    assert supervisor.programs["service"].process is not first
    supervisor.stop()
    assert await asyncio.wait_for(run, 5) == 0


async def test_a_process_crashing_at_start_is_given_up_and_the_others_keep_running() -> None:
    supervisor, output = _supervisor()
    supervisor.add("broken", "exit 1", {})
    supervisor.add("fine", "exec sleep 30", {})
    run = asyncio.create_task(supervisor.run())
    await _until(lambda: supervisor.programs["broken"].given_up)
    assert supervisor.programs["broken"].restarts == FAST.start_retries
    assert supervisor.programs["fine"].running
    assert "broken: ended with exit code 1 within 0.5 s of its start 3 times in a row; giving up on it" in output.getvalue()
    supervisor.stop()
    assert await asyncio.wait_for(run, 5) == 1
    assert "given up: broken" in output.getvalue()


async def test_the_run_ends_by_itself_when_every_process_is_given_up() -> None:
    supervisor, _ = _supervisor()
    supervisor.add("broken", "exit 2", {})
    assert await asyncio.wait_for(supervisor.run(), 5) == 1


async def test_a_process_ignoring_sigterm_is_killed_after_the_stop_timeout() -> None:
    supervisor, output = _supervisor()
    supervisor.add("stubborn", "trap '' TERM; echo ready; while true; do sleep 0.1; done", {})
    run = asyncio.create_task(supervisor.run())
    await _until(lambda: "stubborn | ready" in output.getvalue())
    supervisor.stop()
    assert await asyncio.wait_for(run, 5) == 0, "ended although the process ignores SIGTERM"
    assert "stubborn: still running 0.5 s after SIGTERM; killing it" in output.getvalue()


async def test_the_environment_reaches_the_process() -> None:
    supervisor, output = _supervisor()
    supervisor.add("env", 'echo "value=$SUITE_VALUE"; exec sleep 30', {"SUITE_VALUE": "42", "PATH": "/usr/bin:/bin"})
    run = asyncio.create_task(supervisor.run())
    await _until(lambda: "env | value=42" in output.getvalue())
    supervisor.stop()
    await asyncio.wait_for(run, 5)
