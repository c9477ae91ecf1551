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
