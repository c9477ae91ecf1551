from shared.messaging.consumer import RetryPolicy, attempts_so_far


def test_delay_grows_exponentially_within_jitter() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_ms=100, max_delay_ms=10_000)
    for attempt, nominal in [(1, 100), (2, 200), (3, 400), (4, 800)]:
        for _ in range(50):
            assert 0.8 * nominal <= policy.delay_ms(attempt) <= 1.2 * nominal


def test_delay_is_capped() -> None:
    policy = RetryPolicy(max_attempts=50, base_delay_ms=1_000, max_delay_ms=5_000)
    assert all(policy.delay_ms(30) <= 6_000 for _ in range(50))


def test_attempts_header_is_read_defensively() -> None:
    assert attempts_so_far(None) == 0
    assert attempts_so_far({"x-attempts": 3}) == 3
    assert attempts_so_far({"x-attempts": "2"}) == 2
    assert attempts_so_far({"x-attempts": "garbage"}) == 0
    assert attempts_so_far({"x-attempts": -4}) == 0
