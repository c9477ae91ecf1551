"""One error shape for every service and the gateway: RFC 9457 problem details.

Every 4xx and 5xx body is ``application/problem+json`` with the standard members
(``type``, ``title``, ``status``, ``detail``, ``instance``) and three extensions: ``code``
(a stable name to switch on), ``request_id`` and, for a request that does not validate,
``errors`` (one entry per field). ``type`` is ``about:blank``, so ``title`` is the status's
phrase and ``code`` says which problem it is.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Send

from shared.correlation import current_correlation_id
from shared.db_faults import database_unavailable, network_failure
from shared.domain_errors import Conflict, DomainError, InvalidRequest, NotFound, Unavailable

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_PROBLEM = PROBLEM_MEDIA_TYPE.encode()

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_unavailable",
    503: "dependency_unavailable",
    504: "upstream_timeout",
}


class FieldError(BaseModel):
    loc: str = Field(description="where the value is, e.g. `body.items.0.price` or `query.page`")
    msg: str
    type: str = Field(description="the validation rule that failed, e.g. `greater_than`")


class Problem(BaseModel):
    """RFC 9457 problem details with the suite's extensions."""

    type: str = Field("about:blank", description="always `about:blank`: `code` names the problem")
    title: str = Field(description="the status's phrase, e.g. `Not Found`")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong with this request, for a person")
    instance: str = Field(description="the path of the request")
    code: str = Field(description="stable and machine-readable, e.g. `not_found`, `validation_error`, `rate_limited`")
    request_id: str = Field(description="the request's X-Request-ID, also in the logs of every service it reached")
    errors: list[FieldError] | None = Field(None, description="one entry per invalid field (400 and 422 only)")


def problem_body(
    status: int, code: str, detail: str, instance: str, errors: list[dict[str, Any]] | None = None, request_id: str | None = None
) -> bytes:
    """The serialised problem: for pure ASGI senders (the gateway's proxy, the caller check) as for the handlers."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": request_id or current_correlation_id() or "",
    }
    if errors:
        body["errors"] = errors
    return orjson.dumps(body)


# what a client waits before trying again while the service's database is out of reach
RETRY_AFTER_S = 2

_TITLES = {status.value: status.phrase for status in HTTPStatus if status.value >= 400}


async def send_problem(
    send: Send, status: int, code: str, detail: str, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A problem answered straight from ASGI, for code that runs before any route (the gateway's proxy, the caller check)."""
    body = problem_body(status, code, detail, path)
    response_headers = [(b"content-type", _PROBLEM), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


class ServiceError(Exception):
    """An expected failure a use case reports; mapped to its status with a readable reason."""

    def __init__(self, status_code: int, detail: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.code = code or _CODES.get(status_code, "error")
        self.headers = headers


def error_response(
    request: Request,
    status_code: int,
    detail: str,
    *,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = problem_body(status_code, code or _CODES.get(status_code, "error"), detail, request.scope["path"], errors)
    return Response(body, status_code=status_code, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": _location(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in errors):
        return error_response(request, 400, "malformed JSON body", code="malformed_json", errors=errors)
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    return error_response(request, 422, detail or "invalid request", errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(request, exc.status_code, exc.detail, code=exc.code, headers=exc.headers)


# the status of each kind of domain failure; a kind not listed is a 422
_DOMAIN_STATUS: dict[type[DomainError], int] = {InvalidRequest: 422, NotFound: 404, Conflict: 409, Unavailable: 503}


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    status = next((code for kind, code in _DOMAIN_STATUS.items() if isinstance(exc, kind)), 422)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
    return error_response(request, status, exc.detail, code=exc.code, headers=headers)


async def _database_error(request: Request, exc: Exception) -> Response:
    """503 while the service's own database is out of reach (the client may retry); any other database error is a 500."""
    if database_unavailable(exc) or network_failure(exc):
        log.warning("database unavailable; answering 503", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        return error_response(
            request,
            503,
            "the service's database is unavailable; retry later",
            code="dependency_unavailable",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return await _unexpected_error(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """A 500 that still names the request: Starlette runs this outside every middleware, after
    ``RequestIdMiddleware`` has reset the request id, which it also left in the scope."""
    request_id = request.scope.get("request_id") or current_correlation_id() or ""
    log.exception("unhandled error", exc_info=exc, extra={"request_id": request_id})
    body = problem_body(500, "internal_error", "internal error", request.scope["path"], request_id=request_id)
    return Response(body, status_code=500, headers={"X-Request-ID": request_id}, media_type=PROBLEM_MEDIA_TYPE)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(DomainError, _domain_error)
    for database_error in (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
