"""Locust scenario through the gateway: shops create and read orders; a few analysts ask for and read reports.

Run by ``bench/load.py`` (headless); the API key comes from ``LOAD_API_KEY``.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime

from locust import FastHttpUser, constant, task

KEY = {"X-API-Key": os.environ.get("LOAD_API_KEY", "")}
JSON = {**KEY, "Content-Type": "application/json"}
ORDER = (
    '{"customer_email":"load@example.com","currency":"EUR","items":'
    '[{"sku":"SKU-1","quantity":2,"unit_price":"9.99"},{"sku":"SKU-2","quantity":1,"unit_price":"5.00"}]}'
)
created: list[str] = []
tasks: list[str] = []


class Shop(FastHttpUser):
    """Places orders and reads them back, without pause."""

    weight = 10
    wait_time = constant(0)

    @task(6)
    def create_order(self) -> None:
        with self.client.post("/orders", data=ORDER, headers=JSON, name="POST /orders", catch_response=True) as response:
            if response.status_code == 201:
                created.append(response.json()["id"])
                if len(created) > 10_000:
                    del created[:5_000]
            else:
                response.failure(f"status {response.status_code}")

    @task(3)
    def read_order(self) -> None:
        if created:
            self.client.get(f"/orders/{random.choice(created)}", headers=KEY, name="GET /orders/{id}")

    @task(1)
    def list_orders(self) -> None:
        self.client.get("/orders?page=1&count=20", headers=KEY, name="GET /orders")


class Analyst(FastHttpUser):
    """Asks for today's report now and then (about every 10 s each), and reads reports and task states."""

    fixed_count = 2
    wait_time = constant(1)

    @task(1)
    def request_report(self) -> None:
        today = datetime.now(UTC).date().isoformat()
        response = self.client.post(f"/report/generate?report_date={today}", headers=KEY, name="POST /report/generate")
        if response.status_code == 202:
            tasks.append(response.json()["task_id"])

    @task(4)
    def read_task(self) -> None:
        if tasks:
            self.client.get(f"/report/tasks/{random.choice(tasks)}", headers=KEY, name="GET /report/tasks/{id}")

    @task(5)
    def read_reports(self) -> None:
        self.client.get("/report/all?page=1&count=10", headers=KEY, name="GET /report/all")
