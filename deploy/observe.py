"""``make run OBSERVE=1``: Debian's Prometheus against the local processes, with the suite's alert rules.

The scrape configuration is written for the run (every instance's port is known only then);
the rules are ``deploy/prometheus/alerts.yml`` as compose runs them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

RULES = Path(__file__).resolve().parent / "prometheus" / "alerts.yml"
PORT = 9090


def scrape_config(instances: dict[str, list[str]], relays: dict[str, str], gateway_url: str, key_file: Path) -> dict[str, object]:
    """One job per service and relay, the gateway with an operator's key, RabbitMQ's per-queue metrics."""

    def targets(urls: list[str]) -> list[dict[str, list[str]]]:
        return [{"targets": [urlsplit(url).netloc for url in urls]}]

    jobs: list[dict[str, object]] = [{"job_name": name, "static_configs": targets(urls)} for name, urls in instances.items()]
    jobs += [{"job_name": name, "static_configs": targets([url])} for name, url in relays.items()]
    if gateway_url:
        jobs.append({"job_name": "gateway", "authorization": {"credentials_file": str(key_file)}, "static_configs": targets([gateway_url])})
    jobs.append({"job_name": "rabbitmq", "metrics_path": "/metrics/per-object", "static_configs": [{"targets": ["127.0.0.1:15692"]}]})
    return {"global": {"scrape_interval": "15s", "evaluation_interval": "15s"}, "rule_files": [str(RULES)], "scrape_configs": jobs}


def prometheus_command(workdir: Path, config: dict[str, object], api_key: str) -> str | None:
    """The command that runs Prometheus on this run's configuration; None when Debian's prometheus is not installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    key_file = workdir / "gateway-metrics-key"
    key_file.write_text(api_key)
    key_file.chmod(0o600)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(json.dumps(config, indent=2))  # YAML reads JSON
    data = workdir / "data"
    return f"{binary} --config.file={config_file} --storage.tsdb.path={data} --web.listen-address=127.0.0.1:{PORT}"
