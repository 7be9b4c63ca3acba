"""Selenium helpers shared by the studio's browser tests (``tests`` is on the test path)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"


def save_shot(driver: Any, name: str) -> None:
    """A screenshot ``out/screenshots/<name>.png`` (not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def wait_until(driver: Any, condition: Callable[[Any], Any], what: str, timeout_s: float = 30,
               shot: str | None = None) -> Any:
    """The first truthy value of ``condition(driver)``; on timeout an AssertionError naming
    ``what`` with the browser console, after a screenshot ``shot`` (when given)."""
    try:
        # A list the page redraws may go stale while it is read: read it again.
        return WebDriverWait(driver, timeout_s, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d))
    except TimeoutException:
        if shot:
            save_shot(driver, shot)
        logs = "\n".join(entry["message"] for entry in driver.get_log("browser"))
        raise AssertionError(f"timed out waiting for {what}; browser console:\n{logs}") from None
