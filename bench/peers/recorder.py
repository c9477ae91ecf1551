"""What every peer's worker does with an event: note it once, and report each round of events.

The worker process learns ``PEER_EVENTS`` (how many events make a round) and ``PEER_RESULT``
(a file) from its environment. Each time another ``PEER_EVENTS`` distinct events have
arrived it rewrites the file with every finished round so far:
``{"rounds": [{"first": t, "last": t}, ...]}`` (wall-clock times of a round's first and
last event). One worker serves the drain (a full queue, then the worker starts) and then
the end-to-end run, so each system pays for one worker start-up, not two.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class Recorder:
    def __init__(self) -> None:
        self.expected = int(os.environ.get("PEER_EVENTS", "0"))
        self.result = Path(os.environ.get("PEER_RESULT", "/dev/null"))
        self.seen: set[str] = set()
        self.rounds: list[dict[str, float]] = []
        self.first = 0.0

    def record(self, event_id: str) -> None:
        if event_id in self.seen:
            return
        if len(self.seen) % self.expected == 0:
            self.first = time.time()
        self.seen.add(event_id)
        if len(self.seen) % self.expected == 0:
            self.rounds.append({"first": self.first, "last": time.time()})
            self.result.write_text(json.dumps({"rounds": self.rounds}))


RECORDER = Recorder()
