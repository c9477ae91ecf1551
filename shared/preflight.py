"""Stop at once, with a hint, when PostgreSQL or RabbitMQ is not reachable (``make run``)."""

from __future__ import annotations

import asyncio
import sys

import aio_pika
import asyncpg
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url

from shared.db import asyncpg_dsn
from shared.settings import DEFAULT_BROKER_URL, BaseServiceSettings, load_settings

HINTS = {
    "PostgreSQL": "start it (Debian: pg_ctlcluster 15 main start) or point *_DATABASE_URL in .env at a running server",
    "RabbitMQ": "start it (rabbitmq-server -detached) or point BROKER_URL in .env at a running broker",
}


def service_settings(prefix: str) -> BaseServiceSettings:
    """The database and broker settings of the service whose variables carry ``prefix`` (``ORDERS_``)."""
    named = type(f"{prefix.strip('_').title()}Settings", (BaseServiceSettings,), {"model_config": SettingsConfigDict(env_prefix=prefix)})
    return load_settings(named)


async def _check(services: list[BaseServiceSettings]) -> list[str]:
    problems = []
    servers = {make_url(s.database_url.get_secret_value()).set(database="postgres").render_as_string(hide_password=False) for s in services}
    for server in sorted(servers):
        admin = make_url(server)
        try:
            connection = await asyncpg.connect(asyncpg_dsn(server), timeout=3)
            await connection.close()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            problems.append(f"PostgreSQL at {admin.render_as_string(hide_password=True)} is not reachable ({exc}); {HINTS['PostgreSQL']}")
    broker = services[0].broker_url.get_secret_value() or DEFAULT_BROKER_URL
    try:
        amqp = await aio_pika.connect(broker, timeout=3)
        await amqp.close()
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
        shown = make_url(broker.replace("amqp", "postgresql", 1)).render_as_string(hide_password=True).replace("postgresql", "amqp", 1)
        problems.append(f"RabbitMQ at {shown} is not reachable ({exc!r}); {HINTS['RabbitMQ']}")
    return problems


def main() -> None:
    """``python -m shared.preflight ORDERS_ REPORTS_ ...``: each service's own database URL (unprefixed without arguments)."""
    prefixes = sys.argv[1:] or [""]
    problems = asyncio.run(_check([service_settings(prefix) for prefix in prefixes]))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("PostgreSQL and RabbitMQ are reachable")


if __name__ == "__main__":
    main()
