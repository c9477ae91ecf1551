"""docker-compose.yml, checked without a Docker engine: ``docker-compose config`` parses it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "RABBITMQ_USER": "suite",
    "RABBITMQ_PASSWORD": "mq-secret",
    "GATEWAY_API_KEYS": "web:web-key-123",
    "INTERNAL_TOKEN": "internal-token-of-the-test",
    "BROKER_ORDERS_PASSWORD": "orders-secret",
    "BROKER_REPORTS_PASSWORD": "reports-secret",
    "BROKER_SCHEDULER_PASSWORD": "scheduler-secret",
    "BROKER_NOTIFICATIONS_PASSWORD": "notifications-secret",
    "GATEWAY_METRICS_KEY": "web-key-123",
    "GATEWAY_CONSOLE_SECRET": "console-secret-of-the-test",
    "BROKER_CONSOLE_PASSWORD": "console-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
}
APP_SERVICES = {
    "orders_service": "ORDERS_",
    "reports_service": "REPORTS_",
    "scheduler_service": "SCHEDULER_",
    "notifications_service": "NOTIFICATIONS_",
}


EXAMPLE = ROOT / ".env.example"
EMPTY_ENV_FILE = Path(tempfile.gettempdir()) / "order-reporting-empty.env"


def _compose(env: dict[str, str], env_file: Path = EMPTY_ENV_FILE) -> subprocess.CompletedProcess[str]:
    """Run ``docker-compose config`` with ``env`` and ``env_file`` as the only configuration (a developer's .env is ignored)."""
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose (Debian package docker-compose) is required in CI")
        pytest.skip("docker-compose is not installed")
    EMPTY_ENV_FILE.write_text("")
    clean = {key: value for key, value in os.environ.items() if key not in SECRETS and key != "ENVIRONMENT"}
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        env=clean | env,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = _compose(SECRETS)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = yaml.safe_load(result.stdout)
    return parsed


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_secret_stops_compose_with_its_name(missing: str) -> None:
    result = _compose({key: value for key, value in SECRETS.items() if key != missing})
    assert result.returncode != 0
    assert missing in result.stderr


def test_only_the_gateway_and_the_uis_are_published(config: dict[str, Any]) -> None:
    published = {name: service.get("ports", []) for name, service in config["services"].items() if service.get("ports")}
    assert set(published) == {"gateway", "rabbitmq", "mailpit", "jaeger", "prometheus", "grafana"}
    assert [str(port["target"]) for port in published["gateway"]] == ["8000"]
    assert [str(port["target"]) for port in published["rabbitmq"]] == ["15672"]
    assert [str(port["target"]) for port in published["mailpit"]] == ["8025"]
    assert [str(port["target"]) for port in published["jaeger"]] == ["16686"]
    assert [str(port["target"]) for port in published["prometheus"]] == ["9090"]
    assert [str(port["target"]) for port in published["grafana"]] == ["3000"]


def test_every_process_exports_its_spans_to_jaeger(config: dict[str, Any]) -> None:
    for name in [*APP_SERVICES, "orders_relay", "gateway"]:
        environment = config["services"][name]["environment"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
        assert environment["OTEL_TRACES_SAMPLER"] == "parentbased_always_on", name


def test_services_can_scale(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        assert "container_name" not in service, name


def test_every_command_points_at_an_existing_module(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        command = service.get("command")
        if command and command[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(command[2]) is not None, f"{name}: {command[2]} does not exist"


def test_services_wait_for_migrations_broker_and_health(config: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = config["services"][name]
        assert service["depends_on"][name.replace("_service", "_migrate")]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert service["depends_on"]["broker_users"]["condition"] == "service_completed_successfully"
        assert "/health/ready" in " ".join(service["healthcheck"]["test"])
    for name in APP_SERVICES:
        migrate = config["services"][name.replace("_service", "_migrate")]
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert migrate["command"][-1] == "migrate"
    for infrastructure in ("postgres", "rabbitmq"):
        assert config["services"][infrastructure]["healthcheck"]["test"]
    gateway = config["services"]["gateway"]
    assert {name: dependency["condition"] for name, dependency in gateway["depends_on"].items()} == dict.fromkeys(
        APP_SERVICES, "service_healthy"
    )
    assert "/health/live" in " ".join(gateway["healthcheck"]["test"])


def test_the_gateway_knows_every_service_and_needs_keys(config: dict[str, Any]) -> None:
    environment = config["services"]["gateway"]["environment"]
    assert environment["GATEWAY_API_KEYS"] == "web:web-key-123"
    assert environment["GATEWAY_HOST"] == "0.0.0.0"
    for name, prefix in APP_SERVICES.items():
        port = config["services"][name]["environment"][f"{prefix}PORT"]
        assert environment[f"GATEWAY_{prefix}URLS"] == f"http://{name}:{port}"


def test_every_variable_a_service_needs_is_set(config: dict[str, Any]) -> None:
    for name, prefix in APP_SERVICES.items():
        environment = config["services"][name]["environment"]
        assert environment[f"{prefix}DATABASE_URL"].startswith("postgresql://postgres:pg-secret@postgres:5432/")
        user = name.removesuffix("_service")
        assert environment["BROKER_URL"] == f"amqp://{user}:{user}-secret@rabbitmq:5672/"
        assert environment[f"{prefix}HOST"] == "0.0.0.0"
        assert environment["ENVIRONMENT"] == "production"
        assert environment["INTERNAL_TOKEN"] == "internal-token-of-the-test"
    assert config["services"]["gateway"]["environment"]["INTERNAL_TOKEN"] == "internal-token-of-the-test"


def test_no_service_uses_the_broker_administrator(config: dict[str, Any]) -> None:
    """The administrator account only makes the services' users; each service logs in as its own."""
    for name, service in config["services"].items():
        broker_url = service.get("environment", {}).get("BROKER_URL", "")
        assert "suite:mq-secret" not in broker_url, name
    setup = config["services"]["broker_users"]
    assert setup["command"] == ["python", "-m", "deploy.broker_users"]
    assert setup["environment"]["RABBITMQ_ADMIN_USER"] == "suite"
    assert setup["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    for user in ("ORDERS", "REPORTS", "SCHEDULER", "NOTIFICATIONS"):
        assert setup["environment"][f"BROKER_{user}_PASSWORD"] == f"{user.lower()}-secret"


def test_the_orders_outbox_is_published_by_its_own_relay(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["orders_service"]["environment"]["OUTBOX_RELAY"] == "external"
    relay = services["orders_relay"]
    assert relay["command"] == ["python", "-m", "orders_service.main", "relay"]
    assert relay["environment"]["ORDERS_DATABASE_URL"] == services["orders_service"]["environment"]["ORDERS_DATABASE_URL"]
    assert relay["environment"].get("OUTBOX_RELAY", "embedded") == "embedded"
    port = int(relay["environment"]["ORDERS_PORT"]) + 1000
    assert f"127.0.0.1:{port}/health/ready" in " ".join(relay["healthcheck"]["test"])
    assert relay["depends_on"]["orders_migrate"]["condition"] == "service_completed_successfully"
    assert relay["depends_on"]["broker_users"]["condition"] == "service_completed_successfully"
    assert relay["environment"]["BROKER_URL"] == services["orders_service"]["environment"]["BROKER_URL"]


def test_the_image_runs_as_a_non_root_user_and_stops_on_sigterm() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER app" in dockerfile
    assert "STOPSIGNAL SIGTERM" in dockerfile
    assert dockerfile.count("FROM ") == 2, "multi-stage build"


def test_a_env_file_copied_from_the_example_keeps_compose_in_production() -> None:
    """``cp .env.example .env``, as the README says, then the secrets: compose still runs production."""
    result = _compose(SECRETS, EXAMPLE)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {services[name]["environment"]["ENVIRONMENT"] for name in [*APP_SERVICES, "gateway"]} == {"production"}


def test_the_example_leaves_every_secret_empty_so_compose_asks_for_it() -> None:
    example = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    for name in SECRETS:
        if name not in ("RABBITMQ_USER", "GATEWAY_API_KEYS"):
            assert example.get(name) == "", name
