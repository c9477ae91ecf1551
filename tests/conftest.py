"""Markers follow the folder a test lives in: tests/unit, tests/integration, tests/e2e, tests/faults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["shared.testing.fixtures"]

# the fault suite stops PostgreSQL and the broker for every client of this machine: only `make test-faults` runs it
collect_ignore = [] if os.environ.get("FAULT_SUITE") == "1" else ["faults"]

_KINDS = ("unit", "integration", "e2e", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in _KINDS:
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))
