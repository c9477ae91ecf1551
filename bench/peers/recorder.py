"""What every peer's worker does with an event: note it once, and report each round of events.

The worker process learns ``PEER_ROUNDS`` (how many events make each round, comma-separated;
the last size repeats) and ``PEER_RESULT`` (a file) from its environment. Each time a round's
distinct events have all arrived it rewrites the file with every finished round so far:
``{"rounds": [{"first": t, "last": t}, ...]}`` (wall-clock times of a round's first and
last event). One worker serves the drain (a full queue, then the worker starts) and then
the end-to-end runs, so each system pays for one worker start-up, not several.

With ``PEER_DATABASE_URL`` set, the worker first stores each event in PostgreSQL, as a task
that records something durably does: one ``INSERT ... ON CONFLICT DO NOTHING`` on the event
id (the natural key absorbs a redelivery), committed on its own, before the event is noted
and the message acked. Without it the record is an id in memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

DATABASE_URL = os.environ.get("PEER_DATABASE_URL")
CONNECTIONS = 10  # as many as the suite's worker pools
CREATE = "CREATE TABLE IF NOT EXISTS recorded (event_id text PRIMARY KEY, recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())"
INSERT = "INSERT INTO recorded (event_id) VALUES ($1) ON CONFLICT DO NOTHING"
INSERT_PSYCOPG = INSERT.replace("$1", "%s")  # psycopg's placeholder style


class Recorder:
    def __init__(self) -> None:
        self.sizes = [int(size) for size in os.environ.get("PEER_ROUNDS", "1").split(",")]
        self.result = Path(os.environ.get("PEER_RESULT", "/dev/null"))
        self.seen: set[str] = set()
        self.rounds: list[dict[str, float]] = []
        self.first = 0.0
        self.round_ends = self.sizes[0]
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._connection: Any = None

    def record(self, event_id: str) -> None:
        if event_id in self.seen:
            return
        if len(self.seen) == self.round_ends - self._size():
            self.first = time.time()
        self.seen.add(event_id)
        if len(self.seen) == self.round_ends:
            self.rounds.append({"first": self.first, "last": time.time()})
            self.result.write_text(json.dumps({"rounds": self.rounds}))
            self.round_ends += self._size()

    async def store(self, event_id: str) -> None:
        """For the async workers (taskiq, FastStream): stored through an asyncpg pool, then noted."""
        if DATABASE_URL is not None:
            if self._pool is None:
                async with self._pool_lock:
                    if self._pool is None:
                        import asyncpg

                        pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=CONNECTIONS)
                        await pool.execute(CREATE)
                        self._pool = pool
            await self._pool.execute(INSERT, event_id)
        self.record(event_id)

    def store_blocking(self, event_id: str) -> None:
        """For Celery's synchronous worker: stored through one psycopg connection in autocommit, then noted."""
        if DATABASE_URL is not None:
            if self._connection is None:
                import psycopg

                self._connection = psycopg.connect(DATABASE_URL, autocommit=True)
                self._connection.execute(CREATE)
            self._connection.execute(INSERT_PSYCOPG, (event_id,))
        self.record(event_id)

    def _size(self) -> int:
        """The size of the round under way."""
        return self.sizes[min(len(self.rounds), len(self.sizes) - 1)]


RECORDER = Recorder()
