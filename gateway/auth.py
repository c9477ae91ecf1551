"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time.

Every configured key is compared on every call (no early exit), so timing says
neither whether a key exists nor which one matched. Only the client's name and roles
leave this module; keys are never logged.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

Role = Literal["shop", "analyst", "operator"]
ROLES: tuple[Role, ...] = ("shop", "analyst", "operator")


@dataclass(frozen=True, slots=True)
class Client:
    """Who called: the configured name and roles; ``roles_header`` is what the services receive."""

    name: str
    roles: frozenset[str]

    @property
    def roles_header(self) -> str:
        return "+".join(role for role in ROLES if role in self.roles)


@dataclass(frozen=True, slots=True)
class ClientKey:
    client: Client
    key: str


def presented_key(authorization: bytes, api_key: bytes) -> bytes | None:
    """The key a request carries: ``Authorization: Bearer <key>`` first, else ``X-API-Key``."""
    if authorization[:7].lower() == b"bearer ":
        return authorization[7:].strip() or None
    return api_key.strip() or None


class ApiKeys:
    def __init__(self, keys: list[ClientKey]) -> None:
        self._keys = [(entry.client, entry.key.encode()) for entry in keys]

    def client_for(self, presented: bytes | None) -> Client | None:
        """The client whose key was presented, or None."""
        if not presented:
            return None
        found: Client | None = None
        for client, key in self._keys:
            if hmac.compare_digest(presented, key) and found is None:
                found = client
        return found


def parse_api_keys(raw: str) -> list[ClientKey]:
    """``"web:k1:shop,bi:k2:analyst+shop,ops:k3"``: name, key and roles joined by ``+``.

    An entry without roles is an ``operator`` (the configurations written before roles
    existed keep working); a bare key is named ``client<n>``.
    """
    entries: list[ClientKey] = []
    names: set[str] = set()
    for index, entry in enumerate(part.strip() for part in raw.split(",")):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) == 1:
            name, key, roles_text = f"client{index + 1}", parts[0], ""
        elif len(parts) == 2:
            (name, key), roles_text = parts, ""
        elif len(parts) == 3:
            name, key, roles_text = parts
        else:
            raise ValueError(f"entry {index + 1} has {len(parts) - 1} ':'; write name:key or name:key:roles")
        name, key = name.strip(), key.strip()
        if not name:
            raise ValueError(f"entry {index + 1} has no client name")
        if len(key) < 8:
            raise ValueError(f"the key of {name!r} is shorter than 8 characters")
        if name in names:
            raise ValueError(f"client name {name!r} appears twice")
        roles = frozenset(role.strip() for role in roles_text.split("+") if role.strip()) or frozenset({"operator"})
        unknown = sorted(roles - set(ROLES))
        if unknown:
            raise ValueError(f"client {name!r} has unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
        names.add(name)
        entries.append(ClientKey(Client(name, roles), key))
    if not entries:
        raise ValueError("needs at least one key")
    return entries
