"""Run the suite's processes, start again the ones that end, and stop them all on a signal.

What supervisord's ``autorestart`` does, for ``make run``: a process that ends while the
suite runs (a crash, a ``kill -9``) is started again after a pause that doubles from
``first_delay_s`` up to ``max_delay_s``; every restart is logged with its count. A process
that ends within ``start_s`` of its start ``start_retries`` times in a row is given up
(supervisord's FATAL state) and the run says so; the others keep running. Ctrl-C or
SIGTERM sends SIGTERM to every process group and SIGKILL to those still running
``stop_timeout_s`` later (a second Ctrl-C kills at once), so a process that ignores
SIGTERM cannot hold the run open.

Output goes through honcho's ``Printer``: one stream, each line prefixed with the time and
the process name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from honcho.colour import get_colours
from honcho.printer import Message, Printer

LINE_LIMIT = 1 << 20  # longer output lines are cut into pieces of this size


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    start_s: float = 5.0  # a process ending sooner than this after its start crashed at start (supervisord's startsecs)
    start_retries: int = 5  # crashes at start in a row before it is given up (supervisord's startretries)
    stop_timeout_s: float = 20.0  # longer than a service's drain

    def delay_s(self, crashes_in_a_row: int) -> float:
        return float(min(self.first_delay_s * 2 ** max(crashes_in_a_row - 1, 0), self.max_delay_s))


@dataclass(slots=True, eq=False)
class Program:
    name: str
    command: str
    env: dict[str, str]
    colour: str | None
    restarts: int = 0
    given_up: bool = False
    process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


class Supervisor:
    def __init__(self, printer: Printer, policy: RestartPolicy | None = None) -> None:
        self._printer = printer
        self._policy = policy or RestartPolicy()
        self._programs: dict[str, Program] = {}
        self._colours: Iterator[str] = get_colours()
        self._stopping: asyncio.Event | None = None
        self._stop_requests = 0

    @property
    def programs(self) -> dict[str, Program]:
        return self._programs

    def add(self, name: str, command: str, env: dict[str, str]) -> None:
        self._programs[name] = Program(name, command, env, next(self._colours))

    def stop(self) -> None:
        """Stop every process (the SIGINT and SIGTERM handler); asked twice, kill them at once."""
        self._stop_requests += 1
        if self._stopping is None:
            return
        if self._stopping.is_set():
            self._say(None, "stopping again: killing every process")
            for program in self._programs.values():
                self._signal(program, signal.SIGKILL)
            return
        self._stopping.set()

    async def run(self) -> int:
        """Until stopped, or until every process is given up; 0 when stopped with none given up."""
        self._stopping = asyncio.Event()
        if self._stop_requests:
            self._stopping.set()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop)
        try:
            keepers = [asyncio.create_task(self._keep_running(program)) for program in self._programs.values()]
            stopper = asyncio.create_task(self._stop_all_when_asked())
            await asyncio.gather(*keepers)
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        restarted = [f"{program.name} {program.restarts}" for program in self._programs.values() if program.restarts]
        given_up = [program.name for program in self._programs.values() if program.given_up]
        self._say(None, "restarts: " + (", ".join(restarted) if restarted else "none"))
        if given_up:
            self._say(None, f"given up: {', '.join(given_up)}")
        return 1 if given_up else 0

    async def _keep_running(self, program: Program) -> None:
        assert self._stopping is not None
        crashes_in_a_row = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            code = await self._run_once(program)
            if self._stopping.is_set():
                return
            lived_s = time.monotonic() - started
            crashes_in_a_row = crashes_in_a_row + 1 if lived_s < self._policy.start_s else 0
            if crashes_in_a_row > self._policy.start_retries:
                program.given_up = True
                self._say(
                    program,
                    f"ended with {_describe(code)} within {self._policy.start_s:g} s of its start "
                    f"{crashes_in_a_row} times in a row; giving up on it",
                )
                return
            delay_s = self._policy.delay_s(crashes_in_a_row)
            program.restarts += 1
            self._say(program, f"ended with {_describe(code)} after {lived_s:.1f} s; restart {program.restarts} in {delay_s:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay_s)

    async def _run_once(self, program: Program) -> int:
        assert self._stopping is not None
        process = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            program.command,
            env=program.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # a group of its own: a stop reaches the shell's children too
            limit=LINE_LIMIT,
        )
        program.process = process
        self._say(program, f"started with pid {process.pid}")
        if self._stopping.is_set():  # asked to stop while it was starting
            await self._terminate(program)
        assert process.stdout is not None
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # longer than the limit: pass on what the buffer holds
                line = await process.stdout.read(LINE_LIMIT)
            if not line:
                break
            self._write(program, line)
        return await process.wait()

    async def _stop_all_when_asked(self) -> None:
        assert self._stopping is not None
        await self._stopping.wait()
        await asyncio.gather(*(self._terminate(program) for program in self._programs.values()))

    async def _terminate(self, program: Program) -> None:
        process = program.process
        if process is None or process.returncode is not None:
            return
        self._signal(program, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self._policy.stop_timeout_s)
        except TimeoutError:
            self._say(program, f"still running {self._policy.stop_timeout_s:g} s after SIGTERM; killing it")
            self._signal(program, signal.SIGKILL)

    def _signal(self, program: Program, signum: signal.Signals) -> None:
        if program.running:
            assert program.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(program.process.pid, signum)

    def _write(self, program: Program, data: bytes) -> None:
        self._printer.write(Message(type="line", data=data, time=datetime.now(), name=program.name, colour=program.colour))

    def _say(self, program: Program | None, text: str) -> None:
        """The supervisor's own line, about ``program`` or about the run."""
        prefix = "" if program is None else f"{program.name}: "
        self._printer.write(Message(type="line", data=prefix + text, time=datetime.now(), name="supervisor", colour=None))


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"
