"""Each benchmark round has a time limit, so that ``make bench`` ends by itself."""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import pytest

from bench.run import bounded
from shared.testing.infrastructure import Infrastructure


async def test_a_benchmark_that_hangs_is_stopped_and_named() -> None:
    stopped = asyncio.Event()

    async def hangs(_: Infrastructure) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()  # its clean-up runs
        return {}

    with pytest.raises(TimeoutError, match=re.escape("hangs ran longer than 0.05 s and was stopped")):
        await bounded("hangs", hangs, cast(Infrastructure, None), limit_s=0.05)
    assert stopped.is_set()


async def test_a_benchmark_inside_its_limit_gives_its_figures_and_its_own_errors() -> None:
    async def quick(_: Infrastructure) -> dict[str, Any]:
        return {"rate": 1.0}

    async def gives_up(_: Infrastructure) -> dict[str, Any]:
        raise TimeoutError("only 3 of 5 sent in 120 s")

    assert await bounded("quick", quick, cast(Infrastructure, None), limit_s=5) == {"rate": 1.0}
    with pytest.raises(TimeoutError, match="only 3 of 5 sent"):
        await bounded("gives_up", gives_up, cast(Infrastructure, None), limit_s=5)
