"""The studio page's pronunciation lexicon panel in a real browser (headless Chromium, as in
test_browser.py, whose fixtures it uses): add an entry, try a sentence, remove the entry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("_studio_browser", Path(__file__).with_name("test_browser.py"))
_browser_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_browser_tests)
pytestmark = _browser_tests.pytestmark  # skipped, saying why, without selenium or chromium
server, microphone, browser = _browser_tests.server, _browser_tests.microphone, _browser_tests.browser
_shot, _text, _wait = _browser_tests._shot, _browser_tests._text, _browser_tests._wait
By = pytest.importorskip("selenium.webdriver.common.by").By


def _entries(driver) -> list[str]:
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#lexicon-entries li")]


def test_lexicon_panel_adds_tests_and_removes_entries(server, browser):
    base, _, _ = server
    driver = browser
    driver.get(f"{base}/studio")
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "the page")
    driver.find_element(By.ID, "new-voice-name").send_keys("사전 목소리")
    driver.find_element(By.ID, "create-voice").click()
    _wait(driver, lambda d: d.find_element(By.ID, "lexicon-panel").is_displayed(), "the lexicon panel")
    assert driver.find_element(By.ID, "lexicon-empty").is_displayed()

    driver.find_element(By.ID, "lexicon-written").send_keys("K-pop")
    driver.find_element(By.ID, "lexicon-spoken").send_keys("케이팝")
    driver.find_element(By.ID, "lexicon-add").click()
    _wait(driver, lambda d: len(_entries(d)) == 1, "the new entry")
    assert _entries(driver)[0].startswith("K-pop → 케이팝")

    driver.find_element(By.ID, "lexicon-test-text").send_keys("K-pop 2곡")
    driver.find_element(By.ID, "lexicon-test").click()
    _wait(driver, lambda d: _text(d, "lexicon-test-result") != "", "the test result")
    assert _text(driver, "lexicon-test-result") == "케이팝 2곡 → 케이팝 두 곡"
    _shot(driver, "lexicon-panel")

    driver.find_element(By.CSS_SELECTOR, "#lexicon-entries li button").click()
    _wait(driver, lambda d: _entries(d) == [], "the entry to go")
    assert "Removed K-pop" in _text(driver, "lexicon-status")
