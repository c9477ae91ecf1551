"""Who is calling a service: the caller headers the gateway sets, and the internal token that vouches for them.

The gateway authenticates clients and always sets ``X-Caller-Name`` and ``X-Caller-Roles``
itself, dropping any a client sent. A service with ``INTERNAL_TOKEN`` configured (always
in production) refuses every call but health and metrics that lacks the token, so those
headers can only have come from the gateway. A call with no caller headers comes from
inside (an operator's tool on the service's own port, a test) and may see everything.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.correlation import current_correlation_id

CALLER_NAME = b"x-caller-name"
CALLER_ROLES = b"x-caller-roles"
INTERNAL_TOKEN = b"x-internal-token"
# probes and scrapers reach a service's own port without the gateway
OPEN_PATHS = ("/health", "/metrics")


@dataclass(frozen=True, slots=True)
class Caller:
    name: str | None
    roles: frozenset[str]

    @property
    def owner(self) -> str | None:
        """The client whose resources alone this caller may see, or None for every client's.

        Operators and analysts see everything they can reach; a ``shop`` sees what it owns.
        """
        if self.name is None or self.roles & {"operator", "analyst"}:
            return None
        return self.name


INTERNAL = Caller(None, frozenset({"operator"}))


async def get_caller(request: Request) -> Caller:
    name = request.headers.get("x-caller-name")
    if name is None:
        return INTERNAL
    roles = frozenset(role for role in request.headers.get("x-caller-roles", "").split("+") if role)
    return Caller(name, roles)


CallerDep = Annotated[Caller, Depends(get_caller)]


class InternalTokenMiddleware:
    """Refuses (401) a call without the gateway's token; health and metrics stay open."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        presented = b""
        for name, value in scope["headers"]:
            if name == INTERNAL_TOKEN:
                presented = value
                break
        if hmac.compare_digest(presented, self.token):
            await self.app(scope, receive, send)
            return
        body = orjson.dumps(
            {
                "code": "internal_token_required",
                "detail": "this port takes calls from the gateway only (X-Internal-Token)",
                "request_id": current_correlation_id(),
            }
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
