"""The orders service as reconciliation asks it: ``GET /orders/days`` on its own port, with the internal token."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import httpx

from shared.domain_errors import Unavailable
from shared.web.caller import INTERNAL_TOKEN


class HttpOrdersDays:
    """A client per call: reconciliation asks rarely (hourly, or an operator), so nothing is kept open."""

    def __init__(self, base_url: str, *, internal_token: str | None, timeout_s: float) -> None:
        self._base_url = base_url
        self._headers = {INTERNAL_TOKEN.decode(): internal_token} if internal_token else {}
        self._timeout_s = timeout_s

    async def day_counts(self, first: date, last: date, *, tz: str) -> Mapping[date, tuple[int, int]]:
        params = {"from": first.isoformat(), "to": last.isoformat(), "tz": tz}
        try:
            async with httpx.AsyncClient(base_url=self._base_url, headers=self._headers, timeout=self._timeout_s) as client:
                response = await client.get("/orders/days", params=params)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise Unavailable(f"the orders service did not answer its day counts: {type(error).__name__}: {error}"[:500]) from None
        return {date.fromisoformat(day["day"]): (int(day["orders"]), int(day["products"])) for day in response.json()}
