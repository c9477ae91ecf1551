"""The suite's API as the console calls it: through the gateway itself, with the signed-in operator's key.

Every page reads, and every button changes, exactly what an operator's key could through
``curl``: the call passes the gateway's authentication, rate limit, access rules and proxy.
RabbitMQ's queue figures come from its management API, which the suite's API does not
repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from starlette.types import ASGIApp


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    headers: httpx.Headers

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def problem(self) -> str:
        """What went wrong, as the API said it (its problem+json detail)."""
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or self.body)
        return str(self.body)[:300]


class SuiteApi:
    """Calls of one operator: ``key`` is theirs, looked up by the name in their session."""

    def __init__(self, app: ASGIApp, key: str, timeout_s: float) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers={"X-API-Key": key}, timeout=timeout_s
        )

    async def __aenter__(self) -> SuiteApi:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    async def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Answer:
        clean = {name: value for name, value in (params or {}).items() if value not in (None, "")}
        response = await self._client.request(method, path, params=clean, json=json)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Answer(response.status_code, body, response.headers)

    async def get(self, path: str, **params: Any) -> Answer:
        return await self.call("GET", path, params=params)


class Management:
    """RabbitMQ's management API: depth, rates and consumers of every queue of the suite's vhost."""

    def __init__(self, url: str, user: str, password: str, vhost: str, timeout_s: float) -> None:
        self._url = url.rstrip("/")
        self._auth = (user, password)
        self._vhost = vhost
        self._timeout_s = timeout_s

    async def queues(self) -> list[dict[str, Any]] | str:
        """The queues, or why they could not be read."""
        columns = "name,messages,messages_ready,messages_unacknowledged,consumers,message_stats"
        try:
            async with httpx.AsyncClient(auth=self._auth, timeout=self._timeout_s) as client:
                response = await client.get(f"{self._url}/api/queues/{quote(self._vhost, safe='')}", params={"columns": columns})
            response.raise_for_status()
        except httpx.HTTPError as error:
            return f"the RabbitMQ management API did not answer: {type(error).__name__}: {error}"[:300]
        return sorted(response.json(), key=lambda queue: queue["name"])
