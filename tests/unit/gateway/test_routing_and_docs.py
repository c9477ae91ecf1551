from __future__ import annotations

from typing import Any

from gateway.breaker import BreakerPolicy
from gateway.openapi import merge
from gateway.settings import UpstreamTimeouts
from gateway.upstreams import build_route_table

URLS = {
    "orders": ("http://o1", "http://o2", "http://o3"),
    "reports": ("http://r1",),
    "scheduler": ("http://s1",),
    "notifications": ("http://n1",),
}


def table() -> Any:
    timeouts = {name: UpstreamTimeouts() for name in URLS}
    return build_route_table(URLS, timeouts, BreakerPolicy(window=2, min_calls=1, failure_rate=1.0), clock=lambda: 0.0)


def test_prefixes_match_whole_path_segments() -> None:
    routes = table()
    assert routes.match("/orders").name == "orders"
    assert routes.match("/orders/123").name == "orders"
    assert routes.match("/report/").name == "reports"
    assert routes.match("/report/all").name == "reports"
    assert routes.match("/schedules/x/preview").name == "scheduler"
    assert routes.match("/notifications").name == "notifications"
    assert routes.match("/ordersx") is None
    assert routes.match("/reports") is None
    assert routes.match("/health") is None


def test_instances_take_turns_and_an_open_breaker_is_skipped() -> None:
    orders = table().match("/orders")
    picked = [orders.pick()[0].base_url for _ in range(3)]
    assert sorted(picked) == ["http://o1", "http://o2", "http://o3"]
    broken = orders.instances[1]
    permit = broken.breaker.acquire()
    broken.breaker.record(permit, success=False)
    after = {orders.pick()[0].base_url for _ in range(6)}
    assert after == {"http://o1", "http://o3"}


def test_every_breaker_open_means_no_instance() -> None:
    reports = table().match("/report")
    instance = reports.instances[0]
    instance.breaker.record(instance.breaker.acquire(), success=False)
    assert reports.pick() is None
    assert reports.retry_after_s() >= 1


def document(schemas: dict[str, Any], paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas}}


def operation(ref: str) -> dict[str, Any]:
    return {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}}}}


def test_merged_docs_keep_public_paths_share_equal_schemas_and_rename_clashes() -> None:
    error = {"type": "object", "properties": {"code": {"type": "string"}}}
    merged = merge(
        {
            "orders": document(
                {"Error": error, "Page": {"title": "orders page"}}, {"/orders": operation("Page"), "/health": operation("Error")}
            ),
            "reports": document({"Error": error, "Page": {"title": "reports page"}}, {"/report/all": operation("Page")}),
        },
        table(),
        title="API",
        version="1",
    )
    assert set(merged["paths"]) == {"/orders", "/report/all"}
    assert set(merged["components"]["schemas"]) == {"Error", "Page", "ReportsPage", "Problem", "FieldError"}
    reports_ref = merged["paths"]["/report/all"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert reports_ref == "#/components/schemas/ReportsPage"
    assert merged["components"]["schemas"]["ReportsPage"] == {"title": "reports page"}
    responses = merged["paths"]["/orders"]["get"]["responses"]
    for status in ("401", "403", "408", "429", "431", "500", "502", "503", "504"):
        assert responses[status]["content"] == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert merged["security"]
    assert "bearerKey" in merged["components"]["securitySchemes"]
