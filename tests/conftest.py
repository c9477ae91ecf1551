"""Markers follow the folder a test lives in: tests/unit, tests/integration, tests/e2e."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["shared.testing.fixtures"]

_KINDS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in _KINDS:
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))
