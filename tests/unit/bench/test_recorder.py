"""The peers' recorder: a round runs from its first new event to its last, redeliveries aside."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench.peers import recorder


def test_rounds_of_distinct_events_are_timed_and_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = tmp_path / "result.json"
    monkeypatch.setenv("PEER_ROUNDS", "3,2")
    monkeypatch.setenv("PEER_RESULT", str(result))
    now = [0.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    events = recorder.Recorder()

    def arrive(at: float, event_id: str) -> list[dict[str, float]]:
        now[0] = at
        events.record(event_id)
        return list(json.loads(result.read_text())["rounds"]) if result.exists() else []

    assert arrive(1, "a") == arrive(2, "b") == arrive(3, "a") == []  # "a" redelivered: noted once
    assert arrive(4, "c") == [{"first": 1, "last": 4}]
    arrive(5, "c")  # a late redelivery of the finished round does not start the next
    arrive(6, "d")
    assert arrive(7, "e") == [{"first": 1, "last": 4}, {"first": 6, "last": 7}]
    arrive(8, "f")
    assert arrive(9, "g")[-1] == {"first": 8, "last": 9}  # the last size repeats
