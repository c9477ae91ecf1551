"""The load benchmark's CPU attribution: which process is which, and what a window adds up to."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.cpu import TICKS_PER_S, Sample, cpu_seconds, sample, suite_group

GROUP = suite_group({"bench_load_orders_1a2b": "orders", "bench_load_reports_3c4d": "reports"})


def test_each_suite_process_is_named_by_its_service() -> None:
    assert GROUP(".venv/bin/python -m orders_service.main --port 8001") == "orders"
    assert GROUP(".venv/bin/python -m orders_service.main relay --port 9001") == "orders relay"
    assert GROUP(".venv/bin/python -m gateway.main --port 8000") == "gateway"
    assert GROUP(".venv/bin/python -m notifications_service.main --port 8004") == "notifications"
    assert GROUP("postgres: 15/main: postgres bench_load_orders_1a2b 127.0.0.1(5000) idle") == "PostgreSQL, orders database"
    assert GROUP("postgres: 15/main: walwriter") == "PostgreSQL, shared (WAL writer, checkpointer, ...)"
    assert GROUP("/usr/lib/erlang/erts-13.1.5/bin/beam.smp -W w -- -root /usr/lib/erlang") == "RabbitMQ"
    assert GROUP("/usr/sbin/smtp-sink -u root 127.0.0.1:2525 256") == "SMTP server (smtp-sink)"
    assert GROUP("wrk -t30 -c30 -d15s --timeout 30s -s /work/bench/scenario.lua http://127.0.0.1:8000") == "wrk (load generator)"


def test_what_is_not_the_suite_is_left_out() -> None:
    assert GROUP("postgres: 15/main: postgres some_other_database 127.0.0.1(5001) idle") is None
    assert GROUP("/bin/sh -c .venv/bin/python -m orders_service.main --port 8001") is None  # the shell honcho starts it with
    assert GROUP(".venv/bin/python -m deploy.launcher --procfile Procfile") is None
    assert GROUP(".venv/bin/python -m bench.run --rounds 3") is None
    assert GROUP("sshd: root@pts/0") is None


def test_a_window_counts_what_each_process_spent_in_it() -> None:
    before = Sample(
        {
            1: ("python -m gateway.main", 100),
            2: ("python -m orders_service.main", 50),
            3: ("postgres: 15/main: walwriter", 7),
            5: ("sleep 100", 2 * TICKS_PER_S),
        }
    )
    after = Sample(
        {
            1: ("python -m gateway.main", 100 + TICKS_PER_S),  # one second spent
            2: ("python -m orders_service.main", 50 + TICKS_PER_S // 2),
            3: ("postgres: 15/main: walwriter", 7),
            4: ("python -m reports_service.main", TICKS_PER_S),  # started inside the window: all of it counts
            5: ("python -m orders_service.main relay", 3 * TICKS_PER_S),  # a reused pid with another command: counts from 0
        }
    )
    spent = cpu_seconds(before, after, GROUP)
    shared = "PostgreSQL, shared (WAL writer, checkpointer, ...)"
    assert spent == {"gateway": 1.0, "orders": 0.5, shared: 0.0, "reports": 1.0, "orders relay": 3.0}


BUSY_CHILD = """
import sys, time
sys.stdin.readline()
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
sys.stdin.readline()
"""


def test_a_busy_process_shows_up_in_a_real_sample() -> None:
    """Read from this machine's /proc: a child that burns 0.3 s of CPU inside the window is counted under its group."""
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD], stdin=subprocess.PIPE)
    assert child.stdin is not None
    try:
        before = sample()
        assert child.pid in before.processes
        assert os.getpid() in before.processes
        child.stdin.write(b"go\n")
        child.stdin.flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            after = sample()
            if (after.processes[child.pid][1] - before.processes[child.pid][1]) / TICKS_PER_S >= 0.25:
                break
            time.sleep(0.05)
        spent = cpu_seconds(before, after, lambda command: "busy child" if command.endswith(BUSY_CHILD.strip()) else None)
        assert spent["busy child"] >= 0.25
    finally:
        child.kill()
        child.wait()
