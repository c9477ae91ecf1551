"""One OpenAPI document for the public API: each service's paths under its prefix, schemas merged.

Schemas with the same name and the same content (the shared error shape) appear once;
a name two services use for different shapes is prefixed with the service's name and
every reference to it is rewritten.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import httpx

from gateway.upstreams import RouteTable, Upstream
from shared.web.problem_docs import document_problems

_REF = "#/components/schemas/"

SECURITY_SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer", "description": "API key as `Authorization: Bearer <key>`"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "API key as `X-API-Key: <key>`"},
}
# what the gateway itself can answer to any proxied call, before or instead of the service
GATEWAY_RESPONSES = {
    "401": {"description": "Missing or wrong API key"},
    "403": {"description": "The API key's roles do not allow this call (`detail` names the role needed)"},
    "408": {"description": "The request body did not arrive in time"},
    "413": {"description": "Request body over the gateway's limit"},
    "415": {"description": "A body that is not application/json"},
    "429": {"description": "Rate limit of this API key exceeded, or too many wrong keys from this address; see Retry-After"},
    "431": {"description": "Request headers over the gateway's limit"},
    "502": {"description": "The service could not be reached"},
    "503": {"description": "The service is failing and calls are paused (circuit open); see Retry-After"},
    "504": {"description": "The service did not answer in time"},
}


def merge(documents: dict[str, dict[str, Any]], routes: RouteTable, *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    by_name = {upstream.name: upstream for upstream in routes.upstreams}
    for name, original in documents.items():
        upstream = by_name[name]
        document_schemas = original.get("components", {}).get("schemas", {})
        renames = {
            schema: f"{name.capitalize()}{schema}"
            for schema, content in document_schemas.items()
            if schema in schemas and schemas[schema] != content
        }
        document = _rename_refs(copy.deepcopy(original), renames) if renames else original
        for schema, content in document.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(schema, schema)] = content
        for path, item in document.get("paths", {}).items():
            if routes.match(path) is upstream:
                paths[path] = _tagged(item, name)
    merged = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "The public API of the suite. Every route needs an API key (Authorize above).",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
        "security": [{"bearerKey": []}, {"apiKeyHeader": []}],
    }
    return document_problems(merged, GATEWAY_RESPONSES)


def _tagged(item: dict[str, Any], tag: str) -> dict[str, Any]:
    return {
        method: {**operation, "tags": operation.get("tags") or [tag]} if isinstance(operation, dict) else operation
        for method, operation in item.items()
    }


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF) :] in renames:
            node["$ref"] = _REF + renames[ref[len(_REF) :]]
        for value in node.values():
            _rename_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rename_refs(value, renames)
    return node


class OpenApiCache:
    """Fetches each service's document from the first instance that answers; keeps a complete result for ``ttl_s``."""

    def __init__(self, routes: RouteTable, client: httpx.AsyncClient, *, ttl_s: float, title: str, version: str) -> None:
        self.routes = routes
        self.client = client
        self.ttl_s = ttl_s
        self.title = title
        self.version = version
        self._document: dict[str, Any] | None = None
        self._fetched_at = 0.0

    async def document(self) -> dict[str, Any]:
        if self._document is not None and time.monotonic() - self._fetched_at < self.ttl_s:
            return self._document
        fetched = await asyncio.gather(*(self._fetch(upstream) for upstream in self.routes.upstreams))
        documents = {upstream.name: doc for upstream, doc in zip(self.routes.upstreams, fetched, strict=True) if doc is not None}
        merged = merge(documents, self.routes, title=self.title, version=self.version)
        missing = sorted(upstream.name for upstream, doc in zip(self.routes.upstreams, fetched, strict=True) if doc is None)
        if missing:
            merged["info"]["x-unavailable-services"] = missing
        else:
            self._document, self._fetched_at = merged, time.monotonic()
        return merged

    async def _fetch(self, upstream: Upstream) -> dict[str, Any] | None:
        for instance in upstream.instances:
            try:
                response = await self.client.get(f"{instance.base_url}/openapi.json")
                if response.status_code == 200:
                    document: dict[str, Any] = response.json()
                    return document
            except (httpx.HTTPError, ValueError):
                continue
        return None
