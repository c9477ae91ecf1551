"""The batched publish rests on aiormq's channel bookkeeping: a release other than the one it was written for is re-checked first."""

from __future__ import annotations

import importlib.metadata

import aiormq
import pytest

from shared.messaging.batch_publish import WRITTEN_FOR


@pytest.mark.parametrize("package", sorted(WRITTEN_FOR))
def test_the_installed_release_is_the_one_the_batched_publish_was_written_for(package: str) -> None:
    installed = importlib.metadata.version(package)
    assert installed == WRITTEN_FOR[package], (
        f"{package} {installed} is installed; shared/messaging/batch_publish.py was written against {WRITTEN_FOR[package]}: "
        "read the new release's Channel (delivery_tag, confirmations, message_id_delivery_tag, write_queue, lock), "
        "run tests/integration/shared/test_publisher.py, then update WRITTEN_FOR"
    )


def test_the_channel_still_has_the_bookkeeping_the_batched_publish_writes_into() -> None:
    for name in ("delivery_tag", "confirmations", "message_id_delivery_tag", "write_queue", "lock", "max_content_size", "number"):
        assert name in dir(aiormq.Channel) or name in aiormq.Channel.__init__.__code__.co_names, name
