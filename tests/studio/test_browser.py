"""The studio in a real browser: headless Chromium with a fake microphone playing an espeak
clip opens /studio on a real uvicorn server, creates a voice, records two prompts with the
space bar and sees the verdicts; the takes land in the database and on disk.

Screenshots of the page's main states go to ``out/screenshots/`` (not committed).
Needs the Debian packages ``chromium`` and ``chromium-driver`` and the ``selenium`` package;
skipped, saying which is missing, without them.
"""

from __future__ import annotations

import io
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from sqlalchemy import select

from moksori.server import ServerSettings, create_app
from moksori.server.studio import configure
from moksori.store import Database, Recording, Voice

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from support.browser import save_shot, wait_until
except ImportError:  # pragma: no cover - depends on the machine
    webdriver = None

pytestmark = [
    pytest.mark.skipif(webdriver is None, reason="selenium is not installed (pip install selenium)"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"),
    pytest.mark.skipif(CHROMEDRIVER is None, reason="chromedriver is not installed (apt-get install -y chromium-driver)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path, recipes_dir: Path) -> Iterator[tuple[str, Path, object]]:
    """A real uvicorn serving the app (studio included) on a free loopback port."""
    import uvicorn

    from moksori.studio import StudioSettings

    db_url = f"sqlite:///{tmp_path / 'moksori.db'}"
    app = create_app(ServerSettings(voices_dir=tmp_path / "voices", db_url=db_url, require_api_keys=False))
    studio = StudioSettings(data_dir=tmp_path / "studio", recipes_dir=recipes_dir, default_recipe="tiny")
    configure(app, studio)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", tmp_path, studio
    uv.should_exit = True
    thread.join(30)


@pytest.fixture
def microphone(tmp_path: Path, spoken) -> Path:
    """A WAV for Chromium's fake microphone: an espeak sentence with short pauses around it."""
    _, wave = spoken[0]
    pause = np.zeros(int(0.3 * 22050), np.float32)
    path = tmp_path / "microphone.wav"
    soundfile.write(str(path), np.concatenate([pause, wave * 0.8, pause]), 22050, subtype="PCM_16")
    return path


@pytest.fixture
def browser(microphone: Path, launch_chromium) -> Iterator[object]:
    driver = launch_chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                             f"--use-file-for-fake-audio-capture={microphone}")
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver, name: str) -> None:
    save_shot(driver, f"{name}")


def _wait(driver, condition, what: str, timeout_s: float = 30):
    return wait_until(driver, condition, what, timeout_s, shot=f"failed-{what.replace(' ', '-')}")


def _text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _open_studio(driver, base: str) -> None:
    driver.get(f"{base}/studio")
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "the page")


def _create_voice(driver, name: str) -> None:
    """Type a new voice's name and create it (each caller waits for what it needs next)."""
    driver.find_element(By.ID, "new-voice-name").send_keys(name)
    driver.find_element(By.ID, "create-voice").click()


def _new_voice_at_its_first_prompt(driver, base: str, name: str) -> None:
    """Opens the studio, creates the voice ``name`` and waits for its first prompt, the guide closed."""
    _open_studio(driver, base)
    _create_voice(driver, name)
    _wait(driver, lambda d: _text(d, "prompt-position") == "1 / 568", "the first prompt")
    if driver.find_element(By.ID, "guide").is_displayed():
        driver.find_element(By.ID, "guide-close").click()


def _record_for(driver, seconds: float) -> None:
    """Space, ``seconds`` of the fake microphone, Space; no wait for what the page makes of the take."""
    _press(driver, Keys.SPACE)
    _wait(driver, lambda d: "recording" in d.find_element(By.ID, "record-state").get_attribute("class"), "recording")
    time.sleep(seconds)
    _press(driver, Keys.SPACE)


def _record_take(driver, seconds: float, shot: str | None = None) -> tuple[str, float]:
    """Space, speak for ``seconds`` (the fake microphone plays), Space; returns the verdict and
    the widest the level meter got meanwhile (px)."""
    before = _text(driver, "take-info")
    webdriver.ActionChains(driver).send_keys(Keys.SPACE).perform()
    _wait(driver, lambda d: "recording" in d.find_element(By.ID, "record-state").get_attribute("class"), "recording")
    meter, end = 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        width = driver.find_element(By.ID, "meter-bar").value_of_css_property("width")
        meter = max(meter, float(width.removesuffix("px")))
        time.sleep(0.05)
    if shot:
        _shot(driver, shot)
    webdriver.ActionChains(driver).send_keys(Keys.SPACE).perform()
    _wait(driver, lambda d: _text(d, "take-info") != before and _text(d, "verdict"), "the verdict")
    return _text(driver, "verdict"), meter


def test_record_two_prompts_in_the_browser(server, browser, spoken):
    base, root, studio = server
    driver = browser
    _open_studio(driver, base)
    _shot(driver, "01-start")

    _create_voice(driver, "브라우저 목소리")
    _wait(driver, lambda d: d.find_element(By.ID, "recorder").is_displayed(), "the recorder")
    _wait(driver, lambda d: _text(d, "prompt-text") == "안녕하세요, 만나서 반갑습니다.", "the first prompt")
    assert _text(driver, "prompt-position") == "1 / 568"
    _shot(driver, "02-voice-created")

    first, meter = _record_take(driver, 2.5, shot="03-recording")
    _shot(driver, "04-verdict")
    assert "take" in first and ("Good take" in first or "with this take" in first), first
    assert meter > 0, "the level meter never moved"

    webdriver.ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
    _wait(driver, lambda d: _text(d, "prompt-position") == "2 / 568", "the second prompt")
    second, _ = _record_take(driver, 2.0)
    _shot(driver, "05-second-take")
    assert "take" in second, second

    webdriver.ActionChains(driver).send_keys(Keys.ARROW_LEFT).perform()
    _wait(driver, lambda d: _text(d, "prompt-position") == "1 / 568", "back to the first prompt")
    assert _text(driver, "take-info") == "1 take"

    with Database(f"sqlite:///{root / 'moksori.db'}") as db, db.session() as session:
        (voice,) = session.scalars(select(Voice)).all()
        takes = session.scalars(select(Recording).order_by(Recording.id)).all()
    assert voice.name == "브라우저 목소리"
    assert [take.voice_id for take in takes] == [voice.id, voice.id]
    assert takes[0].prompt_id != takes[1].prompt_id
    for take in takes:
        path = studio.data_dir.resolve() / take.path
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert 1.0 < info.duration < 4.5 and take.duration_s == pytest.approx(info.duration, abs=1e-3)
        assert take.quality["rms_dbfs"] > -60, "the fake microphone's speech did not arrive"
    _train_from_the_page(driver, base, voice.id, spoken)
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


def _train_from_the_page(driver, base: str, voice_id: int, spoken) -> None:
    """Four more takes through the API, then Start training on the page until the run ends. (The
    fake microphone loops its clip, so a take stopped by a key press may well be judged cut off
    and not kept: four API takes are enough for training either way.)"""
    import httpx

    with httpx.Client(base_url=base) as http:
        sets = http.get("/api/studio/prompt-sets").json()["prompt_sets"]
        ko = next(s["id"] for s in sets if s["language"] == "ko" and s["source"] == "builtin")
        ids = {p["text"]: p["id"] for p in http.get(f"/api/studio/prompt-sets/{ko}/prompts").json()["prompts"]}
        for text, wave in spoken[2:6]:
            buffer = io.BytesIO()
            soundfile.write(buffer, wave, 22050, format="WAV")
            response = http.post(f"/api/studio/voices/{voice_id}/takes", data={"prompt_id": str(ids[text])},
                                 files={"audio": ("take.wav", buffer.getvalue())})
            assert response.status_code == 201, response.text
    driver.refresh()
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "the page again")
    _wait(driver, lambda d: d.find_element(By.ID, "start-training").is_enabled(), "training to be possible")
    assert _text(driver, "progress-prompts") in ("4 / 568", "5 / 568", "6 / 568")
    driver.find_element(By.ID, "start-training").click()
    _wait(driver, lambda d: "running" in _text(d, "training-status") or "queued" in _text(d, "training-status"),
          "the run to start")
    _shot(driver, "06-training")
    _wait(driver, lambda d: "succeeded" in _text(d, "training-status"), "the run to succeed", timeout_s=120)
    assert "voice bundle written" in _text(driver, "training-log")
    # The voice list says so at once, without a reload.
    _wait(driver, lambda d: "✓ trained" in _text(d, "voice-select"), "the voice marked trained")
    # Long lines wrap instead of scrolling sideways: in a 300 px box, a line of over 60 characters
    # (at least 6 px each) cannot fit unwrapped.
    log = driver.find_element(By.ID, "training-log")
    assert max(len(line) for line in log.get_attribute("textContent").splitlines()) > 60
    driver.execute_script("arguments[0].style.width = '300px'", log)
    assert driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", log)
    _shot(driver, "07-trained")


# Replaces the microphone with a WebAudio stream that is silent until the test plays a clip into it
# (window.__speak(base64 int16 PCM, rate)): takes then hold exactly the speech and silence wanted.
FEED_JS = """
(() => {
  let feed = null;
  const open = async () => {
    if (!feed) {
      const context = new AudioContext();
      await context.resume();
      feed = { context, destination: context.createMediaStreamDestination() };
    }
    return feed;
  };
  navigator.mediaDevices.getUserMedia = async () => (await open()).destination.stream;
  window.__speak = async (data, rate) => {
    const { context, destination } = await open();
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const pcm = new Int16Array(bytes.buffer);
    const buffer = context.createBuffer(1, pcm.length, rate);
    buffer.getChannelData(0).set(Float32Array.from(pcm, (v) => v / 32768));
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(destination);
    source.start();
    return buffer.duration;
  };
})();
"""


def _speak(driver, wave: np.ndarray) -> float:
    import base64

    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
    return driver.execute_script("return window.__speak(arguments[0], 22050);", base64.b64encode(pcm).decode())


def _codes(driver) -> list[str]:
    return [li.get_attribute("data-code") for li in driver.find_elements(By.CSS_SELECTOR, "#verdict li")]


def _press(driver, key) -> None:
    webdriver.ActionChains(driver).send_keys(key).perform()


def _wait_verdict(driver, before: str, what: str) -> str:
    _wait(driver, lambda d: _text(d, "take-info") != before and _text(d, "verdict"), what)
    return _text(driver, "verdict")


def test_cut_off_and_late_start_takes_get_their_verdicts(server, browser, spoken):
    """A take stopped mid-speech is "cut off"; one that starts after 2.5 s of silence is a late
    start (stopped by itself after the trailing pause, stored trimmed); Esc cancels; deleting
    asks first; a clean take is good."""
    base, root, studio = server
    driver = browser
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FEED_JS})
    _open_studio(driver, base)
    assert "without an account" in _text(driver, "account-name")
    _create_voice(driver, "판정")
    _wait(driver, lambda d: _text(d, "prompt-text") == spoken[0][0], "the first prompt")
    assert driver.find_element(By.ID, "guide").is_displayed()  # the first visit's guide
    driver.find_element(By.ID, "guide-close").click()
    assert not driver.find_element(By.ID, "guide").is_displayed()

    # 1. Stopped while speaking: Space, speech starts, Space again while the level is high.
    _press(driver, Keys.SPACE)
    _wait(driver, lambda d: "recording" in d.find_element(By.ID, "record-state").get_attribute("class"), "recording")
    started = time.monotonic()
    length = _speak(driver, spoken[0][1])
    loud = lambda d: float(d.find_element(By.ID, "meter-bar").value_of_css_property("width").removesuffix("px")) > 250
    _wait(driver, lambda d: time.monotonic() - started > 1.2 and loud(d), "loud speech")
    _press(driver, Keys.SPACE)
    verdict = _wait_verdict(driver, "no take yet", "the cut-off verdict")
    _shot(driver, "10-cut-off-take")
    assert "cut_off_end" in _codes(driver) and "Cut off" in verdict, verdict
    assert driver.find_element(By.ID, "waveform").get_attribute("data-take")

    time.sleep(max(0.0, started + length + 0.2 - time.monotonic()))  # the sentence plays on: let it end

    # 2. Esc cancels a take: nothing is uploaded.
    _press(driver, Keys.SPACE)
    _wait(driver, lambda d: "recording" in d.find_element(By.ID, "record-state").get_attribute("class"), "recording")
    time.sleep(0.3)
    _press(driver, Keys.ESCAPE)
    _wait(driver, lambda d: "Cancelled" in _text(d, "record-state"), "the cancel")
    assert _text(driver, "take-info") == "1 take"

    # 3. A late start on the next prompt: 2.5 s of silence, then the sentence; no key stops it.
    _press(driver, Keys.ARROW_RIGHT)
    _wait(driver, lambda d: _text(d, "prompt-text") == spoken[1][0], "the second prompt")
    _press(driver, Keys.SPACE)
    _wait(driver, lambda d: "recording" in d.find_element(By.ID, "record-state").get_attribute("class"), "recording")
    time.sleep(2.5)
    _speak(driver, spoken[1][1])
    verdict = _wait_verdict(driver, "no take yet", "the late-start verdict (after the automatic stop)")
    _shot(driver, "11-late-start-take")
    assert _codes(driver) == ["late_start"], (verdict, _codes(driver))
    assert "trimmed" in _text(driver, "trim-note") and driver.find_element(By.ID, "untrim").is_displayed()
    _wait(driver, lambda d: d.find_element(By.ID, "waveform").get_attribute("data-take"), "the waveform")

    # 4. Delete asks first; "Keep it" keeps it, "Delete it" deletes and the page stops saying "Saved".
    driver.find_element(By.ID, "discard").click()
    assert driver.find_element(By.ID, "discard-confirm").is_displayed()
    driver.find_element(By.ID, "discard-no").click()
    assert driver.find_element(By.ID, "discard").is_displayed() and _text(driver, "take-info") == "1 take"
    driver.find_element(By.ID, "discard").click()
    driver.find_element(By.ID, "discard-yes").click()
    _wait(driver, lambda d: "deleted" in _text(d, "record-state"), "the deletion")
    assert "Saved" not in _text(driver, "record-state") and _text(driver, "take-info") == "no take yet"

    # 5. A clean take of the same prompt: speech right away, automatic stop, good.
    _press(driver, Keys.SPACE)
    _wait(driver, lambda d: "recording" in d.find_element(By.ID, "record-state").get_attribute("class"), "recording")
    time.sleep(0.3)
    _speak(driver, spoken[1][1])
    verdict = _wait_verdict(driver, "no take yet", "the good verdict")
    _shot(driver, "12-good-take")
    assert "Good take" in verdict, verdict
    marks = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#prompt-list li")[:2]]
    assert marks[0].startswith("! ") and marks[1].startswith("✓ "), marks

    with Database(f"sqlite:///{root / 'moksori.db'}") as db, db.session() as session:
        takes = session.scalars(select(Recording).order_by(Recording.id)).all()
    assert [t.verdict.split(",")[0] if t.verdict != "ok" else "ok" for t in takes][-1] == "ok"
    assert "cut_off_end" in takes[0].verdict and len(takes) == 2
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


def test_phone_touch_hints_and_prompt_upload_warnings(server, browser, tmp_path):
    """On a 390x844 touch screen the hints name the buttons, not keys, and nothing overflows; an
    uploaded prompt file's emoji and Chinese lines are listed by line."""
    base, _, _ = server
    driver = browser
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    _open_studio(driver, base)
    _create_voice(driver, "전화")
    _wait(driver, lambda d: d.find_element(By.ID, "recorder").is_displayed(), "the recorder")
    assert _text(driver, "record-state") == "Tap ● Record to start recording."
    assert not driver.find_element(By.ID, "keys-hint").is_displayed()
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390

    prompts = tmp_path / "my sentences.txt"
    prompts.write_text("안녕하세요.\n오늘 날씨 좋네요 😀\n我爱你 사랑해\n고맙습니다.\n", "utf-8")
    driver.find_element(By.CSS_SELECTOR, "#upload-prompts-form").find_element(By.XPATH, "..").find_element(
        By.TAG_NAME, "summary").click()
    driver.find_element(By.ID, "prompt-file").send_keys(str(prompts))
    driver.find_element(By.CSS_SELECTOR, "#upload-prompts-form button[type=submit]").click()
    _wait(driver, lambda d: d.find_element(By.ID, "prompt-warnings").is_displayed(), "the upload's warnings")
    warnings = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#prompt-warnings li")]
    assert len(warnings) == 2 and ":2:" in warnings[0] and "😀" in warnings[0], warnings
    assert ":3:" in warnings[1] and "我" in warnings[1], warnings
    driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "prompt-warnings"))
    _shot(driver, "13-phone-prompt-warnings")
    assert _text(driver, "prompt-position") == "1 / 4"


def test_every_form_control_of_the_studio_has_a_label(server, browser):
    """A screen reader names each field: a <label> or aria-label, not a placeholder that vanishes
    while typing (the language <select>s had no name at all)."""
    base, _, _ = server
    driver = browser
    _open_studio(driver, base)
    unlabelled = driver.execute_script("""
      return [...document.querySelectorAll('input, select, textarea')]
        .filter((e) => e.type !== 'hidden' && !e.labels.length && !e.getAttribute('aria-label'))
        .map((e) => e.id || e.name);""")
    assert unlabelled == [], unlabelled
    # What recording is doing ("Recording…", "Saved", "could not be saved") is announced, as the verdict is.
    assert driver.find_element(By.ID, "record-state").get_attribute("aria-live") == "polite"
    assert driver.find_element(By.ID, "waveform").get_attribute("role") == "img"  # else its aria-label is not read


# Holds each take upload for a second and a half, as a slow network or a busy server does.
SLOW_UPLOAD_JS = """
(() => {
  const fetchNow = window.fetch.bind(window);
  window.fetch = async (url, init) => {
    if (String(url).endsWith("/takes")) await new Promise((resolve) => setTimeout(resolve, 1500));
    return fetchNow(url, init);
  };
})();
"""


def test_the_prompt_list_waits_while_a_take_uploads(server, browser):
    """Clicking another prompt in the list while a take uploads showed that take (and its Keep /
    Delete buttons) under the other prompt's sentence; the list now waits, as ← → do."""
    base, _, _ = server
    driver = browser
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SLOW_UPLOAD_JS})
    _new_voice_at_its_first_prompt(driver, base, "느린 망")
    _record_for(driver, 2.0)
    _wait(driver, lambda d: "Checking the take" in _text(d, "record-state"), "the upload")
    driver.find_elements(By.CSS_SELECTOR, "#prompt-list li")[1].click()
    _wait(driver, lambda d: _text(d, "verdict"), "the verdict")
    assert _text(driver, "prompt-position") == "1 / 568"
    assert _text(driver, "take-info") == "1 take"


def _two_voices_then_record(driver) -> None:
    """On the loaded studio page: create the voices 첫째 and 둘째 (둘째 selected), then start a take."""
    from selenium.webdriver.support.ui import Select

    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "the page")
    for name in ("첫째", "둘째"):
        if not driver.find_element(By.ID, "new-voice-name").is_displayed():
            driver.find_element(By.CSS_SELECTOR, "#new-voice summary").click()
        _create_voice(driver, name)
        _wait(driver, lambda d: name in Select(d.find_element(By.ID, "voice-select")).first_selected_option.text, name)
    if driver.find_element(By.ID, "guide").is_displayed():
        driver.find_element(By.ID, "guide-close").click()
    driver.find_element(By.ID, "record").click()
    _wait(driver, lambda d: "recording" in d.find_element(By.ID, "record-state").get_attribute("class"), "recording")


def test_switching_the_voice_cancels_a_take_being_recorded(server, browser):
    """A take begun for one voice's sentence and stopped after switching to another voice was
    stored under the other voice's current prompt: a different sentence. Switching cancels it."""
    from selenium.webdriver.support.ui import Select

    base, root, _ = server
    driver = browser
    driver.get(f"{base}/studio")
    _two_voices_then_record(driver)
    time.sleep(1.0)
    Select(driver.find_element(By.ID, "voice-select")).select_by_visible_text("첫째 (ko)")
    _wait(driver, lambda d: "Cancelled" in _text(d, "record-state"), "the take to be cancelled")
    assert _text(driver, "record") == "● Record"
    driver.find_element(By.ID, "record").click()  # starts a new take: nothing was left running
    _wait(driver, lambda d: "recording" in d.find_element(By.ID, "record-state").get_attribute("class"), "a new take")
    _press(driver, Keys.ESCAPE)
    with Database(f"sqlite:///{root / 'moksori.db'}") as db, db.session() as session:
        assert session.scalars(select(Recording)).all() == []


def test_a_take_uploading_while_the_voice_is_switched_is_not_shown_under_the_other_voice(server, browser):
    """The upload's verdict (and its Keep / Delete buttons) belongs to the voice and prompt it was
    recorded for; opened meanwhile, the other voice shows its own prompt, with no take."""
    from selenium.webdriver.support.ui import Select

    base, _, _ = server
    driver = browser
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SLOW_UPLOAD_JS})
    driver.get(f"{base}/studio")
    _two_voices_then_record(driver)
    time.sleep(2.0)
    driver.find_element(By.ID, "record").click()
    _wait(driver, lambda d: "Checking the take" in _text(d, "record-state"), "the upload")
    Select(driver.find_element(By.ID, "voice-select")).select_by_visible_text("첫째 (ko)")
    _wait(driver, lambda d: "Checking the take" not in _text(d, "record-state"), "the upload to end")
    time.sleep(0.5)
    assert _text(driver, "take-info") == "no take yet" and _text(driver, "verdict") == ""
    assert not driver.find_element(By.ID, "take-actions").is_displayed()


# While window.__holdRuns is set, a run's status request waits for window.__releaseRuns().
HELD_RUN_POLL_JS = """
(() => {
  const fetchNow = window.fetch.bind(window);
  window.__heldRuns = 0;
  window.fetch = async (url, init) => {
    if (window.__holdRuns && /\\/api\\/studio\\/training\\/\\d+$/.test(String(url))) {
      window.__heldRuns += 1;
      await new Promise((resolve) => { window.__releaseRuns = resolve; });
    }
    return fetchNow(url, init);
  };
})();
"""


def test_a_run_status_arriving_after_the_voice_is_switched_stays_with_its_voice(server, browser, spoken):
    """Voice A trains; a status poll of A's run still on its way when voice B is opened was shown
    under B (Start training there said "A run is in progress", and the page went on polling A)."""
    import httpx
    from selenium.webdriver.support.ui import Select

    base, _, _ = server
    driver = browser
    with httpx.Client(base_url=base) as http:
        first = http.post("/api/studio/voices", json={"name": "훈련", "language": "ko"}).json()["id"]
        sets = http.get("/api/studio/prompt-sets").json()["prompt_sets"]
        ko = next(s["id"] for s in sets if s["language"] == "ko" and s["source"] == "builtin")
        ids = {p["text"]: p["id"] for p in http.get(f"/api/studio/prompt-sets/{ko}/prompts").json()["prompts"]}
        for text, wave in spoken[:4]:
            buffer = io.BytesIO()
            soundfile.write(buffer, wave, 22050, format="WAV")
            take = http.post(f"/api/studio/voices/{first}/takes", data={"prompt_id": str(ids[text])},
                             files={"audio": ("take.wav", buffer.getvalue())}).json()["recording"]["id"]
            http.patch(f"/api/studio/recordings/{take}", json={"kept": True})
        run = http.post(f"/api/studio/voices/{first}/training", json={"recipe": "tiny_long"}).json()["id"]
        http.post("/api/studio/voices", json={"name": "새것", "language": "ko"})
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HELD_RUN_POLL_JS})
            _open_studio(driver, base)
            Select(driver.find_element(By.ID, "voice-select")).select_by_visible_text("훈련 (ko)")
            _wait(driver, lambda d: "A run is in progress" in _text(d, "start-reason"), "voice A's run")
            driver.execute_script("window.__holdRuns = true;")
            _wait(driver, lambda d: d.execute_script("return window.__heldRuns") > 0, "a held status poll")
            Select(driver.find_element(By.ID, "voice-select")).select_by_visible_text("새것 (ko)")
            _wait(driver, lambda d: "needs at least" in _text(d, "start-reason"), "voice B's form")
            driver.execute_script("window.__holdRuns = false; window.__releaseRuns();")
            time.sleep(3)  # the released poll, and the next one if it were scheduled
            assert "needs at least" in _text(driver, "start-reason"), _text(driver, "start-reason")
            assert driver.execute_script("return window.__heldRuns") == 1
        finally:
            http.post(f"/api/studio/training/{run}/cancel")


def test_deleting_a_voice_asks_for_its_name_in_the_page_own_words(server, browser):
    """A wrong name in "Delete this voice" says to type the name (the toast showed the API's
    "send confirm='…'"); the right one deletes the voice."""
    base, _, _ = server
    driver = browser
    _open_studio(driver, base)
    _create_voice(driver, "지울것")
    _wait(driver, lambda d: d.find_element(By.ID, "details").is_displayed(), "the voice")
    driver.find_element(By.ID, "delete-confirm").send_keys("지울", Keys.ENTER)
    _wait(driver, lambda d: d.find_element(By.ID, "toast").get_attribute("class") == "error", "the refusal")
    assert "type" in _text(driver, "toast").lower() and "confirm=" not in _text(driver, "toast"), _text(driver, "toast")
    assert "지울것" in _text(driver, "voice-select")
    driver.find_element(By.ID, "delete-confirm").send_keys("것", Keys.ENTER)
    _wait(driver, lambda d: "deleted" in _text(d, "toast"), "the deletion")
    # The toast comes before the voice list is reloaded: wait for the list, not only the toast.
    _wait(driver, lambda d: _text(d, "voice-select") == "", "the voice list without the voice")
    assert not driver.find_element(By.ID, "details").is_displayed()


def _focused_prompt(driver) -> dict | None:
    """The prompt list item that has keyboard focus: its position, aria-selected, aria-label, outline."""
    return driver.execute_script("""
      const item = document.activeElement;
      if (!item || !item.matches('#prompt-list li')) return null;
      return {index: [...item.parentElement.children].indexOf(item), selected: item.getAttribute('aria-selected'),
              label: item.getAttribute('aria-label'), role: item.getAttribute('role'),
              outline: getComputedStyle(item).outlineStyle};""")


def test_the_prompt_list_works_from_the_keyboard(server, browser):
    """The prompt list was reachable by mouse only: Tab now reaches it (the prompt shown is its one
    Tab stop, with a visible focus ring), ↑ ↓ Home End move and select, Enter selects, each item
    is an option named for a screen reader, and a take recorded meanwhile keeps the focus there."""
    base, _, _ = server
    driver = browser
    _new_voice_at_its_first_prompt(driver, base, "건반")
    assert driver.find_element(By.ID, "prompt-list").get_attribute("role") == "listbox"
    for _ in range(80):
        if _focused_prompt(driver):
            break
        _press(driver, Keys.TAB)
    focused = _focused_prompt(driver)
    assert focused, "Tab never reached the prompt list"
    assert focused["index"] == 0 and focused["selected"] == "true" and focused["role"] == "option"
    assert focused["label"] == f"1. {_text(driver, 'prompt-text')}"
    assert focused["outline"] != "none", "no visible focus"

    _press(driver, Keys.ARROW_DOWN)
    _wait(driver, lambda d: _text(d, "prompt-position") == "2 / 568", "↓ to select the second prompt")
    _press(driver, Keys.ARROW_DOWN)
    _wait(driver, lambda d: _text(d, "prompt-position") == "3 / 568", "↓ to select the third prompt")
    _press(driver, Keys.ARROW_UP)
    _wait(driver, lambda d: _text(d, "prompt-position") == "2 / 568", "↑ to go back")
    assert _focused_prompt(driver)["index"] == 1 and _focused_prompt(driver)["selected"] == "true"
    _press(driver, Keys.END)
    _wait(driver, lambda d: _text(d, "prompt-position") == "568 / 568", "End")
    _press(driver, Keys.HOME)
    _wait(driver, lambda d: _text(d, "prompt-position") == "1 / 568", "Home")
    # Enter selects the focused item (focused here by script, as a screen reader's cursor can).
    driver.execute_script("document.querySelectorAll('#prompt-list li')[4].focus()")
    _press(driver, Keys.ENTER)
    _wait(driver, lambda d: _text(d, "prompt-position") == "5 / 568", "Enter to select the focused prompt")
    selected = driver.find_elements(By.CSS_SELECTOR, "#prompt-list li[aria-selected='true']")
    assert len(selected) == 1 and selected[0].get_attribute("tabindex") == "0"

    _record_take(driver, 2.0)  # Space from the list records; the list is redrawn with the take's mark
    focused = _focused_prompt(driver)
    assert focused and focused["index"] == 4, "the redrawn list lost the keyboard focus"
    assert focused["label"].startswith("5. ") and ("done: " in focused["label"] or "not kept yet: " in focused["label"])


def test_moving_to_another_prompt_clears_the_last_take_message(server, browser):
    """After a take, → showed the next prompt (no take yet) under "Saved, with problems: … keep it
    anyway" or "Saved. Press → …": the message was about the prompt left; it now says how to record."""
    base, _, _ = server
    driver = browser
    _new_voice_at_its_first_prompt(driver, base, "다음")
    _record_take(driver, 2.0)
    assert _text(driver, "record-state").startswith("Saved")
    _press(driver, Keys.ARROW_RIGHT)
    _wait(driver, lambda d: _text(d, "prompt-position") == "2 / 568", "the next prompt")
    assert _text(driver, "take-info") == "no take yet"
    assert _text(driver, "record-state") == "Press Space to start recording."
    driver.find_elements(By.CSS_SELECTOR, "#prompt-list li")[0].click()  # back to the take: the list, as the keys
    _wait(driver, lambda d: _text(d, "prompt-position") == "1 / 568", "the first prompt again")
    assert _text(driver, "record-state") == "Press Space to start recording." and _text(driver, "verdict")


def test_downloading_an_empty_dataset_says_why(server, browser):
    """"Download the dataset" of a voice with no kept take did nothing at all (the export's 409 is
    dropped by the browser's download); the page now says there is nothing to download and why."""
    base, _, _ = server
    driver = browser
    _open_studio(driver, base)
    _create_voice(driver, "빈칸")
    _wait(driver, lambda d: d.find_element(By.ID, "export-link").get_attribute("aria-disabled") == "true", "the progress")
    driver.find_element(By.ID, "export-link").click()
    _wait(driver, lambda d: d.find_element(By.ID, "toast").is_displayed(), "a message")
    assert "Nothing to download yet" in _text(driver, "toast") and driver.current_url.endswith("/studio")


def test_a_trained_voice_keeps_its_listen_link_after_a_later_run_is_cancelled(server, browser):
    """A voice trained once, then a second run cancelled (or failed): the voice still speaks from
    its first run's bundle, but "Listen to this voice" was shown only when the latest run succeeded."""
    from moksori.store import TrainingRun

    base, root, _ = server
    driver = browser
    _open_studio(driver, base)
    _create_voice(driver, "두번째")
    _wait(driver, lambda d: d.find_element(By.ID, "details").is_displayed(), "the voice")
    with Database(f"sqlite:///{root / 'moksori.db'}") as db, db.session() as session:
        voice = session.scalars(select(Voice)).one()
        voice.bundle_path = f"studio-{voice.id}"  # its first run's bundle
        session.add(TrainingRun(voice_id=voice.id, recipe="tiny", status="cancelled"))
    driver.refresh()
    _wait(driver, lambda d: "cancelled" in _text(d, "training-status"), "the cancelled run")
    assert driver.find_element(By.ID, "listen-link").is_displayed()


def _first_fetch_fails_js(url_test: str) -> str:
    """A page script: the first fetch whose URL passes ``url_test`` (a JavaScript condition on
    ``url``) fails on the way, as a fetch does when the network drops."""
    return """
(() => {
  const fetchNow = window.fetch.bind(window);
  let failed = false;
  window.fetch = async (url, init) => {
    if (URL_TEST && !failed) { failed = true; throw new TypeError("Failed to fetch"); }
    return fetchNow(url, init);
  };
})();
""".replace("URL_TEST", url_test)


FAILING_FIRST_UPLOAD_JS = _first_fetch_fails_js('String(url).endsWith("/takes")')


def test_a_take_whose_upload_fails_on_the_way_can_be_sent_again(server, browser):
    """A take whose upload failed (network, server error) was lost: "The take could not be saved"
    and only recording it again. The page keeps it and offers to upload it again."""
    base, _, _ = server
    driver = browser
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAILING_FIRST_UPLOAD_JS})
    _new_voice_at_its_first_prompt(driver, base, "재전송")
    _record_for(driver, 2.0)
    _wait(driver, lambda d: "could not be saved" in _text(d, "record-state"), "the failed upload")
    assert _text(driver, "take-info") == "no take yet"
    driver.find_element(By.ID, "retry-upload").click()
    _wait(driver, lambda d: _text(d, "take-info") == "1 take" and _text(d, "verdict"), "the take sent again")
    assert not driver.find_element(By.ID, "retry-upload").is_displayed()
    assert _text(driver, "record-state").startswith("Saved")


FAILING_FIRST_PLAN_JS = _first_fetch_fails_js('String(url).includes("/training/plan")')


def test_a_training_plan_lost_on_the_way_can_be_checked_again(server, browser):
    """A plan request that failed on the way left "✗ Failed to fetch" and a disabled Start
    training, with no way to ask again but changing the choices twice; it now says the plan
    could not be checked and offers Check again."""
    base, _, _ = server
    driver = browser
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAILING_FIRST_PLAN_JS})
    _open_studio(driver, base)
    _create_voice(driver, "계획")
    _wait(driver, lambda d: "could not be checked" in _text(d, "training-plan"), "the lost plan")
    driver.find_element(By.ID, "plan-retry").click()
    _wait(driver, lambda d: "steps" in _text(d, "training-plan") and "✗" not in _text(d, "training-plan"), "the plan")
    assert not driver.find_elements(By.ID, "plan-retry")


# Run status polls fail on the way while window.__failRuns > 0 (the server restarting).
FAILING_RUN_POLL_JS = """
(() => {
  const fetchNow = window.fetch.bind(window);
  window.__failRuns = 0;
  window.fetch = async (url, init) => {
    if (/\\/api\\/studio\\/training\\/\\d+$/.test(String(url)) && window.__failRuns > 0) {
      window.__failRuns -= 1;
      throw new TypeError("Failed to fetch");
    }
    return fetchNow(url, init);
  };
})();
"""


def test_the_page_keeps_following_a_run_after_a_lost_status_poll(server, browser, spoken, tools):
    """One status poll of a running run lost on the way (a server restart, the network) stopped
    the page following the run: frozen at its last step for good while the run went on. The page
    says so and asks again."""
    import httpx

    base, _, _ = server
    driver = browser
    with httpx.Client(base_url=base) as http:
        voice = tools.new_voice(http, "계속")
        for take in tools.upload_spoken(http, voice, spoken, 4):
            http.patch(f"/api/studio/recordings/{take['recording']['id']}", json={"kept": True})
        run = http.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny_long"}).json()["id"]
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAILING_RUN_POLL_JS})
            _open_studio(driver, base)
            _wait(driver, lambda d: "running" in _text(d, "training-status"), "the running run")
            driver.execute_script("window.__failRuns = 1;")
            _wait(driver, lambda d: "no answer from the server" in _text(d, "training-status"), "the lost poll said")
            _wait(driver, lambda d: "running —" in _text(d, "training-status"), "the run followed again", timeout_s=20)
            assert driver.find_element(By.ID, "cancel-training").is_displayed()
        finally:
            http.post(f"/api/studio/training/{run}/cancel")


# The browser refuses the microphone, as when the user blocked it for this site.
BLOCKED_MICROPHONE_JS = """
navigator.mediaDevices.getUserMedia = async () => { throw new DOMException("Permission denied", "NotAllowedError"); };
"""


def test_a_blocked_microphone_is_said_with_what_to_do(server, browser):
    """With the microphone blocked, Space left "Opening the microphone…" on screen for good (the
    toast said only "Permission denied"); the page now says it is blocked and how to allow it."""
    base, _, _ = server
    driver = browser
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": BLOCKED_MICROPHONE_JS})
    _new_voice_at_its_first_prompt(driver, base, "막힘")
    _press(driver, Keys.SPACE)
    _wait(driver, lambda d: "blocked" in _text(d, "record-state"), "the blocked microphone said")
    assert "allow it" in _text(driver, "record-state") and "Opening" not in _text(driver, "record-state")
    assert _text(driver, "record") == "● Record"


# Take uploads never get an answer (a hung server or proxy); the page's 120 s wait for an upload
# is cut to 1 s here.
HUNG_UPLOAD_JS = """
(() => {
  const fetchNow = window.fetch.bind(window);
  const timeout = AbortSignal.timeout.bind(AbortSignal);
  AbortSignal.timeout = (ms) => timeout(ms === 120000 ? 1000 : ms);
  window.__hang = true;
  window.fetch = (url, init) => {
    if (String(url).endsWith("/takes") && window.__hang) {
      return new Promise((resolve, reject) => init.signal?.addEventListener("abort", () => reject(init.signal.reason)));
    }
    return fetchNow(url, init);
  };
})();
"""


def test_a_take_upload_that_never_answers_stops_waiting(server, browser):
    """An upload the server never answered left "Checking the take…" for good, and recording and
    moving stayed blocked; the page stops waiting, says so and keeps the take to send again."""
    base, _, _ = server
    driver = browser
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HUNG_UPLOAD_JS})
    _new_voice_at_its_first_prompt(driver, base, "멈춤")
    _record_for(driver, 2.0)
    _wait(driver, lambda d: "could not be saved" in _text(d, "record-state"), "the page to stop waiting")
    assert "did not answer" in _text(driver, "toast")
    driver.execute_script("window.__hang = false;")
    driver.find_element(By.ID, "retry-upload").click()
    _wait(driver, lambda d: _text(d, "take-info") == "1 take" and _text(d, "verdict"), "the take sent again")


def test_a_kept_take_can_be_left_out_of_the_dataset(server, browser):
    """A kept take (Keep anyway pressed by mistake, or a good take the user dislikes) could leave
    the dataset only by deleting it: the page had no control for PATCH kept=false."""
    base, _, _ = server
    driver = browser
    _new_voice_at_its_first_prompt(driver, base, "빼기")
    _record_take(driver, 2.0)
    if driver.find_element(By.ID, "keep").is_displayed():
        driver.find_element(By.ID, "keep").click()
    _wait(driver, lambda d: "is kept for the dataset" in _text(d, "verdict"), "the kept take")
    _wait(driver, lambda d: d.find_element(By.ID, "export-link").get_attribute("aria-disabled") == "false", "progress")
    driver.find_element(By.ID, "unkeep").click()
    _wait(driver, lambda d: "not in the dataset" in _text(d, "verdict"), "the take left out")
    assert driver.find_element(By.ID, "keep").is_displayed() and not driver.find_element(By.ID, "unkeep").is_displayed()
    first = driver.find_elements(By.CSS_SELECTOR, "#prompt-list li")[0]
    assert first.get_attribute("aria-label").startswith("1. not kept yet: ")
    _wait(driver, lambda d: d.find_element(By.ID, "export-link").get_attribute("aria-disabled") == "true", "no kept take")
