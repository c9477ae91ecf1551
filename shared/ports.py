"""Free local ports for the processes this machine starts (``make run``, the tests, the benchmarks)."""

from __future__ import annotations

import functools
import random
import socket
from pathlib import Path

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


@functools.cache
def _ephemeral_ports_start() -> int:
    try:
        return int(PORT_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range, and not given out before by this process.

    ``bind(0)`` would pick from the ephemeral range, where the kernel also finds the local port
    of every outgoing connection: between this call and the server's own bind, a connection to
    PostgreSQL or RabbitMQ could take the port (seen: a suite process failed with "address
    already in use").
    """
    start = _ephemeral_ports_start()
    low = max(1024, start - 12_000)
    for _ in range(1_000):
        port = random.randrange(low, start)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found in {low}..{start - 1}")
