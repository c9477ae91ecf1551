"""Where the test PostgreSQL and RabbitMQ are, and how to stop and start the broker.

``TEST_POSTGRES_URL`` (a server URL, any database), ``TEST_BROKER_URL`` and
``TEST_RABBITMQ_MANAGEMENT_URL`` point at running servers (CI sets them to the local
ones). When they are not set, throwaway containers are started with testcontainers if a
Docker engine answers; otherwise the local default servers are used when they are up.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from sqlalchemy.engine import make_url


@dataclass
class Infrastructure:
    postgres_url: str  # postgresql+asyncpg://user@host:port/postgres
    broker_url: str  # amqp://user:pass@host:port/  (default vhost)
    management_url: str  # http://host:15672
    management_auth: tuple[str, str]
    rabbitmqctl: list[str] | None = None
    container: Any = None

    def database_url(self, name: str) -> str:
        return make_url(self.postgres_url).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)

    def vhost_url(self, vhost: str) -> str:
        parts = urlsplit(self.broker_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))

    # broker administration -----------------------------------------------------

    def create_vhost(self, vhost: str) -> None:
        user = self.management_auth[0]
        with httpx.Client(base_url=self.management_url, auth=self.management_auth, timeout=10) as client:
            try:
                client.put(f"/api/vhosts/{quote(vhost, safe='')}").raise_for_status()
            except httpx.ConnectError as exc:
                raise RuntimeError(
                    f"RabbitMQ's management API does not answer at {self.management_url} (each test run and benchmark "
                    "gets a vhost of its own through it): `rabbitmq-plugins enable rabbitmq_management`, "
                    "or point TEST_RABBITMQ_MANAGEMENT_URL at it"
                ) from exc
            client.put(
                f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}", json={"configure": ".*", "write": ".*", "read": ".*"}
            ).raise_for_status()

    def delete_vhost(self, vhost: str) -> None:
        with httpx.Client(base_url=self.management_url, auth=self.management_auth, timeout=30) as client:
            response = client.delete(f"/api/vhosts/{quote(vhost, safe='')}")
            if response.status_code not in (204, 404):
                response.raise_for_status()

    def management(self) -> httpx.Client:
        return httpx.Client(base_url=self.management_url, auth=self.management_auth, timeout=10)

    def _ctl(self, *args: str) -> None:
        if self.rabbitmqctl is not None:
            subprocess.run([*self.rabbitmqctl, *args], check=True, capture_output=True, timeout=120)
        elif self.container is not None:
            code, output = self.container.exec(["rabbitmqctl", *args])
            if code != 0:
                raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {output!r}")
        else:
            raise RuntimeError("no way to control the broker: set TEST_RABBITMQCTL")

    def stop_broker(self) -> None:
        self._ctl("stop_app")

    def start_broker(self) -> None:
        self._ctl("start_app")
        self._ctl("await_startup")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with self.management() as client:
                    if client.get("/api/overview").status_code == 200:
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError("broker did not come back within 60 s")


LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_BROKER = "amqp://guest:guest@127.0.0.1:5672/"


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - no engine, no socket, no permission: all mean "no Docker"
        return False


def reachable(host: str, port: int) -> bool:
    """Something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def provide_infrastructure() -> Iterator[Infrastructure]:
    postgres = os.environ.get("TEST_POSTGRES_URL")
    broker = os.environ.get("TEST_BROKER_URL")
    if (not postgres or not broker) and not _docker_available():
        if reachable("127.0.0.1", 5432) and reachable("127.0.0.1", 5672):
            postgres, broker = postgres or LOCAL_POSTGRES, broker or LOCAL_BROKER
        else:
            raise RuntimeError(
                "tests need PostgreSQL and RabbitMQ: set TEST_POSTGRES_URL and TEST_BROKER_URL, "
                "run them locally on their default ports, or make a Docker engine available for testcontainers"
            )
    with ExitStack() as stack:
        if not postgres:
            from testcontainers.postgres import PostgresContainer

            container = stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
            postgres = container.get_connection_url()
        infrastructure_container = None
        if broker:
            management = os.environ.get("TEST_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
            parts = urlsplit(broker)
            auth = (parts.username or "guest", parts.password or "guest")
            ctl_env = os.environ.get("TEST_RABBITMQCTL", "rabbitmqctl")
            ctl = shlex.split(ctl_env) if ctl_env else None
        else:
            from testcontainers.rabbitmq import RabbitMqContainer

            rabbit = stack.enter_context(RabbitMqContainer("rabbitmq:3.13-management").with_exposed_ports(5672, 15672))
            host = rabbit.get_container_host_ip()
            broker = f"amqp://guest:guest@{host}:{rabbit.get_exposed_port(5672)}/"
            management = f"http://{host}:{rabbit.get_exposed_port(15672)}"
            auth, ctl, infrastructure_container = ("guest", "guest"), None, rabbit
        url = make_url(postgres).set(drivername="postgresql+asyncpg", database="postgres")
        yield Infrastructure(
            postgres_url=url.render_as_string(hide_password=False),
            broker_url=broker,
            management_url=management,
            management_auth=auth,
            rabbitmqctl=ctl,
            container=infrastructure_container,
        )
