"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time.

Every configured key is compared on every call (no early exit), so timing says
neither whether a key exists nor which one matched. Only the client's name leaves
this module; keys are never logged.
"""

from __future__ import annotations

import hmac


class ApiKeys:
    def __init__(self, keys_by_client: dict[str, str]) -> None:
        self._keys = [(name, key.encode()) for name, key in keys_by_client.items()]

    def client_for(self, presented: bytes | None) -> str | None:
        """The client whose key was presented, or None."""
        if not presented:
            return None
        found: str | None = None
        for name, key in self._keys:
            if hmac.compare_digest(presented, key) and found is None:
                found = name
        return found
