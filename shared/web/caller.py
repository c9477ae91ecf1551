"""Who is calling a service: the caller headers the gateway sets, and the internal token that vouches for them.

The gateway authenticates clients and always sets ``X-Caller-Name`` and ``X-Caller-Roles``
itself, dropping any a client sent. A service with ``INTERNAL_TOKEN`` configured (always
in production) refuses every call but health and metrics that lacks the token, so those
headers can only have come from the gateway. A call with no caller headers comes from
inside (an operator's tool on the service's own port, a test) and may see everything.
"""

from __future__ import annotations

import hmac
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.web.errors import send_problem

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
_caller: ContextVar[Caller] = ContextVar("caller", default=INTERNAL)


def current_caller() -> Caller:
    """The caller of the request being handled (set by ``CallerMiddleware``), like the request id.

    A context variable rather than a FastAPI dependency: the middleware reads the headers
    once anyway, and a dependency would be resolved again on every request of the hot path
    (``POST /orders``).
    """
    return _caller.get()


class CallerMiddleware:
    """Reads who called, and with ``token`` refuses (401) a call without the gateway's token.

    Health and metrics stay open to probes and scrapers.
    """

    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        self.app = app
        self.token = token.encode() if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = roles = presented = None
        for header, value in scope["headers"]:
            if header == CALLER_NAME:
                name = value
            elif header == CALLER_ROLES:
                roles = value
            elif header == INTERNAL_TOKEN:
                presented = value
        if self.token is not None and not hmac.compare_digest(presented or b"", self.token) and not scope["path"].startswith(OPEN_PATHS):
            await _refuse(send, scope["path"])
            return
        if name is None:
            await self.app(scope, receive, send)
            return
        role_names = frozenset(role for role in (roles or b"").decode("latin-1").split("+") if role)
        token = _caller.set(Caller(name.decode("latin-1"), role_names))
        try:
            await self.app(scope, receive, send)
        finally:
            _caller.reset(token)


async def _refuse(send: Send, path: str) -> None:
    await send_problem(send, 401, "internal_token_required", "this port takes calls from the gateway only (X-Internal-Token)", path)
