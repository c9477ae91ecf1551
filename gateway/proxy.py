"""The proxy hot path, pure ASGI: authenticate, limit, pick an instance, forward with aiohttp, answer.

httpx is kept for the gateway's cold paths (health, docs); the forwarding client is an
``aiohttp.ClientSession`` because httpx's connection pool (httpcore) costs far more per
request under concurrency: every request walks all pooled connections under an AnyIO
lock and polls each socket for readability (encode/httpx#3215, encode/httpcore#1035);
``make bench`` measures both beside each other.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

import aiohttp
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from starlette.types import ASGIApp, Receive, Scope, Send
from yarl import URL

from gateway.access import refusal
from gateway.auth import ApiKeys, presented_key
from gateway.rate_limit import RateLimiter
from gateway.retry import (
    RETRYABLE_STATUSES,
    Failure,
    Outcome,
    RetryPolicy,
    UpstreamFailure,
    UpstreamResponse,
    call_with_retries,
    retry_reason,
)
from gateway.upstreams import RouteTable, Upstream
from shared import metrics, tracing
from shared.correlation import current_correlation_id
from shared.web.caller import CALLER_NAME, CALLER_ROLES, INTERNAL_TOKEN
from shared.web.errors import send_problem

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
# the gateway sets these itself, or they are the client's credentials for the gateway only
NOT_FORWARDED = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"expect",
    b"authorization",
    b"x-api-key",
    b"x-request-id",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    CALLER_NAME,
    CALLER_ROLES,
    INTERNAL_TOKEN,
}
# the gateway's server adds its own date, server, length and request id
NOT_RETURNED = HOP_BY_HOP | {b"content-length", b"date", b"server", b"x-request-id"}
# bodies up to this size are read whole (and their length set); larger or chunked ones are streamed
BUFFERED_BODY_MAX = 256 * 1024
STREAM_CHUNK_BYTES = 64 * 1024
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class RouteLabel:
    """Stands in for a Starlette route so request metrics label proxied calls by upstream."""

    path: str


@dataclass(slots=True)
class _Request:
    method: str
    tail: str
    headers: list[tuple[str, str]]
    body: bytes | None
    deadline: float  # event-loop time after which no attempt may run


class _BodyCutOff(Exception):
    """An upstream body broke off after its head was passed on: the server closes the client's connection."""


class _ClientGone(Exception):
    """The client disconnected while its body was being read: nothing to answer."""


class Gateway:
    """Everything the hot path needs; the client session is opened by the app's lifespan."""

    def __init__(
        self,
        routes: RouteTable,
        api_keys: ApiKeys,
        limiter: RateLimiter,
        retry_policy: RetryPolicy,
        *,
        max_body_bytes: int,
        connections_per_instance: int,
        internal_token: str | None = None,
        auth_failures: RateLimiter | None = None,
        body_timeout_s: float = 10.0,
        max_header_bytes: int = 16_384,
    ) -> None:
        self.routes = routes
        self.api_keys = api_keys
        self.limiter = limiter
        self.retry_policy = retry_policy
        self.max_body_bytes = max_body_bytes
        self.connections_per_instance = connections_per_instance
        self._internal_token = internal_token
        # traced, the gateway's own span is the parent the service continues: the client's trace headers stay here
        self._not_forwarded = NOT_FORWARDED | {b"traceparent", b"tracestate"} if tracing.tracer() else NOT_FORWARDED
        self.auth_failures = auth_failures
        self.body_timeout_s = body_timeout_s
        self.max_header_bytes = max_header_bytes
        self._session: aiohttp.ClientSession | None = None
        self._labels = {upstream.name: RouteLabel(upstream.route) for upstream in routes.upstreams}

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self.connections_per_instance,
            keepalive_timeout=15.0,  # below the services' 30 s, so idle connections are closed from this side
            use_dns_cache=False,  # a name with several replicas (compose --scale) spreads new connections
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # bodies pass through as the service encoded them
            skip_auto_headers=("Accept-Encoding", "User-Agent"),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    @property
    def is_open(self) -> bool:
        """Between ``open`` and ``close``: calls can be passed to the upstreams."""
        return self._session is not None and not self._session.closed

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def handle(self, upstream: Upstream, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self._labels[upstream.name]
        authorization = api_key = b""
        content_type = b""
        content_length = -1
        idempotency_key = False
        headers = scope["headers"]
        # headers that Connection names are the gateway's alone: removed before anything is decided on them
        # (an Idempotency-Key named there would make a POST look safe to retry without reaching the service)
        dropped_by_connection = {token.strip().lower() for name, value in headers if name == b"connection" for token in value.split(b",")}
        forwarded: list[tuple[str, str]] = []
        header_bytes = 0
        for name, value in headers:
            header_bytes += len(name) + len(value)
            if name in dropped_by_connection:
                continue
            if name == b"authorization":
                authorization = value
            elif name == b"x-api-key":
                api_key = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = int(value) if value.isdigit() else -1
            elif name == b"idempotency-key":
                idempotency_key = True
            if name not in self._not_forwarded:
                forwarded.append((name.decode("latin-1"), value.decode("latin-1")))

        if header_bytes > self.max_header_bytes:
            detail = f"the request's headers are over {self.max_header_bytes} bytes"
            await _reject(send, scope, 431, "headers_too_large", detail, [(b"connection", b"close")])
            return
        client = self.api_keys.client_for(presented_key(authorization, api_key))
        if client is None:
            address = scope["client"][0] if scope.get("client") else ""
            wait_s = self.auth_failures.acquire(address) if self.auth_failures is not None else 0.0
            if wait_s:
                retry_after = str(max(1, math.ceil(wait_s))).encode()
                detail = "too many calls without a valid API key from this address"
                await _reject(send, scope, 429, "too_many_failed_keys", detail, [(b"retry-after", retry_after)])
                return
            detail = "a valid API key is required (Authorization: Bearer <key> or X-API-Key)"
            await _reject(send, scope, 401, "unauthorized", detail, [(b"www-authenticate", b'Bearer realm="api"')])
            return
        wait_s = self.limiter.acquire(client.name)
        if wait_s:
            retry_after = str(max(1, math.ceil(wait_s))).encode()
            await _reject(
                send, scope, 429, "rate_limited", f"rate limit of client {client.name!r} exceeded", [(b"retry-after", retry_after)]
            )
            return
        method: str = scope["method"]
        refused = refusal(client, upstream.name, method, scope["path"])
        if refused is not None:
            await _reject(send, scope, 403, "forbidden", refused)
            return

        if content_length > self.max_body_bytes:
            await _reject(send, scope, 413, "payload_too_large", f"request body over {self.max_body_bytes} bytes")
            return
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = await _read_body(receive, self.max_body_bytes)
        except _ClientGone:
            return
        except TimeoutError:
            detail = f"the request body did not arrive within {self.body_timeout_s:g} s"
            await _reject(send, scope, 408, "request_timeout", detail, [(b"connection", b"close")])
            return
        if body is None:
            await _reject(send, scope, 413, "payload_too_large", f"request body over {self.max_body_bytes} bytes")
            return
        if body and method in METHODS_WITH_BODY and not _is_json(content_type):
            detail = f"this API takes application/json, not {content_type.decode('latin-1') or 'a body without Content-Type'}"
            await _reject(send, scope, 415, "unsupported_media_type", detail)
            return

        client_host = scope.get("client")
        forwarded.append(("X-Request-ID", current_correlation_id() or ""))
        if client_host:
            forwarded.append(("X-Forwarded-For", client_host[0]))
        forwarded.append(("X-Forwarded-Proto", scope.get("scheme", "http")))
        # who called, set here whatever the client sent: the services trust these from the gateway only
        forwarded.append(("X-Caller-Name", client.name))
        forwarded.append(("X-Caller-Roles", client.roles_header))
        if self._internal_token is not None:
            forwarded.append(("X-Internal-Token", self._internal_token))
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        tail = (raw_path + b"?" + query if query else raw_path).decode("latin-1")
        deadline = asyncio.get_running_loop().time() + self.retry_policy.deadline_s
        request = _Request(method, tail, forwarded, body or None, deadline)

        outcome = await call_with_retries(
            lambda: self._attempt(upstream, request),
            policy=self.retry_policy,
            method=method,
            has_idempotency_key=idempotency_key,
            on_retry=lambda failed: metrics.GATEWAY_RETRIES.labels(upstream.name, retry_reason(failed)).inc(),
        )
        await self._answer(send, scope, upstream, outcome, head=method == "HEAD")

    async def _attempt(self, upstream: Upstream, request: _Request) -> Outcome:
        picked = upstream.pick()
        if picked is None:
            return UpstreamFailure(Failure.BREAKER_OPEN, f"every {upstream.name} instance is failing; calls are paused")
        instance, permit = picked
        assert self._session is not None, "the gateway's lifespan has not opened the client session"
        connect_s, read_s = upstream.timeouts.connect_s, upstream.timeouts.read_s
        remaining_s = request.deadline - asyncio.get_running_loop().time()
        outcome: Outcome
        if remaining_s <= 0:
            instance.breaker.release(permit)
            return UpstreamFailure(Failure.TIMEOUT, f"the request's deadline passed before {upstream.name} answered")
        headers, span = request.headers, None
        traced = tracing.tracer()
        if traced is not None:
            span = traced.start_span(
                f"{request.method} {upstream.name}", kind=SpanKind.CLIENT, attributes={"server.address": instance.base_url}
            )
            carrier: dict[str, str] = {}
            tracing.inject(carrier, trace.set_span_in_context(span))
            headers = [*headers, *carrier.items()]
        try:
            response = await self._session.request(
                request.method,
                URL(instance.base_url + request.tail, encoded=True),
                headers=headers,
                data=request.body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=min(connect_s + read_s, remaining_s), sock_connect=connect_s, sock_read=read_s),
            )
            try:
                outcome = await _received(response, request.method)
            except BaseException:
                response.close()
                raise
        # the details name the service, never its address or the client library's words (they reach the caller)
        except aiohttp.ConnectionTimeoutError:
            outcome = UpstreamFailure(Failure.UNREACHABLE, f"the {upstream.name} service did not accept a connection in time")
        except aiohttp.ClientConnectorError:
            outcome = UpstreamFailure(Failure.UNREACHABLE, f"the {upstream.name} service is unreachable")
        except TimeoutError:
            outcome = UpstreamFailure(Failure.TIMEOUT, f"the {upstream.name} service did not answer within {read_s:g} s")
        except aiohttp.ClientError as exc:
            log.info("upstream connection lost", extra={"upstream": upstream.name, "instance": instance.base_url, "error": repr(exc)})
            outcome = UpstreamFailure(Failure.DROPPED, f"the {upstream.name} service closed the connection")
        except BaseException as error:
            instance.breaker.release(permit)
            if span is not None:
                tracing.failed(span, error)
                span.end()
            raise
        success = isinstance(outcome, UpstreamResponse) and outcome.status < 500
        if span is not None:
            _end_span(span, outcome)
        instance.breaker.record(permit, success=success)
        label = str(outcome.status) if isinstance(outcome, UpstreamResponse) else outcome.kind.value
        metrics.GATEWAY_UPSTREAM_CALLS.labels(upstream.name, instance.base_url, label).inc()
        if not success:
            log.warning("upstream call failed", extra={"upstream": upstream.name, "instance": instance.base_url, "outcome": label})
        return outcome

    async def _answer(self, send: Send, scope: Scope, upstream: Upstream, outcome: Outcome, *, head: bool = False) -> None:
        if isinstance(outcome, UpstreamResponse):
            # a HEAD answer has no body but tells the length a GET would have: keep the service's
            dropped = NOT_RETURNED - {b"content-length"} if head or outcome.stream is not None else NOT_RETURNED
            headers = [(name.lower(), value) for name, value in outcome.headers if name.lower() not in dropped]
            if outcome.stream is not None:
                await _stream(send, outcome.status, headers, outcome.stream, upstream.name)
                return
            if not head:
                headers.append((b"content-length", str(len(outcome.body)).encode()))
            await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
            await send({"type": "http.response.body", "body": outcome.body})
            return
        match outcome.kind:
            case Failure.BREAKER_OPEN:
                retry_after = str(upstream.retry_after_s()).encode()
                await _reject(send, scope, 503, "circuit_open", outcome.detail, [(b"retry-after", retry_after)])
            case Failure.TIMEOUT:
                await _reject(send, scope, 504, "upstream_timeout", outcome.detail)
            case Failure.UNREACHABLE | Failure.DROPPED:
                await _reject(send, scope, 502, "upstream_unavailable", outcome.detail)


class ProxyMiddleware:
    """Sends requests under an upstream's prefix to the gateway; everything else to the app (health, docs)."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            upstream = self.gateway.routes.match(scope["path"])
            if upstream is not None:
                await self.gateway.handle(upstream, scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _received(response: aiohttp.ClientResponse, method: str) -> UpstreamResponse:
    """A small body is read whole; a large or chunked one is left to stream (never a status worth retrying)."""
    length = response.content_length
    if method == "HEAD" or response.status in RETRYABLE_STATUSES or (length is not None and length <= BUFFERED_BODY_MAX):
        return UpstreamResponse(response.status, list(response.raw_headers), await response.read())
    return UpstreamResponse(response.status, list(response.raw_headers), b"", stream=response)


async def _stream(send: Send, status: int, headers: list[tuple[bytes, bytes]], response: aiohttp.ClientResponse, service: str) -> None:
    """Passes the body on chunk by chunk; the server's flow control holds the upstream back for a slow client."""
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        async for chunk in response.content.iter_chunked(STREAM_CHUNK_BYTES):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except (aiohttp.ClientError, TimeoutError) as exc:
        # the head is sent: the client learns of the cut from the connection closing before the body ends
        log.warning("upstream body cut off", extra={"upstream": service, "error": repr(exc)})
        raise _BodyCutOff(service) from exc
    finally:
        response.release()


def _is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or media_type.endswith(b"+json")


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it grows past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _reject(send: Send, scope: Scope, status: int, code: str, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    metrics.GATEWAY_REJECTED.labels(code).inc()
    await send_problem(send, status, code, detail, scope["path"], headers)


def _end_span(span: Span, outcome: Outcome) -> None:
    if isinstance(outcome, UpstreamResponse):
        span.set_attribute("http.response.status_code", outcome.status)
        if outcome.status >= 500:
            span.set_status(StatusCode.ERROR)
    else:
        span.set_status(StatusCode.ERROR, outcome.detail)
    span.end()
