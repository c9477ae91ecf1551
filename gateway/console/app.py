"""The operator console at ``/console``: health, schedules, tasks, queues and dead letters, reports.

Server-rendered (Jinja2) with plain forms, so reading needs no JavaScript. Signing in takes an
operator's key once; the session is a signed, HttpOnly, SameSite=Strict cookie naming the
client, and each call the console makes goes through the gateway with that client's key
(``gateway.console.api``). Other roles are refused at the door.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp

from gateway.auth import ApiKeys, ClientKey
from gateway.console.api import Management, SuiteApi
from gateway.console.charts import day_bars
from gateway.settings import GatewaySettings

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
COOKIE = "console_session"
SERVICES_WITH_DEAD_LETTERS = ("reports", "notifications", "scheduler")
PAGES = [("health", "/console/"), *((name, f"/console/{name}") for name in ("schedules", "tasks", "queues", "reports"))]


class _SignedOut(Exception):
    """No session, or one whose client is no longer an operator: back to the sign-in form."""


def build_console(settings: GatewaySettings, gateway_app: ASGIApp, keys: ApiKeys) -> FastAPI:
    """The console app, to mount at ``/console`` of ``gateway_app`` (whose API it calls); ``keys``: the gateway's own."""
    assert settings.console_secret is not None, "the console needs GATEWAY_CONSOLE_SECRET"
    operators = {entry.client.name: entry for entry in settings.client_keys() if "operator" in entry.client.roles}
    management = Management(
        settings.rabbitmq_management_url,
        settings.rabbitmq_management_user,
        settings.rabbitmq_management_password.get_secret_value(),
        settings.rabbitmq_vhost,
        settings.health_timeout_s,
    )
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.add_middleware(
        SessionMiddleware,
        secret_key=settings.console_secret.get_secret_value(),
        session_cookie=COOKIE,
        max_age=int(settings.console_session_s),
        path="/console",
        same_site="strict",
        https_only=settings.console_cookie_secure,
    )

    def operator(request: Request) -> ClientKey:
        name = request.session.get("client")
        issued = request.session.get("at", 0)
        entry = operators.get(name) if isinstance(name, str) else None
        if entry is None or time.time() - float(issued) > settings.console_session_s:
            request.session.clear()
            raise _SignedOut
        return entry

    def api(entry: ClientKey) -> SuiteApi:
        return SuiteApi(gateway_app, entry.key, settings.request_deadline_s + 5)

    def page(request: Request, template: str, entry: ClientKey, status_code: int = 200, **context: Any) -> HTMLResponse:
        flashes = request.session.pop("flash", [])
        values = {"operator": entry.client.name, "pages": PAGES, "flashes": flashes, **context}
        return TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)

    def flash(request: Request, text: str, *, ok: bool) -> None:
        request.session["flash"] = [*request.session.get("flash", []), {"text": text, "ok": ok}]

    def back(target: str) -> RedirectResponse:
        return RedirectResponse(target, status_code=303)

    @console.exception_handler(_SignedOut)
    async def signed_out(request: Request, _: _SignedOut) -> Response:
        return back("/console/login")

    @console.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, "login.html", {"error": None})

    @console.post("/login", response_class=HTMLResponse)
    async def login(request: Request, key: Annotated[str, Form(max_length=512)] = "") -> Response:
        client = keys.client_for(key.strip().encode())
        if client is None:
            return TEMPLATES.TemplateResponse(request, "login.html", {"error": "That key is not one of this gateway's."}, status_code=401)
        if "operator" not in client.roles:
            error = f"The console is for operators; {client.name!r} is not one."
            return TEMPLATES.TemplateResponse(request, "login.html", {"error": error}, status_code=403)
        request.session.clear()
        request.session.update({"client": client.name, "at": time.time()})
        return back("/console/")

    @console.post("/logout")
    async def logout(request: Request) -> Response:
        request.session.clear()
        return back("/console/login")

    @console.get("/", response_class=HTMLResponse)
    async def health(request: Request) -> HTMLResponse:
        entry = operator(request)
        async with api(entry) as suite:
            answer = await suite.get("/health")
        return page(request, "health.html", entry, title="Health", health=answer.body if isinstance(answer.body, dict) else {})

    @console.get("/schedules", response_class=HTMLResponse)
    async def schedules(request: Request) -> HTMLResponse:
        entry = operator(request)
        async with api(entry) as suite:
            listed = await suite.get("/schedules")
            found = listed.body if listed.ok and isinstance(listed.body, list) else []
            runs, previews = await asyncio.gather(
                asyncio.gather(*(suite.get(f"/schedules/{item['name']}/runs", count=5) for item in found)),
                asyncio.gather(*(suite.get(f"/schedules/{item['name']}/preview", count=3) for item in found)),
            )
        rows = [
            {"schedule": item, "runs": run.body.get("items", []) if run.ok else [], "preview": preview.body if preview.ok else []}
            for item, run, preview in zip(found, runs, previews, strict=True)
        ]
        error = None if listed.ok else listed.problem
        return page(request, "schedules.html", entry, title="Schedules", rows=rows, error=error)

    @console.post("/schedules/{name}/trigger")
    async def trigger(request: Request, name: str) -> Response:
        entry = operator(request)
        async with api(entry) as suite:
            answer = await suite.call("POST", f"/schedules/{name}/trigger")
        if answer.ok:
            flash(request, f"{name} fired: task {answer.body.get('task_id')}", ok=True)
        else:
            flash(request, f"{name} did not fire: {answer.problem}", ok=False)
        return back("/console/schedules")

    @console.post("/schedules/{name}/enabled")
    async def enable(request: Request, name: str, enabled: Annotated[bool, Form()]) -> Response:
        entry = operator(request)
        async with api(entry) as suite:
            answer = await suite.call("PATCH", f"/schedules/{name}", json={"enabled": enabled})
        verb = "enabled" if enabled else "disabled"
        flash(request, f"{name} {verb}" if answer.ok else f"{name} not {verb}: {answer.problem}", ok=answer.ok)
        return back("/console/schedules")

    @console.get("/tasks", response_class=HTMLResponse)
    async def tasks(
        request: Request, status: str = "", requested_by: str = "", report_date: str = "", page_number: int = 1
    ) -> HTMLResponse:
        entry = operator(request)
        filters = {"status": status, "requested_by": requested_by, "report_date": report_date}
        async with api(entry) as suite:
            answer = await suite.get("/report/tasks", page=page_number, count=50, **filters)
        found = answer.body if answer.ok and isinstance(answer.body, list) else []
        total = answer.headers.get("x-total-count") if answer.ok else None
        error = None if answer.ok else answer.problem
        return page(
            request, "tasks.html", entry, title="Tasks", tasks=found, filters=filters, total=total, page_number=page_number, error=error
        )

    @console.get("/queues", response_class=HTMLResponse)
    async def queues(request: Request) -> HTMLResponse:
        entry = operator(request)
        async with api(entry) as suite:
            parked = await asyncio.gather(*(suite.get(f"/admin/{service}/dead-letters/queues") for service in SERVICES_WITH_DEAD_LETTERS))
        broker = await management.queues()
        dead_letters = {
            service: answer.body if answer.ok else answer.problem
            for service, answer in zip(SERVICES_WITH_DEAD_LETTERS, parked, strict=True)
        }
        return page(request, "queues.html", entry, title="Queues", broker=broker, dead_letters=dead_letters)

    @console.get("/queues/{service}/{queue}", response_class=HTMLResponse)
    async def dead_letters(request: Request, service: str, queue: str, page_number: int = 1) -> HTMLResponse:
        entry = operator(request)
        async with api(entry) as suite:
            answer = await suite.get(f"/admin/{service}/dead-letters", queue=queue, page=page_number, count=50)
        status_code = 200 if answer.ok else answer.status
        listed = answer.body if answer.ok else None
        context = {"service": service, "queue": queue, "listed": listed, "error": None if answer.ok else answer.problem}
        return page(request, "dead_letters.html", entry, status_code=status_code, title=f"Dead letters of {queue}", **context)

    @console.post("/queues/{service}/{queue}/replay")
    async def replay(request: Request, service: str, queue: str) -> Response:
        entry = operator(request)
        ids = (await request.form()).getlist("ids")
        selection: dict[str, Any] = {"queue": queue, "ids": ids} if ids else {"queue": queue, "all": True}
        async with api(entry) as suite:
            answer = await suite.call("POST", f"/admin/{service}/dead-letters/replay", json=selection)
        moved = f"{answer.body.get('replayed')} messages back in {queue}" if answer.ok else f"nothing replayed: {answer.problem}"
        flash(request, moved, ok=answer.ok)
        return back(f"/console/queues/{service}/{queue}")

    @console.post("/queues/{service}/{queue}/purge", response_class=HTMLResponse)
    async def purge(request: Request, service: str, queue: str) -> Response:
        """Destroys messages: the first post asks, the second (``confirm=yes``) drops them."""
        entry = operator(request)
        form = await request.form()
        ids = [str(value) for value in form.getlist("ids")]
        if form.get("confirm") != "yes":
            return page(request, "confirm_purge.html", entry, title="Purge dead letters?", service=service, queue=queue, ids=ids)
        selection: dict[str, Any] = {"queue": queue, "ids": ids} if ids else {"queue": queue, "all": True}
        async with api(entry) as suite:
            answer = await suite.call("POST", f"/admin/{service}/dead-letters/purge", json=selection)
        flash(request, f"{answer.body.get('purged')} messages dropped" if answer.ok else f"nothing purged: {answer.problem}", ok=answer.ok)
        return back(f"/console/queues/{service}/{queue}")

    @console.get("/reports", response_class=HTMLResponse)
    async def reports(request: Request, first: str = "", last: str = "") -> HTMLResponse:
        entry = operator(request)
        today = datetime.now(UTC).date()
        last_day = _day(last) or today
        first_day = _day(first) or last_day - timedelta(days=13)
        span = {"from": first_day.isoformat(), "to": last_day.isoformat()}
        async with api(entry) as suite:
            days, reconciled = await asyncio.gather(suite.get("/report/days", **span), suite.get("/report/reconciliation", **span))
        totals = days.body if days.ok and isinstance(days.body, list) else []
        chart = day_bars(first_day, last_day, {date.fromisoformat(day["report_at"]): (day["orders"], day["products"]) for day in totals})
        errors = [answer.problem for answer in (days, reconciled) if not answer.ok]
        rows = reconciled.body if reconciled.ok and isinstance(reconciled.body, list) else []
        return page(request, "reports.html", entry, title="Reports", chart=chart, reconciliation=rows, span=span, errors=errors)

    return console


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
