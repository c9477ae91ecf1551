"""Pure ASGI middleware: accept or create ``X-Request-ID``, expose it to logs and events."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.correlation import correlation_id

HEADER = b"x-request-id"
_ACCEPTABLE = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = b""
        for name, value in scope["headers"]:
            if name == HEADER:
                request_id = value
                break
        if not _ACCEPTABLE.match(request_id):
            request_id = uuid.uuid4().hex.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, request_id)]
            await send(message)

        decoded = scope["request_id"] = request_id.decode()  # for the 500 handler, which runs outside this middleware
        token = correlation_id.set(decoded)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)
