"""The console's door, without a browser: who gets in, what the session cookie is, and bad input answered with a 4xx."""

from __future__ import annotations

import httpx

from tests.integration.gateway.conftest import KEY, OTHER_KEY, GatewayFactory

SECRET = "console-secret-for-the-tests"


async def test_without_a_secret_there_is_no_console(gateway_for: GatewayFactory) -> None:
    async with gateway_for() as (client, _):
        assert (await client.get("/console/login")).status_code == 404


async def test_only_an_operator_key_signs_in_and_the_cookie_is_httponly_strict_and_signed(gateway_for: GatewayFactory) -> None:
    async with gateway_for(console_secret=SECRET, api_keys=f"ops:{KEY}:operator,bi:{OTHER_KEY}:analyst") as (client, _):
        anonymous = await client.get("/console/")
        assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/console/login")
        assert (await client.post("/console/schedules/daily/trigger")).headers["location"] == "/console/login"

        wrong = await client.post("/console/login", data={"key": "not-a-key-at-all"})
        assert wrong.status_code == 401
        assert "not one of this gateway" in wrong.text
        analyst = await client.post("/console/login", data={"key": OTHER_KEY})
        assert analyst.status_code == 403
        assert "is for operators; &#39;bi&#39; is not one" in analyst.text
        assert "set-cookie" not in analyst.headers

        signed_in = await client.post("/console/login", data={"key": KEY})
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/console/")
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/console" in cookie
        assert KEY.lower() not in cookie, "the cookie names the client, never its key"

        forged = httpx.Cookies({"console_session": signed_in.cookies["console_session"][:-4] + "AAAA"})
        client.cookies = forged
        assert (await client.get("/console/tasks")).headers["location"] == "/console/login"


async def test_bad_input_gets_a_4xx_never_a_500(gateway_for: GatewayFactory) -> None:
    async with gateway_for(console_secret=SECRET, api_keys=f"ops:{KEY}:operator") as (client, _):
        await client.post("/console/login", data={"key": KEY})
        assert (await client.post("/console/login", data={"key": "k" * 600})).status_code == 422
        assert (await client.post("/console/schedules/daily/enabled", data={"enabled": "perhaps"})).status_code == 422
        assert (await client.get("/console/tasks", params={"page_number": "first"})).status_code == 422
        # the upstreams here are closed ports: each page says so instead of failing
        for path in ("/console/", "/console/schedules", "/console/tasks", "/console/queues", "/console/reports?first=someday"):
            answer = await client.get(path)
            assert answer.status_code == 200, (path, answer.text[:300])
        unknown = await client.get("/console/queues/reports/reports.order.created")
        assert unknown.status_code in (502, 503), "the gateway's answer for an unreachable service (or its open breaker)"
        assert "reports" in unknown.text.split("<main>")[1]
