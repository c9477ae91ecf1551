"""The launcher's plan: ports per instance, and a service's relay process once, on the service's port + 1000."""

from __future__ import annotations

from pathlib import Path

from deploy.launcher import banner, plan

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_orders_relay_runs_once_beside_every_orders_instance() -> None:
    result = plan(ROOT / "Procfile", {"orders": 2}, free_ports=False)
    assert result.commands["orders.1"][0].endswith("orders_service.main --port 8001")
    assert result.commands["orders.2"][0].endswith("orders_service.main --port 8011")
    assert result.commands["orders.1"][0].startswith("OUTBOX_RELAY=external ")
    assert result.commands["orders-relay"][0].endswith("orders_service.main relay --port 9001")
    assert result.instances["orders"] == ["http://127.0.0.1:8001", "http://127.0.0.1:8011"]
    assert "orders-relay" not in result.instances
    assert result.relays == {"orders-relay": "http://127.0.0.1:9001"}
    assert "orders-relay  http://127.0.0.1:9001/health/ready" in banner(result)


def test_free_ports_give_the_relay_a_port_of_its_own() -> None:
    result = plan(ROOT / "Procfile", {}, free_ports=True)
    relay_port = result.commands["orders-relay"][0].rsplit(" ", 1)[1]
    service_port = result.instances["orders"][0].rsplit(":", 1)[1]
    assert relay_port.isdigit()
    assert relay_port != service_port


def test_each_service_and_its_relay_get_their_own_broker_login() -> None:
    urls = {service: f"amqp://run-1-{service}:pw@127.0.0.1:5672/" for service in ("orders", "reports", "scheduler", "notifications")}
    result = plan(ROOT / "Procfile", {"reports": 2}, free_ports=True, broker_urls=urls)
    for label, service in [("orders", "orders"), ("orders-relay", "orders"), ("reports.1", "reports"), ("reports.2", "reports")]:
        assert result.commands[label][1]["BROKER_URL"] == urls[service], label
    assert result.commands["scheduler"][1]["BROKER_URL"] == urls["scheduler"]
    assert "BROKER_URL" not in result.commands["gateway"][1]
    assert "broker users  run-1-<service>" in banner(result, "run-1-<service>")
