"""One peer's runs, as the peers benchmark makes them: the drain, the end-to-end runs (their mean
is the figure) and the one-at-a-time run, all served by one worker process, on the real broker."""

from __future__ import annotations

import asyncio
import json
import statistics
from pathlib import Path

import pytest

from bench.peers import compare
from shared.testing.infrastructure import Infrastructure
from tests.integration.bench import stand_in_peer

EVENTS, SERIAL_EVENTS = 300, 30


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The stand-in registered as a peer, with small runs; the path its rounds are copied to."""
    monkeypatch.setattr(compare, "EVENTS", EVENTS)
    monkeypatch.setattr(compare, "SERIAL_EVENTS", SERIAL_EVENTS)
    command = ["tests.integration.bench.stand_in_peer"]
    monkeypatch.setitem(compare.PEERS, "stand-in", (command, stand_in_peer.QUEUE, stand_in_peer.produce))
    copy = tmp_path / "rounds.json"
    rounds = compare._rounds

    async def rounds_kept(path: Path, count: int) -> list[dict[str, float]] | None:
        found = await rounds(path, count)
        if found is not None:
            await asyncio.to_thread(copy.write_text, json.dumps(found))
        return found

    monkeypatch.setattr(compare, "_rounds", rounds_kept)
    wait_for = compare._wait_for
    monkeypatch.setattr(compare, "_wait_for", lambda probe, what: wait_for(probe, what, timeout_s=20))  # a missed round fails soon
    return copy


async def test_a_peer_runs_end_to_end_twice_between_its_drain_and_its_one_at_a_time_run(
    infrastructure: Infrastructure, stand_in: Path
) -> None:
    end_to_end, drain, serial = await compare.peer_runs(infrastructure, "stand-in")

    rounds = json.loads(await asyncio.to_thread(stand_in.read_text))
    assert len(rounds) == 2 + compare.PEER_END_TO_END_RUNS  # drain, the end-to-end runs, one at a time
    assert drain > 0
    assert serial > 0
    # each end-to-end run started after the round before it ended and before its own first event
    # arrived: its rate lies between these bounds, and so does the mean of the runs
    runs = range(1, 1 + compare.PEER_END_TO_END_RUNS)
    slowest = [EVENTS / (rounds[run]["last"] - rounds[run - 1]["last"]) for run in runs]
    fastest = [EVENTS / (rounds[run]["last"] - rounds[run]["first"]) for run in runs]
    assert statistics.mean(slowest) <= end_to_end <= statistics.mean(fastest)


async def test_a_durable_peer_warms_up_and_then_runs_end_to_end_once(infrastructure: Infrastructure, stand_in: Path) -> None:
    end_to_end, drain, serial = await compare._worker_runs(infrastructure, "stand-in", {}, durable=True)

    rounds = json.loads(await asyncio.to_thread(stand_in.read_text))
    assert len(rounds) == 2  # the warm-up event, then the run
    assert end_to_end > 0
    assert (drain, serial) == (0.0, 0.0)
