"""The console in a real headless browser (Debian's chromium and chromium-driver, Selenium).

Log in, open an experiment, page through its pairs, filter them, open one, label ten pairs, and
see the judge-corrected estimate appear once the real Controller has decided on the labels.
Screenshots of each step are kept under tests/output/console/ (ignored by git).
scripts/install.sh installs the browser; without it the test skips, except on CI, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from analysis.controller import Controller
from tests.proxy.conftest import ADMIN_TOKEN, Proxy
from tests.proxy.console_data import seed
from tunegate.redis import RedisSettings, connect

EXP = "exp-shadow"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = Path(__file__).resolve().parents[1] / "output" / "console"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: run scripts/install.sh")
        pytest.skip("chromium and chromium-driver are not installed (scripts/install.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--disable-gpu"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: webdriver.Chrome, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _decide(proxy: Proxy, redis_url: str) -> None:
    """One real controller step (recorded, not applied), as `tunegate decide` takes it."""

    async def step() -> None:
        async with connect(RedisSettings(url=redis_url)) as client:
            await Controller(proxy.settings.experiments, client).step(EXP, apply=False)

    asyncio.run(step())


def _go(driver: webdriver.Chrome, element: WebElement) -> None:
    """Click a link or button and wait until the next page has replaced this one.

    The old page is marked with a window property rather than held as an element: while a
    document is being replaced, chromedriver may answer a check on one of its elements with
    "Node with given id does not belong to the document" instead of a stale-element error
    (seen in CI), which ``staleness_of`` does not treat as stale.
    """
    driver.execute_script("window.tgLeaving = true")
    element.click()
    WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.tgLeaving === undefined && document.readyState === 'complete'"
        )
    )


def _loaded(driver: webdriver.Chrome) -> None:
    """Wait until the document has loaded, so no element of a page being replaced is used."""
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def _text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


@pytest.mark.timeout(180)
def test_log_in_browse_filter_label_and_see_the_corrected_estimate(
    browser: webdriver.Chrome, proxy: Proxy, redis_url: str
) -> None:
    seed(redis_url, EXP, 60)
    _decide(proxy, redis_url)
    shutil.rmtree(SHOTS, ignore_errors=True)

    browser.get(f"{proxy.url}/console/")
    _loaded(browser)
    assert browser.current_url.endswith("/console/login")
    browser.find_element(By.ID, "token").send_keys("wrong")
    _go(browser, browser.find_element(By.ID, "login"))
    assert "not valid" in _text(browser, "error")
    browser.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
    _go(browser, browser.find_element(By.ID, "login"))
    assert browser.current_url.endswith("/console/")
    _shot(browser, "01-experiments")

    _go(browser, browser.find_element(By.LINK_TEXT, EXP))
    assert _text(browser, "action") == "continue"
    assert _text(browser, "corrected") == "—"
    raw_before = _text(browser, "raw")
    _shot(browser, "02-experiment-before-labels")

    _go(browser, browser.find_element(By.ID, "nav-pairs"))
    seen: list[str] = []
    for _ in range(3):  # 60 pairs, 20 a page
        links = browser.find_elements(By.CLASS_NAME, "pair-link")
        assert len(links) == 20
        seen += [str(a.get_attribute("href")) for a in links]
        _go(browser, browser.find_element(By.ID, "older"))
    assert len(set(seen)) == 60
    assert browser.find_elements(By.ID, "end")
    _shot(browser, "03-pairs-last-page")

    _go(browser, browser.find_element(By.ID, "nav-pairs"))
    Select(browser.find_element(By.ID, "f-winner")).select_by_value("tie")
    browser.find_element(By.ID, "f-category").send_keys("task")
    _go(browser, browser.find_element(By.ID, "f-apply"))
    winners = [w.text for w in browser.find_elements(By.CLASS_NAME, "winner")]
    categories = {c.text for c in browser.find_elements(By.CLASS_NAME, "category")}
    assert winners == ["tie"] * 15 and categories == {"task"}  # every 4th of 60
    _shot(browser, "04-pairs-filtered")

    _go(browser, browser.find_elements(By.CLASS_NAME, "pair-link")[0])
    assert "orders disagree" in browser.page_source
    assert len(browser.find_elements(By.CLASS_NAME, "order-raw")) == 2
    _shot(browser, "05-pair")

    _go(browser, browser.find_element(By.ID, "nav-label"))
    for i in range(10):
        assert _text(browser, "done") == str(i)
        # people prefer the control's short answer or call a tie: the judge's length bias shows
        left_is_control = "short answer" in _text(browser, "answer-A")
        pick = "pick-tie" if i % 3 == 2 else "pick-left" if left_is_control else "pick-right"
        _go(browser, browser.find_element(By.ID, pick))
    assert _text(browser, "done") == "10" and _text(browser, "label-count") == "10"
    _shot(browser, "06-labelled-ten")

    _decide(proxy, redis_url)
    _go(browser, browser.find_element(By.LINK_TEXT, EXP))
    corrected = float(_text(browser, "corrected"))
    assert _text(browser, "raw") == raw_before
    assert corrected < float(raw_before) - 0.3  # the labels pull the judge's figure down
    assert _text(browser, "corrected-labels").startswith("10 labelled of 60")
    assert browser.find_elements(By.ID, "win-rate-plot")
    _shot(browser, "07-experiment-corrected")
    assert len(list(SHOTS.glob("*.png"))) == 7
