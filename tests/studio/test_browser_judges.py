"""The background take judges in a real browser: after a take the page says the words and the
noise are being checked, then shows the judges' problems when they arrive (headless Chromium,
fake microphone, real uvicorn; fake judges held by the test so both states are seen).
Skipped, saying which is missing, without chromium, chromedriver or selenium."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from moksori.evaluation.judges import DnsmosScores
from moksori.server import ServerSettings, create_app
from moksori.server.studio import configure
from moksori.studio.judging import BackgroundJudges, TakeJudges

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from support.browser import wait_until
except ImportError:  # pragma: no cover - depends on the machine
    webdriver = None

pytestmark = [
    pytest.mark.skipif(webdriver is None, reason="selenium is not installed (pip install selenium)"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"),
    pytest.mark.skipif(CHROMEDRIVER is None, reason="chromedriver is not installed (apt-get install -y chromium-driver)"),
]


class HeldRecogniser:
    def __init__(self) -> None:
        self.gate = threading.Event()

    def transcribe(self, wave: np.ndarray, sample_rate: int, language: str) -> str:
        assert self.gate.wait(60), "the test never released the judge"
        return "전혀 다른 문장을 읽었습니다"


@pytest.fixture
def served(tmp_path: Path, recipes_dir: Path) -> Iterator[tuple[str, HeldRecogniser]]:
    import uvicorn

    from moksori.studio import StudioSettings

    app = create_app(ServerSettings(voices_dir=tmp_path / "voices", db_url=f"sqlite:///{tmp_path / 'm.db'}",
                                    require_api_keys=False))
    configure(app, StudioSettings(data_dir=tmp_path / "studio", recipes_dir=recipes_dir, default_recipe="tiny"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    recogniser = HeldRecogniser()
    scores = lambda wave, rate: DnsmosScores(sig=3.4, bak=2.1, ovrl=2.5, p808=3.0)  # noqa: E731
    app.state.studio.service.background_judges = BackgroundJudges(TakeJudges(recogniser, scores))
    yield f"http://127.0.0.1:{port}", recogniser
    recogniser.gate.set()
    server.should_exit = True
    thread.join(30)


@pytest.fixture
def driver(tmp_path: Path, spoken, launch_chromium) -> Iterator[object]:
    _, wave = spoken[0]
    pause = np.zeros(int(0.3 * 22050), np.float32)
    microphone = tmp_path / "microphone.wav"
    soundfile.write(str(microphone), np.concatenate([pause, wave * 0.8, pause]), 22050, subtype="PCM_16")
    browser = launch_chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-audio-capture={microphone}")
    try:
        yield browser
    finally:
        browser.quit()


def _wait(driver, condition, what: str, timeout_s: float = 30):
    return wait_until(driver, condition, what, timeout_s)


def _codes(driver) -> list[str]:
    return [li.get_attribute("data-code") for li in driver.find_elements(By.CSS_SELECTOR, "#verdict li")]


def _record_pending_take(driver, base: str, name: str):
    """Creates the voice ``name``, records its first prompt and returns the judges' note the page
    shows while they work."""
    driver.get(f"{base}/studio")
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "the page")
    driver.find_element(By.ID, "new-voice-name").send_keys(name)
    driver.find_element(By.ID, "create-voice").click()
    _wait(driver, lambda d: d.find_element(By.ID, "prompt-position").text == "1 / 568", "the first prompt")
    if driver.find_element(By.ID, "guide").is_displayed():
        driver.find_element(By.ID, "guide-close").click()
    webdriver.ActionChains(driver).send_keys(Keys.SPACE).perform()
    _wait(driver, lambda d: "recording" in d.find_element(By.ID, "record-state").get_attribute("class"), "recording")
    time.sleep(2.5)
    webdriver.ActionChains(driver).send_keys(Keys.SPACE).perform()
    return _wait(driver, lambda d: d.find_elements(By.ID, "judges-note"), "the judges' note")[0]


def test_the_page_shows_the_judges_checking_and_then_their_problems(served, driver):
    base, recogniser = served
    note = _record_pending_take(driver, base, "심사")
    assert note.get_attribute("data-status") == "pending" and "Checking the words" in note.text
    recogniser.gate.set()
    _wait(driver, lambda d: "words_mismatch" in _codes(d), "the judges' verdict")
    assert "noisy_background" in _codes(driver)
    verdict = driver.find_element(By.ID, "verdict").text
    assert "differ from the script" in verdict and "전혀 다른 문장을 읽었습니다" in verdict
    assert not driver.find_elements(By.ID, "judges-note")
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


def test_a_delete_confirmation_stays_open_when_the_judges_verdict_arrives(served, driver):
    """Delete take asks first; the judges' verdict arriving meanwhile redraws the verdict but
    must not close the question the user is answering."""
    base, recogniser = served
    _record_pending_take(driver, base, "확인")
    driver.find_element(By.ID, "discard").click()
    assert driver.find_element(By.ID, "discard-confirm").is_displayed()
    recogniser.gate.set()
    _wait(driver, lambda d: "words_mismatch" in _codes(d), "the judges' verdict")
    assert driver.find_element(By.ID, "discard-confirm").is_displayed(), "the judges' verdict closed the question"
    assert not driver.find_element(By.ID, "discard").is_displayed()
    driver.find_element(By.ID, "discard-yes").click()
    _wait(driver, lambda d: "deleted" in d.find_element(By.ID, "record-state").text, "the deletion")
    assert driver.find_element(By.ID, "take-info").text == "no take yet"


# Date.now() runs ahead by window.__skewMs, so the test can pass the page's 90 s wait for the judges at once.
SKEWED_CLOCK_JS = """
(() => {
  const now = Date.now.bind(Date);
  window.__skewMs = 0;
  Date.now = () => now() + window.__skewMs;
})();
"""


def _stalled_note(driver) -> str:
    notes = driver.find_elements(By.ID, "judges-note")
    return notes[0].text if notes and notes[0].get_attribute("data-status") == "stalled" else ""


def test_judges_that_never_answer_are_said_with_a_retry(served, driver):
    """"Checking the words…" stayed on screen for good when the judges gave no verdict within the
    page's 90 s, and when asking for it failed; the page now says which, and "Check again"
    asks again and shows the verdict."""
    base, recogniser = served
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SKEWED_CLOCK_JS})
    _record_pending_take(driver, base, "무응답")
    driver.execute_script("window.__skewMs = 100000")  # 100 s later, still no verdict (the judge is held)
    _wait(driver, _stalled_note, "the page to give up waiting")
    assert "no verdict after 90 s" in _stalled_note(driver) and "Checking the words" not in _text_of(driver)
    assert driver.find_element(By.ID, "judges-retry").is_displayed()

    driver.execute_script("window.__skewMs = 0")
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/studio/recordings/*"]})
    driver.find_element(By.ID, "judges-retry").click()
    _wait(driver, lambda d: "asking the server failed" in _stalled_note(d), "a failed request to be said")

    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    recogniser.gate.set()
    driver.find_element(By.ID, "judges-retry").click()
    _wait(driver, lambda d: "words_mismatch" in _codes(d), "the judges' verdict after Check again")
    assert not driver.find_elements(By.ID, "judges-note")


def _text_of(driver) -> str:
    return driver.find_element(By.ID, "verdict").text
