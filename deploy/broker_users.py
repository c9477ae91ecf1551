"""Each service's own RabbitMQ user: permissions on its own queues, topic permissions for its own routing keys.

What a service may publish comes from ``shared.contracts.owners``; what it consumes, from
the services' subscriptions (``SUBSCRIBES``). The users are written through the management
API, idempotently, by ``python -m deploy.broker_users`` (compose runs it once the broker is
up and before any service starts), which then declares the events exchange and every
consumer queue with the administrator account over AMQP (``RABBITMQ_AMQP_PORT``, default
5672, on the management URL's host; ``QUEUE_TYPE``), so an event published before its
consumers first attach is routed, not returned. No service then uses the administrator account:

- *configure* and *read*: the events exchange, and its own queues and ``<service>.requeue``;
- *write*: the events exchange (topic permission: only its own routing keys), and its own
  queues and requeue exchange (binding and moving messages to its retry and DLQ queues);
  never the default exchange, which reaches every queue by name.

Variables: ``RABBITMQ_MANAGEMENT_URL`` (default ``http://127.0.0.1:15672``),
``RABBITMQ_ADMIN_USER`` / ``RABBITMQ_ADMIN_PASSWORD``, ``RABBITMQ_VHOST`` (default ``/``),
``EVENTS_EXCHANGE`` (default ``events``) and one ``BROKER_<SERVICE>_PASSWORD`` per service.
``make run`` makes users of its own for each run (``users_for_run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from shared.contracts.owners import routing_keys_of
from shared.messaging.topology import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    REPORT_BACKFILL_REQUESTED,
    REPORT_CANCEL_REQUESTED,
    REPORT_FAILED,
    REPORT_GENERATED,
    REPORT_REQUESTED,
    ConsumerQueue,
    QueueType,
    declare_topology,
    requeue_exchange_name,
)
from shared.settings import weak_secret

# broker user (the service's name in queue names) -> the producer name its events carry
SERVICES: Mapping[str, str] = {
    "orders": "orders_service",
    "reports": "reports_service",
    "scheduler": "scheduler_service",
    "notifications": "notifications_service",
}
SUBSCRIBES: Mapping[str, tuple[str, ...]] = {
    "orders": (),
    "reports": (ORDER_CREATED, ORDER_CANCELLED, REPORT_REQUESTED, REPORT_BACKFILL_REQUESTED, REPORT_CANCEL_REQUESTED),
    "scheduler": (REPORT_GENERATED, REPORT_FAILED),
    "notifications": (ORDER_CREATED, ORDER_CANCELLED, REPORT_GENERATED, REPORT_FAILED),
}
NOTHING = "^$"


@dataclass(frozen=True, slots=True)
class BrokerUser:
    name: str
    configure: str
    write: str
    read: str
    topic_write: str  # routing keys it may publish on the events exchange


def _any_of(names: list[str]) -> str:
    return "^(" + "|".join(re.escape(name) for name in names) + ")$" if names else NOTHING


def service_users(exchange: str) -> list[BrokerUser]:
    users = []
    for service, producer in SERVICES.items():
        resources = f"^{re.escape(exchange)}$"
        if SUBSCRIBES[service]:  # its queues <service>.<routing key>, .retry.<delay> and .dlq, and <service>.requeue
            resources = f"^({re.escape(exchange)}|{re.escape(requeue_exchange_name(service)).removesuffix('requeue')}.+)$"
        users.append(
            BrokerUser(
                name=service,
                configure=resources,
                write=resources,
                read=resources,
                topic_write=_any_of(routing_keys_of(producer)),
            )
        )
    return users


def apply(client: httpx.Client, vhost: str, exchange: str, passwords: Mapping[str, str], *, prefix: str = "") -> list[BrokerUser]:
    """Create or update every service's user (named ``prefix + service``) and its permissions in ``vhost``."""
    applied = []
    quoted_vhost = quote(vhost, safe="")
    for user in service_users(exchange):
        name = prefix + user.name
        quoted = quote(name, safe="")
        client.put(f"/api/users/{quoted}", json={"password": passwords[user.name], "tags": ""}).raise_for_status()
        client.put(
            f"/api/permissions/{quoted_vhost}/{quoted}", json={"configure": user.configure, "write": user.write, "read": user.read}
        ).raise_for_status()
        client.put(
            f"/api/topic-permissions/{quoted_vhost}/{quoted}", json={"exchange": exchange, "write": user.topic_write, "read": ".*"}
        ).raise_for_status()
        applied.append(user)
    return applied


def apply_monitor(client: httpx.Client, vhost: str, name: str, password: str) -> None:
    """A user that reads the management API's figures (tag ``monitoring``) and may touch no resource of
    ``vhost``: the gateway console's view of the queues."""
    quoted = quote(name, safe="")
    client.put(f"/api/users/{quoted}", json={"password": password, "tags": "monitoring"}).raise_for_status()
    client.put(
        f"/api/permissions/{quote(vhost, safe='')}/{quoted}", json={"configure": NOTHING, "write": NOTHING, "read": NOTHING}
    ).raise_for_status()


def consumer_queues() -> list[ConsumerQueue]:
    """Every queue a service consumes from, as its consumer declares it when it attaches."""
    return [ConsumerQueue(service, routing_key) for service, routing_keys in SUBSCRIBES.items() for routing_key in routing_keys]


async def declare_queues(broker_url: str, exchange: str, queue_type: QueueType) -> None:
    """The exchange and every consumer queue, declared before any service starts: an event published before
    its consumers first attach is routed to their queues, not returned to the relay as unroutable."""
    await declare_topology(broker_url, exchange, consumer_queues(), queue_type)


def _queue_type(value: str) -> QueueType:
    if value not in ("quorum", "classic"):
        raise SystemExit(f"broker users: QUEUE_TYPE must be quorum or classic, not {value!r}")
    return "quorum" if value == "quorum" else "classic"


def main(argv: list[str] | None = None) -> None:
    """``python -m deploy.broker_users`` makes the users, then declares the queues; ``... queues`` only
    declares the queues, where the users come from elsewhere (the Messaging Topology Operator's
    ``User`` and ``Permission`` resources under Kubernetes, ``deploy/k8s``)."""
    command = (sys.argv[1:] if argv is None else argv) or ["users"]
    if command not in (["users"], ["queues"]):
        raise SystemExit(f"usage: python -m deploy.broker_users [users|queues], not {' '.join(command)!r}")
    environ = os.environ
    if command == ["queues"]:
        _declare_only(environ)
        return
    names = [f"BROKER_{service.upper()}_PASSWORD" for service in SERVICES] + ["RABBITMQ_ADMIN_PASSWORD"]
    missing = [name for name in [*names, "RABBITMQ_ADMIN_USER"] if not environ.get(name)]
    if missing:
        raise SystemExit(f"broker users: set {', '.join(missing)}")
    weak = [f"{name} ({reason})" for name in names if (reason := weak_secret(environ[name]))]
    if weak:
        raise SystemExit(f"broker users: choose real passwords for {', '.join(weak)}")
    passwords = {service: environ[f"BROKER_{service.upper()}_PASSWORD"] for service in SERVICES}
    auth = (environ["RABBITMQ_ADMIN_USER"], environ["RABBITMQ_ADMIN_PASSWORD"])
    url = environ.get("RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
    vhost, exchange = environ.get("RABBITMQ_VHOST", "/"), environ.get("EVENTS_EXCHANGE", "events")
    with httpx.Client(base_url=url, auth=auth, timeout=10) as client:
        for user in apply(client, vhost, exchange, passwords):
            print(f"broker user {user.name}: topic write {user.topic_write}, queues {user.read}", file=sys.stderr)
        if monitor_password := environ.get("BROKER_CONSOLE_PASSWORD"):
            if reason := weak_secret(monitor_password):
                raise SystemExit(f"broker users: choose a real password for BROKER_CONSOLE_PASSWORD ({reason})")
            apply_monitor(client, vhost, "console", monitor_password)
            print("broker user console: monitoring, no resources", file=sys.stderr)
    _declare(environ, auth, url, vhost, exchange)


def _declare_only(environ: Mapping[str, str]) -> None:
    missing = [name for name in ("RABBITMQ_ADMIN_USER", "RABBITMQ_ADMIN_PASSWORD") if not environ.get(name)]
    if missing:
        raise SystemExit(f"broker users: set {', '.join(missing)}")
    auth = (environ["RABBITMQ_ADMIN_USER"], environ["RABBITMQ_ADMIN_PASSWORD"])
    url = environ.get("RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
    _declare(environ, auth, url, environ.get("RABBITMQ_VHOST", "/"), environ.get("EVENTS_EXCHANGE", "events"))


def _declare(environ: Mapping[str, str], auth: tuple[str, str], url: str, vhost: str, exchange: str) -> None:
    credentials = f"{quote(auth[0], safe='')}:{quote(auth[1], safe='')}"
    address = f"{urlsplit(url).hostname or '127.0.0.1'}:{environ.get('RABBITMQ_AMQP_PORT', '5672')}"
    amqp_url = urlunsplit(("amqp", f"{credentials}@{address}", "/" + quote(vhost, safe=""), "", ""))
    asyncio.run(declare_queues(amqp_url, exchange, _queue_type(environ.get("QUEUE_TYPE", "quorum"))))
    print(f"declared {len(consumer_queues())} consumer queues on {exchange!r}", file=sys.stderr)


if __name__ == "__main__":
    main()


@contextmanager
def users_for_run(broker_url: str, exchange: str, management_url: str | None = None) -> Iterator[tuple[dict[str, str], str]]:
    """Each service's own user for one ``make run``, deleted when it ends: ``({service: amqp url}, what happened)``.

    The users are made with the credentials of ``broker_url`` (the development account) and
    carry a prefix of the run's own, with random passwords. Without the management API (or
    with an account that may not manage users) the services share ``broker_url``, as before,
    and the second value says why.
    """
    parts = urlsplit(broker_url)
    vhost = unquote(parts.path.removeprefix("/")) or "/"
    host = parts.hostname or "127.0.0.1"
    url = management_url or f"http://{host}:15672"
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    prefix, password = f"run-{secrets.token_hex(3)}-", secrets.token_urlsafe(18)
    try:
        with httpx.Client(base_url=url, auth=auth, timeout=5) as client:
            apply(client, vhost, exchange, dict.fromkeys(SERVICES, password), prefix=prefix)
    except httpx.HTTPError as exc:
        yield {}, f"shared by every service ({type(exc).__name__} from the management API at {url})"
        return
    address = parts.netloc.rsplit("@", 1)[-1]
    try:
        yield (
            {
                service: urlunsplit((parts.scheme, f"{quote(prefix + service)}:{password}@{address}", parts.path, parts.query, ""))
                for service in SERVICES
            },
            f"{prefix}<service> for each service, deleted when the suite stops",
        )
    finally:
        with contextlib.suppress(httpx.HTTPError), httpx.Client(base_url=url, auth=auth, timeout=5) as client:
            for service in SERVICES:
                client.delete(f"/api/users/{quote(prefix + service, safe='')}")
