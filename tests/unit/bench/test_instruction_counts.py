"""The consumer's instruction count runs full batches, whatever the machine's speed."""

import pytest

from bench import instructions
from bench.peers import suite_worker


def test_the_worker_takes_its_batches_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEER_BATCH_SIZE", "10")
    monkeypatch.setenv("PEER_BATCH_LINGER_S", "180")
    assert suite_worker.batching_from_environment() == {"batch_size": 10, "batch_linger_s": 180.0}


def test_without_them_the_worker_keeps_the_consumer_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEER_BATCH_SIZE", raising=False)
    monkeypatch.delenv("PEER_BATCH_LINGER_S", raising=False)
    assert suite_worker.batching_from_environment() == {}


async def test_a_count_that_would_end_on_a_partial_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="whole batches of 100"):
        await instructions.consumer_run(None, 550, instructions.Tracing(), batch=100)  # type: ignore[arg-type]


def test_every_measured_count_makes_whole_batches_of_every_offered_size() -> None:
    _, _, small, large = instructions.MEASURES["consumer"]
    assert all(small % batch == 0 and large % batch == 0 for batch in instructions.CONSUMER_BATCHES)
