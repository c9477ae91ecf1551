import socket
from collections.abc import Iterator

import pytest

from shared.ports import _ephemeral_ports_start, free_port


def test_ports_are_distinct_below_the_ephemeral_range_and_bindable() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports), "a port is given out once"
    assert all(1024 <= port < _ephemeral_ports_start() for port in ports), "outgoing connections never take them"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_a_port_something_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        for busy in range(_ephemeral_ports_start() - 1, 1024, -1):
            try:
                taken.bind(("127.0.0.1", busy))
                break
            except OSError:
                continue
        taken.listen()
        candidates: Iterator[int] = iter([busy, busy, busy - 1, busy - 2, busy - 3])
        monkeypatch.setattr("random.randrange", lambda low, high: next(candidates))
        assert free_port() < busy
