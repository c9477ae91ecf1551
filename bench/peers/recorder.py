"""What every peer's worker does with an event: note it once, and report when all have arrived.

The worker process learns ``PEER_EVENTS`` (how many to expect) and ``PEER_RESULT`` (a file)
from its environment; it writes ``{"first": t, "last": t, "seen": n}`` (wall-clock times)
there when the last distinct event arrives.
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
        self.first = 0.0

    def record(self, event_id: str) -> None:
        if not self.seen:
            self.first = time.time()
        self.seen.add(event_id)
        if len(self.seen) == self.expected:
            self.result.write_text(json.dumps({"first": self.first, "last": time.time(), "seen": len(self.seen)}))


RECORDER = Recorder()
