"""A service's outbox relay as a process of its own: ``python -m <service>.main relay``.

With ``OUTBOX_RELAY=external`` the service's HTTP process only writes outbox rows, and
this process publishes them. Sharing a process, the relay and the request handlers take
turns on one interpreter lock, so under a saturating ``POST /orders`` load each slows the
other. Apart, the relay runs on the machine's other core. It is the same ``ServiceRuntime`` relay (its own loop in a
thread), with the same health checks and metrics, served on the service's port + 1000;
several relay processes may run, since each batch is locked with ``SKIP LOCKED``.
"""

from __future__ import annotations

from fastapi import FastAPI

from shared.messaging.outbox import Outbox
from shared.runtime import ServiceRuntime
from shared.service import service_app
from shared.settings import BaseServiceSettings


def build_relay_app(settings: BaseServiceSettings, outbox: Outbox) -> FastAPI:
    return service_app(
        ServiceRuntime(settings, outbox=outbox, run_relay=True),
        title=f"{settings.service_name} outbox relay",
        service_name=f"{settings.service_name}-relay",
        behind_gateway=False,
        routers=[],
        description="Publishes the service's outbox; serves only health and metrics.",
    )
