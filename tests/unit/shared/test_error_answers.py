"""Error answers of a service built by ``create_app``: a domain failure is its 4xx, a failure the database causes
is a 503, any other a 500 that still names the request."""

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.domain_errors import Conflict, DomainError, InvalidRequest, NotFound
from shared.web.app import create_app

router = APIRouter()


@router.get("/broken")
async def broken() -> None:
    raise RuntimeError("a bug")


@router.get("/database-gone")
async def database_gone() -> None:
    raise asyncpg.AdminShutdownError("terminating connection due to administrator command")


@router.get("/refused")
async def refused() -> None:
    raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")


@router.get("/constraint")
async def constraint() -> None:
    raise asyncpg.UniqueViolationError("duplicate key value violates unique constraint")


DOMAIN_FAILURES: dict[str, DomainError] = {
    "invalid": InvalidRequest("created_at: must not be in the future"),
    "missing": NotFound("schedule 'nightly' not found"),
    "taken": Conflict("a schedule named 'nightly' exists already", code="schedule_exists"),
    "busy": Conflict("a request with this Idempotency-Key is still in progress", code="idempotency_in_progress", retry_after_s=1),
}


@router.get("/domain/{kind}")
async def domain_failure(kind: str) -> None:
    raise DOMAIN_FAILURES[kind]


@contextlib.asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="test", service_name="test", routers=[router], lifespan=_lifespan)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_a_500_carries_the_request_id_in_its_body_and_header(client: httpx.AsyncClient) -> None:
    answer = await client.get("/broken", headers={"X-Request-ID": "req-500"})
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == "req-500"
    assert answer.json()["request_id"] == "req-500"
    assert answer.json()["code"] == "internal_error"


@pytest.mark.parametrize("path", ["/database-gone", "/refused"])
async def test_an_unreachable_database_is_a_503_with_retry_after(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path, headers={"X-Request-ID": "req-503"})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "2"
    assert answer.json()["code"] == "dependency_unavailable"
    assert answer.json()["request_id"] == "req-503"


async def test_a_database_error_of_the_request_itself_stays_a_500(client: httpx.AsyncClient) -> None:
    answer = await client.get("/constraint")
    assert answer.status_code == 500
    assert answer.json()["request_id"]


@pytest.mark.parametrize(
    ("kind", "status", "code", "retry_after"),
    [
        ("invalid", 422, "validation_error", None),
        ("missing", 404, "not_found", None),
        ("taken", 409, "schedule_exists", None),
        ("busy", 409, "idempotency_in_progress", "1"),
    ],
)
async def test_a_domain_failure_is_the_4xx_of_its_kind_with_its_reason(
    client: httpx.AsyncClient, kind: str, status: int, code: str, retry_after: str | None
) -> None:
    answer = await client.get(f"/domain/{kind}")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code
    assert answer.json()["detail"] == DOMAIN_FAILURES[kind].detail
    assert answer.headers.get("retry-after") == retry_after
