"""The operator console in a real browser (Debian's chromium, headless, through its chromedriver) on the running suite.

Set ``CONSOLE_SCREENSHOTS=docs/console`` to keep a screenshot of each page.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest
from selenium import webdriver
from selenium.common.exceptions import JavascriptException, NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from shared.testing.fixtures import eventually
from tests.e2e.conftest import API_KEY, CLIENT_KEYS, RunningSuite
from tests.integration.orders_service.conftest import order_body

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver (Debian) are required in CI")
        pytest.skip("chromium or chromedriver is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


# A wait that reads the page while a form's redirect replaces it may find the old document gone;
# it reads again on the next poll.
_PAGE_CHANGING = (StaleElementReferenceException, NoSuchElementException, JavascriptException)


def _shot(driver: WebDriver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


def _text(driver: WebDriver) -> str:
    """The page's text in one script call: no element handle to go stale while a redirect replaces the page."""
    return str(driver.execute_script("return document.body ? document.body.innerText : '';"))


def _sign_in(driver: WebDriver, gateway: str, key: str) -> None:
    driver.get(f"{gateway}/console/")
    assert driver.current_url.endswith("/console/login"), "an anonymous visit goes to the sign-in form"
    driver.find_element(By.NAME, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def _until(driver: WebDriver, found: str, *, reload: bool = False, timeout_s: float = 60) -> None:
    def seen(current: WebDriver) -> bool:
        if found in _text(current):
            return True
        if reload:
            current.refresh()
        return False

    WebDriverWait(driver, timeout_s, poll_frequency=0.5, ignored_exceptions=_PAGE_CHANGING).until(
        seen, message=f"{found!r} on {driver.current_url}"
    )


def _sign_in_and_trigger(driver: WebDriver, gateway: str) -> str:
    shop_key = CLIENT_KEYS["shop-a"][0]
    _sign_in(driver, gateway, shop_key)
    assert "The console is for operators; 'shop-a' is not one." in _text(driver)
    driver.find_element(By.NAME, "key").clear()
    driver.find_element(By.NAME, "key").send_keys(API_KEY)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _until(driver, "The suite is healthy")
    assert "reports" in _text(driver)
    cookie = driver.get_cookie("console_session")
    assert cookie is not None
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/console")
    _shot(driver, "health")

    driver.find_element(By.LINK_TEXT, "schedules").click()
    section = driver.find_element(By.ID, "schedule-daily-orders-report")
    assert "0 0 * * * in UTC" in section.text
    section.find_element(By.NAME, "trigger").click()
    _until(driver, "daily-orders-report fired: task")
    task_id = re.search(r"fired: task ([0-9a-f-]{36})", _text(driver))
    assert task_id is not None
    _shot(driver, "schedules")
    return task_id.group(1)


def _task_succeeds(driver: WebDriver, gateway: str, task_id: str) -> None:
    driver.get(f"{gateway}/console/tasks?requested_by=scheduler:daily-orders-report")
    row = f"task-{task_id}"

    def succeeded(current: WebDriver) -> bool:
        found = current.find_elements(By.ID, row)
        if found and "succeeded" in found[0].text:
            return True
        current.refresh()
        return False

    WebDriverWait(driver, 60, poll_frequency=0.5, ignored_exceptions=_PAGE_CHANGING).until(succeeded, message=f"task {task_id} succeeded")
    _shot(driver, "tasks")


def _replay_and_purge(driver: WebDriver, gateway: str) -> None:
    driver.get(f"{gateway}/console/queues")
    _until(driver, "reports.order.created", reload=True)
    _until(driver, "Broker queues")
    _shot(driver, "queues")
    driver.get(f"{gateway}/console/queues/reports/reports.order.created")
    _until(driver, "invalid message", reload=True)
    assert "1 messages parked in reports.order.created.dlq" in _text(driver)
    _shot(driver, "dead-letters")
    driver.find_element(By.NAME, "replay").click()
    _until(driver, "1 messages back in reports.order.created")
    # the same poison is parked again by the consumer; purge asks first
    _until(driver, "invalid message", reload=True)
    driver.find_element(By.NAME, "purge").click()
    _until(driver, "cannot be replayed afterwards")
    driver.find_element(By.NAME, "confirm-purge").click()
    _until(driver, "messages dropped")
    _until(driver, "nothing parked", reload=True)


def _reports_and_sign_out(driver: WebDriver, gateway: str) -> None:
    driver.get(f"{gateway}/console/reports")
    _until(driver, "Orders and products per day")
    bars = [float(bar.get_attribute("height") or 0) for bar in driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.orders")]
    assert len(bars) == 14, "a bar per day of the last two weeks"
    assert bars[-1] > 0, "today's orders"
    _shot(driver, "reports")
    driver.find_element(By.CSS_SELECTOR, "header button").click()
    WebDriverWait(driver, 30).until(lambda current: current.current_url.endswith("/console/login"), message="signed out")
    driver.get(f"{gateway}/console/schedules")
    assert driver.current_url.endswith("/console/login"), "signed out, the pages are closed again"


async def _poison(suite: RunningSuite) -> None:
    """A body the reports consumer cannot read, on order.created: parked at once as malformed."""
    connection = await aio_pika.connect(suite.infrastructure.vhost_url(suite.vhost))
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(suite.exchange)
        message = aio_pika.Message(b"{not json", message_id="poison-1", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await exchange.publish(message, routing_key="order.created")


async def _report_of_three_orders_today(suite: RunningSuite) -> None:
    """Three orders, their facts in, today's report generated: what the reports page draws."""
    for index in range(3):
        body = order_body(items=[{"sku": f"SKU-{index}", "quantity": index + 1, "unit_price": "4.00"}])
        assert (await suite.gateway.post("/orders", json=body)).status_code == 201
    today = datetime.now(UTC).date().isoformat()

    async def facts_in() -> bool:
        days = (await suite.gateway.get("/report/reconciliation", params={"from": today, "to": today})).json()
        return bool(days[0]["facts"] == 3)

    await eventually(facts_in, timeout_s=30, what="the three orders' facts")
    task = (await suite.gateway.post("/report/generate", params={"report_date": today})).json()["task_id"]

    async def generated() -> bool:
        return bool((await suite.gateway.get(f"/report/tasks/{task}")).json()["status"] == "succeeded")

    await eventually(generated, timeout_s=30, what="today's report")


async def test_an_operator_signs_in_triggers_the_default_schedule_and_replays_a_poisoned_message(
    suite: RunningSuite, browser: WebDriver
) -> None:
    gateway = str(suite.gateway.base_url).rstrip("/")
    task_id = await asyncio.to_thread(_sign_in_and_trigger, browser, gateway)
    await asyncio.to_thread(_task_succeeds, browser, gateway, task_id)
    await _poison(suite)
    await asyncio.to_thread(_replay_and_purge, browser, gateway)
    await _report_of_three_orders_today(suite)
    await asyncio.to_thread(_reports_and_sign_out, browser, gateway)
