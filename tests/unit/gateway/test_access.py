"""The gateway's table of who may call what: every route of the API, for each role."""

from __future__ import annotations

import pytest

from gateway.access import refusal, required_role
from gateway.auth import Client

ORDER = "/orders/5b7e0c1c-8f7e-4a55-9d1b-3d1f9c1f6a01"
ROUTES: list[tuple[str, str, str, str]] = [
    # upstream, method, path, the least role that may call it
    ("orders", "POST", "/orders", "shop"),
    ("orders", "GET", "/orders", "shop"),
    ("orders", "GET", ORDER, "shop"),
    ("orders", "HEAD", ORDER, "shop"),
    ("orders", "DELETE", ORDER, "operator"),
    ("orders", "POST", f"{ORDER}/cancel", "shop"),
    ("orders", "GET", f"{ORDER}/cancel", "operator"),
    ("orders", "POST", f"{ORDER}/refund", "operator"),
    ("orders", "POST", f"{ORDER}/x/cancel", "operator"),
    ("orders", "GET", f"{ORDER}/anything/deeper", "operator"),
    ("notifications", "GET", "/notifications", "shop"),
    ("notifications", "GET", "/notifications/5b7e0c1c-8f7e-4a55-9d1b-3d1f9c1f6a01", "shop"),
    ("notifications", "POST", "/notifications", "operator"),
    ("reports", "GET", "/report/", "analyst"),
    ("reports", "GET", "/report/all", "analyst"),
    ("reports", "GET", "/report/tasks", "analyst"),
    ("reports", "GET", "/report/days", "analyst"),
    ("reports", "POST", "/report/generate", "analyst"),
    ("reports", "POST", "/report/other", "operator"),
    ("scheduler", "GET", "/schedules", "analyst"),
    ("scheduler", "GET", "/schedules/daily-orders-report/runs", "analyst"),
    ("scheduler", "POST", "/schedules", "operator"),
    ("scheduler", "PATCH", "/schedules/daily-orders-report", "operator"),
    ("scheduler", "DELETE", "/schedules/daily-orders-report", "operator"),
    ("scheduler", "POST", "/schedules/daily-orders-report/trigger", "operator"),
    # what an operator repairs with: never a read-only role's, though reads of these upstreams are
    ("reports", "GET", "/admin/reports/outbox", "operator"),
    ("scheduler", "GET", "/admin/scheduler/outbox", "operator"),
    ("orders", "POST", "/admin/orders/outbox/republish", "operator"),
    ("reports", "GET", "/admin/reports/dead-letters", "operator"),
    ("reports", "POST", "/report/backfill", "operator"),
    ("reports", "GET", "/report/reconciliation", "analyst"),
    ("orders", "GET", "/orders/days", "shop"),
    ("orders", "POST", "/admin/orders/republish", "operator"),
    ("notifications", "GET", "/admin/notifications/dead-letters", "operator"),
    ("notifications", "POST", "/admin/notifications/dead-letters/replay", "operator"),
]
SHOP, ANALYST, OPERATOR = (Client(name, frozenset({name})) for name in ("shop", "analyst", "operator"))


@pytest.mark.parametrize(("upstream", "method", "path", "role"), ROUTES)
def test_each_route_needs_its_role_and_an_operator_may_call_it(upstream: str, method: str, path: str, role: str) -> None:
    assert required_role(upstream, method, path) == role
    assert refusal(OPERATOR, upstream, method, path) is None
    for client in (SHOP, ANALYST):
        refused = refusal(client, upstream, method, path)
        if client.name == role:
            assert refused is None
        else:
            assert refused is not None
            assert f"needs the {role} role" in refused
            assert repr(client.name) in refused


def test_a_client_with_two_roles_may_call_what_either_may() -> None:
    both = Client("web-and-bi", frozenset({"shop", "analyst"}))
    assert refusal(both, "orders", "POST", "/orders") is None
    assert refusal(both, "reports", "GET", "/report/all") is None
    assert refusal(both, "scheduler", "POST", "/schedules") is not None
