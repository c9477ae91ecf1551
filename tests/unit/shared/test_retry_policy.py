import pytest

from orders_service.settings import OrdersSettings
from shared.messaging.consumer import RetryPolicy, attempts_so_far
from shared.messaging.topology import ConsumerQueue, tier_label
from shared.settings import SettingsError, load_settings


def test_each_failure_waits_in_the_tier_of_its_attempt_and_later_ones_in_the_last() -> None:
    queue = ConsumerQueue("reports", "order.created", (1_000, 10_000, 60_000, 300_000))
    assert [queue.retry_tier(failed) for failed in (1, 2, 3, 4, 5, 9)] == [
        ("reports.order.created.retry.1s", 1_000),
        ("reports.order.created.retry.10s", 10_000),
        ("reports.order.created.retry.1m", 60_000),
        ("reports.order.created.retry.5m", 300_000),
        ("reports.order.created.retry.5m", 300_000),
        ("reports.order.created.retry.5m", 300_000),
    ]


def test_a_tier_is_named_by_its_delay() -> None:
    assert [tier_label(ms) for ms in (50, 1_500, 2_000, 120_000)] == ["50ms", "1500ms", "2s", "2m"]


@pytest.mark.parametrize("tiers", [(), (0,), (10_000, 1_000), (1_000, 1_000)])
def test_tiers_are_distinct_positive_delays_shortest_first(tiers: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shortest first"):
        RetryPolicy(max_attempts=3, tiers_ms=tiers)


def test_the_setting_takes_comma_separated_milliseconds_and_names_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_TIERS_MS", "500, 5000,50000")
    assert load_settings(OrdersSettings).retry_tiers_ms == (500, 5_000, 50_000)
    monkeypatch.setenv("RETRY_TIERS_MS", "1s,10s")
    with pytest.raises(SettingsError, match=r"RETRY_TIERS_MS.*delays in milliseconds separated by commas"):
        load_settings(OrdersSettings)
    monkeypatch.setenv("RETRY_TIERS_MS", "60000,1000")
    with pytest.raises(SettingsError, match="shortest first; got 60000,1000"):
        load_settings(OrdersSettings)


def test_attempts_header_is_read_defensively() -> None:
    assert attempts_so_far(None) == 0
    assert attempts_so_far({"x-attempts": 3}) == 3
    assert attempts_so_far({"x-attempts": "2"}) == 2
    assert attempts_so_far({"x-attempts": "garbage"}) == 0
    assert attempts_so_far({"x-attempts": -4}) == 0
