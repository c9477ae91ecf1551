"""What this process's workers report through their metrics, read the way Prometheus would.

Tests wait on these counts instead of sleeping: a consumer acked so many messages, a
dispatcher tried the mail server so many times.
"""

from __future__ import annotations

from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def acked(queue: str) -> float:
    """Messages of ``queue`` acked by this process's consumers, handled or recognised as duplicates."""
    return sample("events_consumed_total", queue=queue, outcome="ok") + sample("events_consumed_total", queue=queue, outcome="duplicate")


def sends(outcome: str) -> float:
    """This process's notification dispatchers' sends with ``outcome``."""
    return sample("notification_sends_total", outcome=outcome)


def broker_unavailable() -> float:
    """Publish attempts this process's relays made while the broker was away."""
    return sample("events_publish_failed_total", reason="broker_unavailable")
