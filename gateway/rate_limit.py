"""Token bucket per client: ``rate`` tokens a second up to ``burst``; a refused call learns when to come back.

The buckets live in this gateway process: with several gateway instances each one
enforces the limit on its own share of the traffic (documented in docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at: float


class RateLimiter:
    """``max_keys`` bounds the table (keys from outside, such as client addresses): past it, the
    bucket made longest ago is dropped, so memory stays bounded whatever the callers send."""

    def __init__(self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int | None = None) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        """How many keys it holds a bucket for."""
        return len(self._buckets)

    def acquire(self, client: str) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if self.max_keys is not None and len(self._buckets) >= self.max_keys:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[client] = _Bucket(tokens=float(self.burst), updated_at=now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated_at) * self.rate_per_s)
            bucket.updated_at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s
