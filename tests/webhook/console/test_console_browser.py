"""The console in a real headless browser: Debian's chromium driven by Selenium through
/usr/bin/chromedriver (never Selenium Manager, which would download one), against the
app under uvicorn, in a 390 px wide window like a phone.

Without chromium or chromedriver these tests skip with one line, except when CI is set:
then they fail, so a CI machine that lost its browser cannot pass them silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from bot.conversation import ConversationService
from bot.store import Store, TicketStatus
from tests.live import LiveServer
from tests.webhook.console.conftest import console_app
from tests.webhook.console.world import HOSTILE, PASSWORD, PHONE, World

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE_WIDTH, PHONE_HEIGHT = 390, 844


def _missing() -> str | None:
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not absent:
        return None
    return f"{' and '.join(absent)} not installed (apt-get install chromium chromium-driver)"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set: browser tests cannot skip: {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # Headless windows are at least 500 px wide: emulate the phone's screen instead.
    metrics = {"width": PHONE_WIDTH, "height": PHONE_HEIGHT, "pixelRatio": 3.0}
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={PHONE_WIDTH},{PHONE_HEIGHT}",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    except WebDriverException as exc:
        pytest.fail(f"chromium did not start: {exc.msg}")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(service: ConversationService, world: World) -> Iterator[LiveServer]:
    with LiveServer(console_app(service)) as live:
        yield live


def _wait_title(driver: WebDriver, words: str) -> None:
    WebDriverWait(driver, 15).until(expected_conditions.title_contains(words))


def _sign_in(driver: WebDriver, server: LiveServer, login: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{server.url}/console/login")
    driver.find_element(By.ID, "login").send_keys(login)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    _wait_title(driver, "Hàng chờ")


def _press(driver: WebDriver, label: str, then_title: str) -> None:
    buttons = driver.find_elements(By.CSS_SELECTOR, "main form button[type=submit]")
    wanted = [b for b in buttons if b.text.strip() == label]
    assert wanted, f"no button {label!r} among {[b.text for b in buttons]}"
    old = driver.find_element(By.TAG_NAME, "html")
    wanted[0].click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(old))
    _wait_title(driver, then_title)


def _flash(driver: WebDriver) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, "[role=status]").text)


def _fits_the_phone(driver: WebDriver) -> bool:
    """The page is laid out 390 px wide and nothing sticks out sideways."""
    page, window = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    return bool(window == PHONE_WIDTH and page <= window)


def test_sign_in_claim_reply_and_close_in_a_browser(
    browser: WebDriver, server: LiveServer, world: World, store: Store
) -> None:
    ticket = world.ticket("an_hoa")
    _sign_in(browser, server, "Lan")
    assert _fits_the_phone(browser)
    browser.find_element(By.LINK_TEXT, f"Yêu cầu #{ticket.id}").click()
    _wait_title(browser, f"Yêu cầu #{ticket.id}")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert PHONE not in page and HOSTILE in page  # masked; markup shown as text, not run
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main b b") == []
    assert _fits_the_phone(browser)

    _press(browser, "Nhận hỗ trợ", f"Yêu cầu #{ticket.id}")
    assert "Bạn đã nhận hỗ trợ" in _flash(browser)
    reply = "Bác bấm vào nút Đăng nhập nhé."
    browser.find_element(By.ID, "reply").send_keys(reply)
    _press(browser, "Gửi cho người dân", f"Yêu cầu #{ticket.id}")
    assert _flash(browser) == "Đã gửi cho người dân."
    _press(browser, "Kết thúc hỗ trợ", f"Yêu cầu #{ticket.id}")
    assert "chấm điểm" in _flash(browser)
    assert "Đã đóng" in browser.find_element(By.TAG_NAME, "dl").text

    closed = world.handoff.get_ticket(ticket.id)
    assert closed is not None and closed.status == TicketStatus.CLOSED
    assert closed.volunteer_id == world.lan.id
    to_citizen = store.outbox_after(channel="telegram", chat_id=ticket.chat_id)
    assert f"🙋 Lan: {reply}" in [item.text for item in to_citizen]
    assert [b.label for b in to_citizen[-1].buttons] == ["1", "2", "3", "4", "5"]


def test_a_volunteer_cannot_open_another_teams_ticket_in_a_browser(
    browser: WebDriver, server: LiveServer, world: World
) -> None:
    theirs = world.ticket("an_hoa")
    _sign_in(browser, server, "Bình")
    assert f"Yêu cầu #{theirs.id}" not in browser.find_element(By.TAG_NAME, "main").text
    browser.get(f"{server.url}/console/tickets/{theirs.id}")
    _wait_title(browser, "Không tìm thấy")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "Không tìm thấy yêu cầu này." in page
    assert "Nhận hỗ trợ" not in page and "An Hòa" not in page
    still = world.handoff.get_ticket(theirs.id)
    assert still is not None and still.status == TicketStatus.WAITING


def test_coordinator_pages_fit_the_phone_and_sign_out(
    browser: WebDriver, server: LiveServer, world: World
) -> None:
    _sign_in(browser, server, "Điều Phối")
    assert "Tình nguyện viên" in browser.find_element(By.TAG_NAME, "header").text
    for path, title in (("volunteers", "Tình nguyện viên"), ("flows", "Quy trình")):
        browser.get(f"{server.url}/console/{path}")
        _wait_title(browser, title)
        assert _fits_the_phone(browser), path
    _press_header(browser)
    _wait_title(browser, "Đăng nhập")
    browser.get(f"{server.url}/console/queue")
    _wait_title(browser, "Đăng nhập")


def _press_header(driver: WebDriver) -> None:
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "header form button").click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(old))


def test_a_coordinator_hands_back_and_closes_and_a_volunteer_goes_off_duty_in_a_browser(
    browser: WebDriver, server: LiveServer, world: World, store: Store
) -> None:
    held, unclaimed = world.ticket("an_hoa"), world.ticket(None)
    _sign_in(browser, server, "Lan")
    _press(browser, "Tạm nghỉ", "Hàng chờ")
    assert "Bạn đang tạm nghỉ." in browser.find_element(By.ID, "availability").text
    off = world.handoff.get_volunteer(world.lan.id)
    assert off is not None and not off.available
    _press(browser, "Bắt đầu trực", "Hàng chờ")
    browser.get(f"{server.url}/console/tickets/{held.id}")
    _wait_title(browser, f"Yêu cầu #{held.id}")
    _press(browser, "Nhận hỗ trợ", f"Yêu cầu #{held.id}")

    _sign_in(browser, server, "Điều Phối")
    browser.get(f"{server.url}/console/tickets/{held.id}")
    _wait_title(browser, f"Yêu cầu #{held.id}")
    browser.find_element(By.ID, "transfer").send_keys("Lan hết ca")
    _press(browser, "Trả về hàng chờ", f"Yêu cầu #{held.id}")
    assert _flash(browser) == "Đã trả yêu cầu về hàng chờ để bạn khác nhận."
    assert "Lan hết ca" in browser.find_element(By.TAG_NAME, "main").text  # the note
    browser.get(f"{server.url}/console/tickets/{unclaimed.id}")
    _wait_title(browser, f"Yêu cầu #{unclaimed.id}")
    _press(browser, "Đóng yêu cầu (đã lo ở nơi khác)", f"Yêu cầu #{unclaimed.id}")
    assert _flash(browser) == "Đã đóng yêu cầu. Người dân đã được báo."
    assert "Đã đóng" in browser.find_element(By.TAG_NAME, "dl").text
    assert _fits_the_phone(browser)

    back = world.handoff.get_ticket(held.id)
    assert back is not None and back.status == TicketStatus.WAITING
    closed = world.handoff.get_ticket(unclaimed.id)
    assert closed is not None and closed.status == TicketStatus.CLOSED
    told = [i.text for i in store.outbox_after(channel="telegram", chat_id=unclaimed.chat_id)]
    assert told[-1].startswith("Yêu cầu gặp tình nguyện viên của bạn đã được đóng")
