"""Prometheus metrics of the suite, defined once so every service exposes the same names."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENTS_PUBLISHED = Counter("events_published_total", "Events confirmed by the broker", ["routing_key"])
EVENTS_PUBLISH_FAILED = Counter("events_publish_failed_total", "Outbox publish attempts that failed", ["reason"])
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows waiting to be published (parked ones apart)")
OUTBOX_OLDEST_AGE = Gauge("outbox_oldest_unpublished_seconds", "Age of the oldest outbox row waiting to be published (parked ones apart)")
OUTBOX_PARKED = Counter("outbox_parked_total", "Outbox events parked after the broker refused every attempt")
OUTBOX_PARKED_ROWS = Gauge("outbox_parked_rows", "Outbox rows parked, waiting for an operator")
EVENTS_CONSUMED = Counter("events_consumed_total", "Consumed messages by outcome", ["queue", "outcome"])
CONSUMER_ATTACHED = Gauge("consumer_attached", "1 while the consumer is subscribed to its queues")
NOTIFICATION_SENDS = Counter(
    "notification_sends_total", "Notifications handed to the mail server, by outcome", ["outcome"]
)  # sent, retrying, failed (given up), server_unreachable (held; no attempt spent)
RECONCILIATION_MISMATCHED_DAYS = Gauge(
    "report_reconciliation_mismatched_days", "Days of the last scheduled reconciliation whose report disagrees with the orders"
)
REPORT_FACT_LAG = Histogram(
    "report_fact_lag_seconds",
    "From an order.created's occurrence (its outbox write) to its fact stored by the reports service",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
SCHEDULES_FAILING = Gauge("scheduler_schedules_failing", "Enabled schedules whose last fire failed")
SCHEDULES_LATE = Gauge("scheduler_schedules_late", "Enabled schedules whose next instant is past by more than the misfire grace")
DATABASE_PAUSED = Gauge("database_paused", "1 while a background worker waits for its database to answer", ["worker"])

# gateway
GATEWAY_UPSTREAM_CALLS = Counter(
    "gateway_upstream_calls_total", "Upstream calls by outcome (status or failure)", ["upstream", "instance", "outcome"]
)
GATEWAY_RETRIES = Counter("gateway_retries_total", "Upstream calls repeated by the retry policy", ["upstream", "reason"])
GATEWAY_REJECTED = Counter("gateway_rejected_total", "Requests the gateway answered itself", ["reason"])
GATEWAY_BREAKER_STATE = Gauge(
    "gateway_breaker_state", "Circuit breaker per upstream instance: 0 closed, 1 open, 2 half-open", ["upstream", "instance"]
)
