"""``make run OBSERVE=1``: the run's Prometheus configuration names every process and passes promtool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.observe import RULES, prometheus_command, scrape_config

INSTANCES = {"orders": ["http://127.0.0.1:8001"], "reports": ["http://127.0.0.1:8002", "http://127.0.0.1:8012"]}
RELAYS = {"orders-relay": "http://127.0.0.1:9001"}


def test_every_instance_relay_and_the_gateway_is_scraped(tmp_path: Path) -> None:
    config = scrape_config(INSTANCES, RELAYS, "http://127.0.0.1:8000", tmp_path / "key")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}  # type: ignore[attr-defined]
    assert jobs["reports"]["static_configs"] == [{"targets": ["127.0.0.1:8002", "127.0.0.1:8012"]}]
    assert jobs["orders-relay"]["static_configs"] == [{"targets": ["127.0.0.1:9001"]}]
    assert jobs["gateway"]["authorization"] == {"credentials_file": str(tmp_path / "key")}
    assert config["rule_files"] == [str(RULES)]


def test_the_written_configuration_passes_promtool(tmp_path: Path) -> None:
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's prometheus (and its promtool) is required in CI")
        pytest.skip("prometheus is not installed")
    config = scrape_config(INSTANCES, RELAYS, "http://127.0.0.1:8000", tmp_path / "gateway-metrics-key")
    command = prometheus_command(tmp_path, config, "operator-key-of-the-test")
    assert command is not None
    assert "--web.listen-address=127.0.0.1:9090" in command
    assert (tmp_path / "gateway-metrics-key").read_text() == "operator-key-of-the-test"
    assert json.loads((tmp_path / "prometheus.yml").read_text()) == config
    checked = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
