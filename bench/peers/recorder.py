"""What every peer's worker does with an event: note it once, and report each round of events.

The worker process learns ``PEER_ROUNDS`` (how many events make each round, comma-separated;
the last size repeats) and ``PEER_RESULT`` (a file) from its environment. Each time a round's
distinct events have all arrived it rewrites the file with every finished round so far:
``{"rounds": [{"first": t, "last": t}, ...]}`` (wall-clock times of a round's first and
last event). One worker serves the drain (a full queue, then the worker starts) and then
the end-to-end runs, so each system pays for one worker start-up, not several.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class Recorder:
    def __init__(self) -> None:
        self.sizes = [int(size) for size in os.environ.get("PEER_ROUNDS", "1").split(",")]
        self.result = Path(os.environ.get("PEER_RESULT", "/dev/null"))
        self.seen: set[str] = set()
        self.rounds: list[dict[str, float]] = []
        self.first = 0.0
        self.round_ends = self.sizes[0]

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

    def _size(self) -> int:
        """The size of the round under way."""
        return self.sizes[min(len(self.rounds), len(self.sizes) - 1)]


RECORDER = Recorder()
