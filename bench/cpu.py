"""CPU time per process over a window, read from ``/proc``, grouped by what each process is.

The load benchmark divides it by the orders created in the same window: where each order's
CPU goes, and how many cores a rate would take on this machine, whatever its speed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# `python -m <module> [relay]` as the Procfile starts the services
SERVICE = re.compile(r"-m (?P<module>[\w.]+)(?P<relay> relay)?")
# `postgres: 15/main: <user> <database> <client> <state>`: one backend per connection
BACKEND = re.compile(r"^postgres: [^:]+: \S+ (?P<database>\S+) ")


@dataclass(frozen=True, slots=True)
class Sample:
    """Every process's command line and CPU ticks (user + system) at one moment."""

    processes: dict[int, tuple[str, int]]


def sample() -> Sample:
    processes: dict[int, tuple[str, int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # it ended between the listing and the read
            continue
        # the fields after the command name, which may itself hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        processes[int(entry.name)] = (command, int(fields[11]) + int(fields[12]))
    return Sample(processes)


def cpu_seconds(before: Sample, after: Sample, group: Callable[[str], str | None]) -> dict[str, float]:
    """CPU seconds spent between the two samples, per group (``group`` names a command line's
    group, None leaves it out). A process that started in between counts from its start; one
    that ended in between is missed, so the window should hold long-lived processes."""
    spent: dict[str, float] = {}
    for pid, (command, ticks) in after.processes.items():
        name = group(command)
        if name is None:
            continue
        earlier = before.processes.get(pid)
        start = earlier[1] if earlier is not None and earlier[0] == command else 0
        spent[name] = spent.get(name, 0.0) + (ticks - start) / TICKS_PER_S
    return spent


def suite_group(databases: dict[str, str]) -> Callable[[str], str | None]:
    """Groups for the whole suite under load: each service process, its database's backends
    (``databases`` maps a database name to its service), PostgreSQL's own processes, RabbitMQ,
    the SMTP server and the load generator. Anything else on the machine is left out."""

    def group(command: str) -> str | None:
        if command.startswith("postgres"):
            backend = BACKEND.match(command)
            if backend is None:
                return "PostgreSQL, shared (WAL writer, checkpointer, ...)"
            service = databases.get(backend.group("database"))
            return f"PostgreSQL, {service} database" if service else None
        if "beam.smp" in command:
            return "RabbitMQ"
        if "smtp-sink" in command:
            return "SMTP server (smtp-sink)"
        if command.startswith("wrk "):
            return "wrk (load generator)"
        found = SERVICE.search(command)
        if found is None or not found.group("module").endswith(".main") or command.startswith("/bin/sh"):
            return None
        service = found.group("module").removesuffix(".main").removesuffix("_service")
        return f"{service}{' relay' if found.group('relay') else ''}"

    return group
