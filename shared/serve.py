"""Command line of every service: ``python -m <service>.main [serve|migrate|relay|dead-letters]``."""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Table

from shared import tracing
from shared.db import migrate
from shared.dead_letters_cli import DEAD_LETTER_ACTIONS, run_dead_letters
from shared.logging import configure_logging
from shared.messaging.outbox import Outbox
from shared.relay_app import build_relay_app
from shared.settings import BaseServiceSettings, ProcessSettings, load_settings

SettingsT = TypeVar("SettingsT", bound=ProcessSettings)


def tune_garbage_collector() -> None:
    """Fewer, cheaper collections: a request allocates many short-lived objects, and the
    default gen-0 threshold (700) runs the collector every few requests; objects alive at
    start-up (modules, app, settings) are frozen out of every future scan."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def serve(
    build_app: Callable[[SettingsT], FastAPI],
    settings_class: type[SettingsT],
    migrations_dir: Path | None,
    *,
    outbox_table: Table | None = None,
) -> None:
    """``serve`` (the default), ``migrate``, or ``relay``: the service's outbox relay alone (``shared.relay_app``)."""
    parser = argparse.ArgumentParser(description=f"{settings_class.__name__.removesuffix('Settings')} service")
    commands = ["serve", "migrate", "relay"] if outbox_table is not None else ["serve", "migrate"]
    parser.add_argument("command", nargs="?", default="serve", choices=[*commands, "dead-letters"])
    parser.add_argument("action", nargs="?", choices=DEAD_LETTER_ACTIONS, help="dead-letters: what to do with the parked messages")
    parser.add_argument("--queue", help="dead-letters: the consumer queue, e.g. reports.order.created (all queues' counts without it)")
    parser.add_argument("--ids", nargs="+", help="dead-letters replay|purge: these message ids")
    parser.add_argument("--all", action="store_true", help="dead-letters replay|purge: every parked message of --queue")
    parser.add_argument("--page", type=int, default=1, help="dead-letters list: the page")
    parser.add_argument("--count", type=int, default=50, help="dead-letters list: messages per page")
    parser.add_argument("--port", type=int, help="overrides the configured port (relay: the service's port + 1000)")
    parser.add_argument("--migrate", action="store_true", help="apply migrations before serving")
    args = parser.parse_args()
    settings = load_settings(settings_class)
    # only services (BaseServiceSettings) have an outbox, so only they offer the command
    relay = settings if args.command == "relay" and isinstance(settings, BaseServiceSettings) else None
    if args.port:
        settings.port = args.port
    elif relay is not None:
        settings.port = relay.relay_port
    process_name = f"{settings.service_name}-relay" if relay else settings.service_name
    configure_logging(process_name, settings.log_level, json=settings.log_json)
    tracing.configure(process_name)
    if args.command == "dead-letters":
        runtime = build_app(settings).state.runtime
        if runtime.dead_letters is None:
            parser.exit(2, f"{settings.service_name} consumes no queue: it has no dead letters\n")
        parser.exit(asyncio.run(run_dead_letters(runtime.dead_letters, args, parser)))
    if args.command == "migrate" or args.migrate:
        database_url = getattr(settings, "database_url", None)
        if migrations_dir is not None and database_url is not None:
            asyncio.run(migrate(migrations_dir, database_url.get_secret_value()))
        if args.command == "migrate":
            return
    app = build_relay_app(relay, Outbox(outbox_table)) if relay is not None and outbox_table is not None else build_app(settings)
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        timeout_keep_alive=settings.http_keep_alive_s,
        limit_concurrency=settings.http_limit_concurrency,
    )
