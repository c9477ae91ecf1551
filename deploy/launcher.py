"""The suite as local processes (``make run``): the Procfile at the chosen scale, one prefixed, coloured log stream.

Every service line of the Procfile runs as many times as ``--scale`` says (default one);
instance ``i`` listens on the service's configured port plus ``10 * i`` (``--free-ports``:
any free port, which the end-to-end tests use). The gateway is given every instance's URL.
A ``<service>-relay`` line (the service's outbox relay as its own process) runs once, its
health and metrics on the service's port plus 1000.
Each service connects to the broker as a user of its own, made for the run with the
development account's rights and deleted when it ends (``deploy/broker_users.py``), so
a service that publishes a routing key it does not own is refused as in production.
A process that ends on its own (a crash, a ``kill -9``) is started again with backoff, and
one that crashes at start in a loop is given up, the others running on
(``deploy/supervisor.py``). Ctrl-C sends SIGTERM to every process: consumers stop taking
messages, in-flight ones finish or return to their queue, servers drain their requests;
what still runs 20 s later is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from honcho.environ import parse_procfile
from honcho.printer import Printer

from deploy.broker_users import declare_queues, users_for_run
from deploy.observe import PORT as PROMETHEUS_PORT
from deploy.observe import prometheus_command, scrape_config
from deploy.supervisor import Supervisor
from gateway.settings import GatewaySettings
from notifications_service.mail_catcher import MBOX_NAME
from notifications_service.settings import NotificationsSettings
from orders_service.settings import OrdersSettings
from reports_service.settings import ReportsSettings
from scheduler_service.settings import SchedulerSettings
from shared.ports import free_port
from shared.settings import BaseServiceSettings, load_settings

DECLARE_TIMEOUT_S = 10  # a broker that accepts and never answers does not hold the start

SERVICES: dict[str, type[BaseServiceSettings]] = {
    "orders": OrdersSettings,
    "reports": ReportsSettings,
    "scheduler": SchedulerSettings,
    "notifications": NotificationsSettings,
}
PORT_STEP = 10


@dataclass
class Plan:
    """What will run: one command per process name, with its environment, and where everything listens."""

    commands: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    instances: dict[str, list[str]] = field(default_factory=dict)
    relays: dict[str, str] = field(default_factory=dict)
    gateway_url: str = ""
    api_key: str = ""
    mail_dir: str = ""
    smtp_port: int = 0
    prometheus_url: str = ""


def parse_scale(spec: str) -> dict[str, int]:
    """``"reports=3,notifications=2"`` -> ``{"reports": 3, "notifications": 2}``."""
    scale: dict[str, int] = {}
    for part in filter(None, (piece.strip() for piece in spec.replace(" ", ",").split(","))):
        name, _, count = part.partition("=")
        if name not in SERVICES or not count.isdigit() or not 1 <= int(count) <= 9:
            raise SystemExit(f"SCALE: {part!r} is not <service>=<1..9> with a service among {', '.join(SERVICES)}")
        scale[name] = int(count)
    return scale


def plan(procfile: Path, scale: dict[str, int], *, free_ports: bool, broker_urls: dict[str, str] | None = None) -> Plan:
    """What runs, where; ``broker_urls`` gives a service (and its relay) a broker login of its own."""
    processes = parse_procfile(procfile.read_text()).processes
    result = Plan()
    gateway = load_settings(GatewaySettings)
    notifications = load_settings(NotificationsSettings)
    result.smtp_port = free_port() if free_ports else notifications.smtp_port
    result.mail_dir = str(Path(notifications.mail_catcher_dir).resolve())
    shared_env = {"NOTIFICATIONS_SMTP_PORT": str(result.smtp_port), "PYTHONUNBUFFERED": "1"}
    if gateway.internal_token is None:
        # a token for this run: the services' own ports then take calls from the gateway only, as in production
        shared_env["INTERNAL_TOKEN"] = secrets.token_urlsafe(32)
    gateway_env = {} if gateway.console_secret else {"GATEWAY_CONSOLE_SECRET": secrets.token_urlsafe(32)}  # a console for this run
    settings_of = {name: load_settings(settings_class) for name, settings_class in SERVICES.items() if name in processes}
    ports_of = {
        name: [free_port() if free_ports else settings.port + PORT_STEP * i for i in range(scale.get(name, 1))]
        for name, settings in settings_of.items()
    }
    result.instances = {name: [f"http://127.0.0.1:{port}" for port in ports] for name, ports in ports_of.items()}
    # reports asks orders for its day counts (reconciliation) and the scheduler for the tasks it fired
    peers = {"REPORTS_ORDERS_URL": "orders", "REPORTS_SCHEDULER_URL": "scheduler"}
    for name, settings in settings_of.items():
        ports = ports_of[name]
        count = len(ports)
        service_env = shared_env | ({"BROKER_URL": broker_urls[name]} if broker_urls and name in broker_urls else {})
        if name == "reports":
            service_env |= {variable: result.instances[peer][0] for variable, peer in peers.items() if peer in result.instances}
        for index, port in enumerate(ports):
            label = name if count == 1 else f"{name}.{index + 1}"
            result.commands[label] = (f"{processes[name]} --port {port}", service_env)
        relay = f"{name}-relay"
        if relay in processes:  # one relay serves every instance (SKIP LOCKED would allow more)
            port = free_port() if free_ports else settings.relay_port
            result.commands[relay] = (f"{processes[relay]} --port {port}", service_env)
            result.relays[relay] = f"http://127.0.0.1:{port}"
    if "gateway" in processes:
        port = free_port() if free_ports else gateway.port
        result.gateway_url = f"http://127.0.0.1:{port}"
        result.api_key = gateway.client_keys()[0].key
        urls = {f"GATEWAY_{name.upper()}_URLS": ",".join(urls) for name, urls in result.instances.items()}
        result.commands["gateway"] = (f"{processes['gateway']} --port {port}", shared_env | gateway_env | urls)
    for name, command in processes.items():
        if name not in result.commands and name not in SERVICES and name != "gateway":
            result.commands[name] = (command, shared_env)
    return result


def banner(result: Plan, broker_users: str = "") -> str:
    broker_host = urlsplit(load_settings(OrdersSettings).broker_url.get_secret_value()).hostname or "127.0.0.1"
    width = 14
    lines = ["", "  Order-reporting suite"]
    if result.gateway_url:
        lines += [
            f"  {'API':<{width}}{result.gateway_url}",
            f"  {'API docs':<{width}}{result.gateway_url}/docs",
            f"  {'console':<{width}}{result.gateway_url}/console   (sign in with an operator key)",
            f"  {'API key':<{width}}{result.api_key}   (development key: set GATEWAY_API_KEYS in .env)",
            f"  {'try':<{width}}curl -H 'X-API-Key: {result.api_key}' '{result.gateway_url}/report/all?page=1&count=10'",
        ]
    lines += [
        f"  {'RabbitMQ UI':<{width}}http://{broker_host}:15672",
        *([f"  {'broker users':<{width}}{broker_users}"] if broker_users else []),
        f"  {'caught mail':<{width}}{Path(result.mail_dir) / MBOX_NAME}   (SMTP on 127.0.0.1:{result.smtp_port})",
        f"  {'instances':<{width}}" + " | ".join(f"{name} {', '.join(urls)}" for name, urls in result.instances.items()),
        *[f"  {name:<{width}}{url}/health/ready, {url}/metrics" for name, url in result.relays.items()],
        *(
            [f"  {'Prometheus':<{width}}{result.prometheus_url}   (alerts: {result.prometheus_url}/alerts)"]
            if result.prometheus_url
            else []
        ),
        "",
    ]
    return "\n".join(lines)


def observed(result: Plan) -> None:
    """Adds Debian's Prometheus to the run (``OBSERVE=1``), scraping every process of the plan."""
    workdir = Path("var/prometheus").resolve()
    config = scrape_config(result.instances, result.relays, result.gateway_url, workdir / "gateway-metrics-key")
    command = prometheus_command(workdir, config, result.api_key)
    if command is None:
        print("OBSERVE=1: Debian's prometheus is not installed (apt-get install prometheus); running without it", file=sys.stderr)
        return
    result.commands["prometheus"] = (command, {})
    result.prometheus_url = f"http://127.0.0.1:{PROMETHEUS_PORT}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procfile", type=Path, default=Path("Procfile"))
    parser.add_argument("--scale", default=os.environ.get("SCALE", ""), help="e.g. reports=3,notifications=2")
    parser.add_argument("--free-ports", action="store_true", help="any free port for every process (tests)")
    parser.add_argument("--state-file", type=Path, help="write the planned URLs here as JSON before starting")
    arguments = parser.parse_args()
    shared = load_settings(OrdersSettings)
    broker_url = shared.broker_url.get_secret_value()
    try:
        asyncio.run(asyncio.wait_for(declare_queues(broker_url, shared.events_exchange, shared.queue_type), DECLARE_TIMEOUT_S))
    except Exception as exc:  # noqa: BLE001 - the consumers declare their own queues when the broker comes
        print(f"consumer queues not declared up front ({type(exc).__name__}: {exc}); each consumer declares its own", file=sys.stderr)
    with users_for_run(broker_url, shared.events_exchange, os.environ.get("RABBITMQ_MANAGEMENT_URL")) as (broker_urls, users):
        result = plan(arguments.procfile, parse_scale(arguments.scale), free_ports=arguments.free_ports, broker_urls=broker_urls)
        if arguments.state_file:
            state = {
                "gateway": result.gateway_url,
                "instances": result.instances,
                "relays": result.relays,
                "mail_dir": result.mail_dir,
                "smtp_port": result.smtp_port,
                "broker_users": sorted(urlsplit(url).username or "" for url in broker_urls.values()),
            }
            arguments.state_file.write_text(json.dumps(state))
        if os.environ.get("OBSERVE") == "1":
            observed(result)
        print(banner(result, users), flush=True)
        width = max(len(name) for name in [*result.commands, "supervisor"])
        supervisor = Supervisor(Printer(sys.stdout, width=width, colour=sys.stdout.isatty()))
        for name, (command, env) in result.commands.items():
            supervisor.add(name, " ".join(shlex.split(command)), dict(os.environ) | env)
        returncode = asyncio.run(supervisor.run())
    sys.exit(returncode)


if __name__ == "__main__":
    main()
