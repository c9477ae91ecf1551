"""Liveness and readiness: ``healthy``, ``degraded`` (a non-critical part is down) or ``unhealthy`` (503)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

Status = Literal["healthy", "degraded", "unhealthy"]


@dataclass(frozen=True, slots=True)
class Check:
    """A named probe; it raises (or returns False) when the dependency is not usable.

    A failing critical check makes the service unhealthy (503); a failing
    non-critical one only degrades it, because the service still does useful work
    (orders are accepted into the outbox while the broker is away).
    """

    name: str
    probe: Callable[[], Awaitable[bool | None]]
    critical: bool = True
    timeout_s: float = 2.0


async def _run(check: Check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check.probe(), check.timeout_s)
        ok, error = result is not False, None
    except Exception as exc:  # noqa: BLE001 - a probe failure is data, not an error
        ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
    entry: dict[str, Any] = {
        "status": "up" if ok else "down",
        "critical": check.critical,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if error:
        entry["error"] = error
    return entry


async def evaluate(checks: list[Check]) -> tuple[Status, dict[str, Any]]:
    results = await asyncio.gather(*(_run(check) for check in checks))
    by_name = {check.name: result for check, result in zip(checks, results, strict=True)}
    status: Status = "healthy"
    for result in results:
        if result["status"] == "down":
            status = "unhealthy" if result["critical"] else ("degraded" if status == "healthy" else status)
    return status, by_name


router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/health/ready")
@router.get("/health")
async def ready(request: Request) -> JSONResponse:
    checks: list[Check] = getattr(request.app.state, "health_checks", [])
    status, details = await evaluate(checks)
    body = {"status": status, "service": getattr(request.app.state, "service_name", None), "checks": details}
    return JSONResponse(body, status_code=503 if status == "unhealthy" else 200)
