"""The suite as ``make run`` runs it, with a TCP proxy in front of RabbitMQ and one before the SMTP server, for faults.

Only ``make test-faults`` collects this folder (``FAULT_SUITE=1``): its faults stop
PostgreSQL and the broker for every client on the machine. The faults share one suite,
in the order of ``test_faults.py``; each checks the invariants before the next begins.
Every result is printed at the end, and ``FAULTS_README=1`` writes them into the
README's "Faults" table.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from notifications_service.mail_catcher import caught_messages
from notifications_service.main import MIGRATIONS as NOTIFICATIONS_MIGRATIONS
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from reports_service.main import MIGRATIONS as REPORTS_MIGRATIONS
from scheduler_service.main import MIGRATIONS as SCHEDULER_MIGRATIONS
from shared.ports import free_port
from shared.testing.fixtures import migrated_database
from shared.testing.infrastructure import Infrastructure
from shared.testing.suite import running_suite, suite_environment
from shared.testing.tcp_proxy import TcpProxy
from tests.faults.checker import FaultResult, SuiteView

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "faults-key-0001"
HEARTBEAT_S = 5  # the services' AMQP heartbeat here: a blackholed link is noticed within about two of them
RESULTS: list[FaultResult] = []
SKIPPED: list[tuple[str, str, str]] = []  # (fault, what would be injected, why it is not)


@dataclass
class FaultSuite:
    view: SuiteView
    state: dict[str, object]
    infrastructure: Infrastructure
    broker_proxy: TcpProxy
    smtp_proxy: TcpProxy
    databases: dict[str, str]
    exchange: str
    log: Path

    @property
    def gateway(self) -> httpx.AsyncClient:
        return self.view.gateway

    def port_of(self, process: str) -> int:
        """The HTTP port of a process named as the launcher names it (``orders``, ``reports.2``, ``orders-relay``, ``gateway``)."""
        if process == "gateway":
            url = str(self.state["gateway"])
        elif process.endswith("-relay"):
            url = dict(self.state["relays"])[process]  # type: ignore[call-overload]
        else:
            service, _, index = process.partition(".")
            url = dict(self.state["instances"])[service][int(index or 1) - 1]  # type: ignore[call-overload]
        return int(url.rsplit(":", 1)[1])


def _procfile(workdir: Path, catcher_port: int) -> Path:
    """The Procfile, with the mail catcher on a port of its own behind the SMTP proxy."""
    lines = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("mail:"):
            line += f" --port {catcher_port}"
        lines.append(line)
    path = workdir / "Procfile"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
async def fault_suite(infrastructure: Infrastructure, run_id: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultSuite]:
    if infrastructure.rabbitmqctl is None:
        pytest.skip("the fault suite stops and kills the broker: it needs a local RabbitMQ and rabbitmqctl (TEST_RABBITMQCTL)")
    workdir = tmp_path_factory.mktemp("faults")
    vhost = f"faults-{run_id}-{uuid.uuid4().hex[:6]}"
    exchange = f"events-faults-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(infrastructure.create_vhost, vhost)
    broker_url = infrastructure.vhost_url(vhost)
    catcher_port = free_port()
    async with (
        TcpProxy.in_front_of(broker_url) as broker_proxy,
        migrated_database(infrastructure, f"faults_orders_{run_id}", ORDERS_MIGRATIONS) as orders_db,
        migrated_database(infrastructure, f"faults_reports_{run_id}", REPORTS_MIGRATIONS) as reports_db,
        migrated_database(infrastructure, f"faults_scheduler_{run_id}", SCHEDULER_MIGRATIONS) as scheduler_db,
        migrated_database(infrastructure, f"faults_notifications_{run_id}", NOTIFICATIONS_MIGRATIONS) as notifications_db,
    ):
        databases = {"orders": orders_db, "reports": reports_db, "scheduler": scheduler_db, "notifications": notifications_db}
        env = suite_environment(
            broker_url=f"{broker_proxy.url_for(broker_url)}?heartbeat={HEARTBEAT_S}",
            exchange=exchange,
            databases=databases,
            mail_dir=workdir / "mail",
            api_keys=f"faults:{API_KEY}:operator",
        ) | {"RABBITMQ_MANAGEMENT_URL": infrastructure.management_url}
        log = workdir / "suite.log"
        try:
            with log.open("wb") as output:
                async with (
                    running_suite(_procfile(workdir, catcher_port), env, workdir, scale="reports=2", cwd=ROOT, output=output) as state,
                    TcpProxy("127.0.0.1", catcher_port, port=int(state["smtp_port"])) as smtp_proxy,
                    httpx.AsyncClient(base_url=state["gateway"], headers={"X-API-Key": API_KEY}, timeout=30) as gateway,
                    httpx.AsyncClient(
                        base_url=infrastructure.management_url, auth=infrastructure.management_auth, timeout=10
                    ) as management,
                ):
                    view = SuiteView(
                        gateway,
                        management,
                        vhost,
                        broker_url,
                        {name: databases[name] for name in ("orders", "reports", "scheduler")},
                        lambda: caught_messages(Path(state["mail_dir"])),
                    )
                    yield FaultSuite(view, state, infrastructure, broker_proxy, smtp_proxy, databases, exchange, log)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text(errors='replace')[-5000:]}") from None
        finally:
            await asyncio.to_thread(infrastructure.delete_vhost, vhost)


def record(result: FaultResult) -> None:
    RESULTS.append(result)
    print(result.line())


def skip_fault(fault: str, injected: str, reason: str) -> None:
    SKIPPED.append((fault, injected, reason))
    pytest.skip(reason)


def table() -> str:
    lines = [
        "| fault | injected | accepted | lost | duplicated | parked | recovery |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in RESULTS:
        lines.append(
            f"| {result.fault} | {result.injected} | {result.accepted} | {result.lost} | {result.duplicated} "
            f"| {result.parked}{' (the poison)' if result.parked else ''} | {result.recovery_s:.1f} s{result.seen}{_redelivered(result)} |"
        )
    for fault, injected, reason in SKIPPED:
        lines.append(f"| {fault} | {injected} | - | - | - | - | not run: {reason} |")
    return "\n".join(lines)


def _redelivered(result: FaultResult) -> str:
    if not result.redelivered:
        return ""
    return f"; {result.redelivered} mail sent again under its own Message-ID (SMTP accepted it, the database died before the commit)"


README_TABLE = re.compile(r"(<!-- faults:start -->\n).*?(<!-- faults:end -->)", re.S)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS and not SKIPPED:
        return
    terminalreporter.section("faults")
    terminalreporter.write_line(table())
    if os.environ.get("FAULTS_README") == "1" and RESULTS:
        readme = ROOT / "README.md"
        text = readme.read_text()
        if README_TABLE.search(text):
            readme.write_text(README_TABLE.sub(lambda match: match.group(1) + table() + "\n" + match.group(2), text))
            terminalreporter.write_line("README.md: the Faults table is rewritten")
