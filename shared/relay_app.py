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
