"""``GET /orders/{id}``: straight to the orders service, through the gateway, through nginx, through bare proxies.

Saturated: wrk, 50 connections, each target in turn after a warm-up. Paced: the same 50
connections, each pausing 0-200 ms between requests (about 500 requests/s, below every
target's capacity), so latency shows what a hop adds rather than queueing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import httpx

from bench.environment import scratch_database, scratch_vhost
from bench.http_load import require_wrk, run_wrk, start_python, stop, wait_until_live
from bench.messaging import declare_target
from bench.orders_http import ORDER
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from shared.ports import free_port
from shared.testing.infrastructure import Infrastructure

API_KEY = "bench-key-0001"
CONNECTIONS = 50
SECONDS = 2  # per wrk run, after a 1 s warm-up; 5 targets, 3 of them also paced
PACE_MS = 100

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream orders {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://orders;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


# as in production: the gateway sends it, the orders service requires it
INTERNAL_TOKEN = "bench-internal-token-0001"


def gateway_env(orders_url: str, api_key: str) -> dict[str, str]:
    """The gateway in front of one orders process, one shop's API key, no rate limit in the way."""
    return {
        "GATEWAY_ORDERS_URLS": orders_url,
        "GATEWAY_API_KEYS": f"bench:{api_key}:shop",
        "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "GATEWAY_RATE_LIMIT_PER_S": "1000000",
        "GATEWAY_RATE_LIMIT_BURST": "1000000",
        "LOG_LEVEL": "WARNING",
    }


async def start_nginx(upstream_port: int, directory: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(NGINX_CONF.format(prefix=directory, upstream_port=upstream_port, port=port))
    process = await asyncio.create_subprocess_exec("nginx", "-c", str(config), "-p", str(directory))
    return process, f"http://127.0.0.1:{port}"


async def through_gateway(infrastructure: Infrastructure) -> dict[str, float]:
    require_wrk()
    processes: list[asyncio.subprocess.Process] = []
    async with (
        scratch_vhost(infrastructure) as broker_url,
        scratch_database(infrastructure, "gateway", ORDERS_MIGRATIONS) as url,
    ):
        await declare_target(broker_url)
        try:
            orders_port, gateway_port = free_port(), free_port()
            orders_url, gateway_url = f"http://127.0.0.1:{orders_port}", f"http://127.0.0.1:{gateway_port}"
            processes.append(
                await start_python(
                    "orders_service.main",
                    "--port",
                    str(orders_port),
                    # no token required: the direct, nginx and bare-proxy targets call it as the gateway does, without one
                    env={"ORDERS_DATABASE_URL": url, "BROKER_URL": broker_url, "LOG_LEVEL": "WARNING"},
                )
            )
            await wait_until_live(f"{orders_url}/health/live", processes[-1])
            processes.append(await start_python("gateway.main", "--port", str(gateway_port), env=gateway_env(orders_url, API_KEY)))
            await wait_until_live(f"{gateway_url}/health/live", processes[-1])
            targets = {"direct": orders_url, "gateway": gateway_url}
            for client in ("aiohttp", "httpx"):
                port = free_port()
                processes.append(
                    await start_python("bench.minimal_proxy", "--port", str(port), "--upstream", orders_url, "--client", client, env={})
                )
                targets[f"bare_{client}"] = f"http://127.0.0.1:{port}"
            with tempfile.TemporaryDirectory(prefix="bench-nginx-") as directory:
                if shutil.which("nginx"):
                    nginx, targets["nginx"] = await start_nginx(orders_port, Path(directory))
                    processes.append(nginx)
                for target in targets.values():
                    await wait_until_live(f"{target}/health/live")
                async with httpx.AsyncClient() as http:
                    # placed by the shop whose key the load uses, so the gateway finds it for that shop
                    headers = {"Content-Type": "application/json", "X-API-Key": API_KEY}
                    created = await http.post(f"{gateway_url}/orders", content=ORDER, headers=headers)
                path = f"/orders/{created.json()['id']}"
                results: dict[str, float] = {"connections": CONNECTIONS}
                for name, target in targets.items():
                    await run_wrk(target + path, connections=CONNECTIONS, seconds=1, api_key=API_KEY)  # warm-up
                    saturated = await run_wrk(target + path, connections=CONNECTIONS, seconds=SECONDS, api_key=API_KEY)
                    results[f"{name}_rate"] = saturated["rate"]
                    results[f"{name}_p50_ms"] = saturated["p50_ms"]
                    results[f"{name}_p99_ms"] = saturated["p99_ms"]
                    results[f"{name}_errors"] = saturated["errors"]
                    if not name.startswith("bare_"):
                        paced = await run_wrk(target + path, connections=CONNECTIONS, seconds=SECONDS, api_key=API_KEY, delay_ms=PACE_MS)
                        results[f"{name}_paced_rate"] = paced["rate"]
                        results[f"{name}_paced_p50_ms"] = paced["p50_ms"]
                        results[f"{name}_paced_p99_ms"] = paced["p99_ms"]
                        results[f"{name}_errors"] += paced["errors"]
        finally:
            for process in reversed(processes):
                await stop(process)
    results["gateway_share_pct"] = results["gateway_rate"] / results["direct_rate"] * 100
    results["gateway_added_p50_ms"] = results["gateway_paced_p50_ms"] - results["direct_paced_p50_ms"]
    if "nginx_rate" in results:
        results["nginx_share_pct"] = results["nginx_rate"] / results["direct_rate"] * 100
        results["nginx_added_p50_ms"] = results["nginx_paced_p50_ms"] - results["direct_paced_p50_ms"]
    return results
