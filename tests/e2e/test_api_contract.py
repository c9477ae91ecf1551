"""The whole suite against its own merged OpenAPI document, driven by schemathesis through the gateway.

Every phase runs (the document's examples, boundary values, random fuzzing, and stateful
chains that follow ``Location`` headers and path parameters from one answer into the next
call) with four checks: no 5xx, every status documented for its operation, the documented
content type, and a body that matches the documented schema. The example count is bounded
so the run stays well under two minutes. One worker thread: CPython 3.11's ``ast.parse``
is not safe in concurrent threads (python/cpython#106905), and hypothesis parses lambda
sources while it describes strategies.
"""

from __future__ import annotations

import asyncio
import re
import sys

import pytest

from tests.e2e.conftest import API_KEY, RunningSuite

pytestmark = [pytest.mark.e2e]

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
MAX_EXAMPLES = 25
MAX_SECONDS = 80


async def test_every_answer_of_the_suite_is_documented_and_none_is_a_server_error(suite: RunningSuite) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(suite.gateway.base_url).rstrip("/") + "/openapi.json",
        "--header",
        f"Authorization: Bearer {API_KEY}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--seed",
        "20261203",
        "--generation-deterministic",
        "--request-timeout",
        "20",
        "--workers",
        "1",
        "--output-truncate",
        "false",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), MAX_SECONDS + 60)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-20_000:]
    selected, tested = re.search(r"Selected: \d+/(\d+)", text), re.search(r"Tested: (\d+)", text)
    assert selected is not None
    assert tested is not None
    assert tested.group(1) == selected.group(1), "every operation of the document was tested"
