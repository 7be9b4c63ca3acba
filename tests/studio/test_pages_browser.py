"""The server's pages in a real browser (headless Chromium, one uvicorn server for the module):
the voice page plays streamed speech and downloads it, the studio fine-tunes from the shipped voice
(its log counts the loaded tensors) and links the result to the voice page, /docs and /redoc render
without a request leaving loopback, and the pages fit a 390x844 phone.

Screenshots go to ``out/screenshots/`` (not committed): ``pages-*.png``.
Needs the Debian packages ``chromium`` and ``chromium-driver`` and the ``selenium`` package;
skipped, saying which is missing, without them.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile
import yaml

from moksori.bench.serve import build_tiny_voice
from moksori.recipes import RECIPES_DIR
from moksori.server import ServerSettings, create_app
from moksori.server.studio import configure

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
LONG_TEXT = " ".join(["오늘은 날씨가 맑고 바람이 시원합니다.", "우리는 공원에서 오래 걸었습니다.",
                      "저녁에는 친구들과 맛있는 음식을 먹었습니다.", "내일도 좋은 하루가 되기를 바랍니다."] * 3)

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """uvicorn on a free loopback port: the shipped voice, a Griffin-Lim voice, a studio, and an operator's
    ``finetune_ko`` of 2 acoustic steps (the shipped voice's vocoder is kept)."""
    import uvicorn

    from moksori.studio import StudioSettings

    root = tmp_path_factory.mktemp("pages")
    recipes = root / "recipes"
    recipes.mkdir()
    recipe = yaml.safe_load((RECIPES_DIR / "finetune_ko.yaml").read_text())
    recipe["stages"][0]["train"].update(steps=2, checkpoint_interval=2, eval_interval=100000, warmup_steps=1)
    recipe["stages"][0]["data"]["batch_size"] = 2
    recipe["stages"][1]["train"]["steps"] = 0
    (recipes / "finetune_ko.yaml").write_text(yaml.safe_dump(recipe))
    build_tiny_voice(root / "voices" / "rough", name="rough", griffin_lim=True)  # no trained vocoder
    app = create_app(ServerSettings(voices_dir=root / "voices", db_url=f"sqlite:///{root / 'moksori.db'}",
                                    require_api_keys=False, include_default_voice=True, default_voice="ko_default"))
    configure(app, StudioSettings(data_dir=root / "studio", recipes_dir=recipes, train_threads=1))
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", root
    uv.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def downloads() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="moksori-downloads-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(downloads: Path, launch_chromium) -> Iterator[Any]:
    driver = launch_chromium(window=(1280, 1200), performance_log=True,
                             prefs={"download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver, name: str) -> None:
    save_shot(driver, f"pages-{name}")


def _wait(driver, condition, what: str, timeout_s: float = 30):
    return wait_until(driver, condition, what, timeout_s, shot=f"pages-failed-{what.replace(' ', '-')}")


def _body(driver: Any, name: str) -> str | None:
    return driver.find_element(By.TAG_NAME, "body").get_attribute(f"data-{name}")


def _text(driver: Any, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _requested_urls(driver: Any) -> list[str]:
    """URLs the browser sent requests to since the performance log was last read (requests the
    page's Content-Security-Policy blocked never leave the browser and are not counted)."""
    sent: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            sent[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return [url for request, url in sent.items() if request not in blocked]


def _play(driver: Any, text: str) -> tuple[float, float, int]:
    """Type ``text``, press Play, wait until the stream ended; (first audio ms, done ms, chunks)."""
    box = driver.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    driver.execute_script("delete document.body.dataset.doneMs; delete document.body.dataset.firstAudioMs")
    driver.find_element(By.ID, "play").click()
    _wait(driver, lambda d: _body(d, "done-ms") is not None or "error" in d.find_element(By.ID, "status").get_attribute("class"),
          "the speech", timeout_s=60)
    assert _body(driver, "done-ms") is not None, _text(driver, "status")
    return float(_body(driver, "first-audio-ms")), float(_body(driver, "done-ms")), int(_body(driver, "chunks"))


def test_voice_page_streams_plays_and_downloads(server, browser, downloads):
    base, _ = server
    driver = browser
    driver.set_window_size(1280, 1200)
    driver.get(f"{base}/")
    _shot(driver, "01-landing")
    driver.find_element(By.ID, "link-listen").click()
    _wait(driver, lambda d: _body(d, "ready") == "true", "the voice page")
    card = _text(driver, "voice-card")
    assert "glow_tts + vocos" in card and "331.8 min" in card and "mcd_db 1.57" in card, card  # 5.53 h of data
    assert driver.find_element(By.ID, "sigma") and driver.find_element(By.ID, "speed")  # Glow-TTS: noise scale
    assert not driver.find_elements(By.ID, "style-ref")  # no style controls for Glow-TTS

    first, done, chunks = _play(driver, LONG_TEXT)
    _shot(driver, "02-voice-page-played")
    # Sentence by sentence: the first audio was scheduled well before the last arrived.
    assert chunks > 1 and first < done, (first, done, chunks)
    link = driver.find_element(By.ID, "download")
    assert link.get_attribute("aria-disabled") == "false"
    link.click()
    wav = _wait(driver, lambda d: next(iter(downloads.glob("*.wav")), None), "the download")
    time.sleep(0.3)  # the file is renamed from .crdownload when complete
    data, rate = soundfile.read(io.BytesIO(wav.read_bytes()))
    assert rate == 22050 and len(LONG_TEXT) / 30 < len(data) / rate < 60, len(data) / rate

    # A voice without a trained vocoder says so, and borrows the shipped voice's.
    rows = {row.get_attribute("data-voice"): row for row in driver.find_elements(By.CSS_SELECTOR, "#voice-list tbody tr")}
    assert set(rows) == {"ko_default", "rough"}
    assert "glow_tts + vocos" in rows["ko_default"].text and "331.8 min" in rows["ko_default"].text
    assert "Griffin-Lim" in rows["rough"].text
    rows["rough"].click()
    _wait(driver, lambda d: d.find_elements(By.ID, "griffin-lim-note"), "the Griffin-Lim note")
    assert "Griffin-Lim" in _text(driver, "voice-card") and "Models\nglow_tts + Griffin-Lim" in _text(driver, "voice-card")
    assert driver.find_element(By.ID, "borrow-vocoder").is_selected()
    _play(driver, "안녕하세요.")
    _shot(driver, "02b-voice-page-griffin-lim")
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


def test_voice_page_reads_ssml_and_names_the_place_of_an_error(server, browser):
    base, _ = server
    driver = browser
    driver.get(f"{base}/listen")
    _wait(driver, lambda d: _body(d, "ready") == "true", "the voice page")
    driver.find_element(By.ID, "ssml").click()
    plain = "<speak>안녕하세요. 반갑습니다.</speak>"
    _play(driver, plain)
    plain_s = float(_text(driver, "status").split(" s of audio")[0])
    _play(driver, '<speak>안녕하세요.<break time="2s"/>반갑습니다.</speak>')
    paused_s = float(_text(driver, "status").split(" s of audio")[0])
    assert 1.5 < paused_s - plain_s < 2.5, (plain_s, paused_s)  # the break is real silence
    box = driver.find_element(By.ID, "text")
    box.clear()
    box.send_keys("<speak>안녕<break></speak>")
    driver.find_element(By.ID, "play").click()
    _wait(driver, lambda d: "error" in d.find_element(By.ID, "status").get_attribute("class"), "the SSML error")
    assert "line 1" in _text(driver, "status") and "column" in _text(driver, "status"), _text(driver, "status")
    driver.find_element(By.ID, "ssml").click()  # leave the page as the other tests expect it


def test_fine_tune_from_the_shipped_voice_then_listen(server, browser, spoken):
    import httpx

    base, root = server
    driver = browser
    driver.set_window_size(1280, 1400)
    with httpx.Client(base_url=base, timeout=60) as http:
        voice = http.post("/api/studio/voices", json={"name": "파인튠", "language": "ko"}).json()["id"]
        sets = http.get("/api/studio/prompt-sets").json()["prompt_sets"]
        ko = next(s["id"] for s in sets if s["language"] == "ko" and s["source"] == "builtin")
        ids = {p["text"]: p["id"] for p in http.get(f"/api/studio/prompt-sets/{ko}/prompts").json()["prompts"]}
        for text, wave in spoken[:4]:
            buffer = io.BytesIO()
            soundfile.write(buffer, wave, 22050, format="WAV")
            take = http.post(f"/api/studio/voices/{voice}/takes", data={"prompt_id": str(ids[text])},
                             files={"audio": ("take.wav", buffer.getvalue())}).json()
            http.patch(f"/api/studio/recordings/{take['recording']['id']}", json={"kept": True}).raise_for_status()
    driver.get(f"{base}/studio")
    driver.execute_script(f"localStorage.setItem('moksori.voice', '{voice}')")
    driver.refresh()
    _wait(driver, lambda d: _body(d, "ready") == "true", "the studio")
    _wait(driver, lambda d: d.find_element(By.ID, "start-training").is_enabled(), "the fine-tune plan", timeout_s=60)
    assert driver.find_element(By.ID, "init-from-select").get_attribute("value") == "ko_default"
    plan = _text(driver, "training-plan")
    assert re.search(r"fine-tune from ko_default: acoustic glow_tts 2 steps.*about \d+ min", plan), plan
    assert re.search(r"loads (\d+) of \1 tensors, skipped 0", plan), plan
    driver.execute_script("document.getElementById('training-form').scrollIntoView()")
    _shot(driver, "03-studio-finetune-plan")
    # The GPU-sized recipe warm-started from ko_default would drop most of its weights: refused, saying why.
    recipes = Select(driver.find_element(By.ID, "recipe-select"))
    recipes.select_by_value("glowtts_hifigan_ko")
    _wait(driver, lambda d: "does not fit" in _text(d, "training-plan"), "the refusal", timeout_s=60)
    assert not driver.find_element(By.ID, "start-training").is_enabled()
    assert "drop most of the voice's weights" in _text(driver, "start-reason")
    assert re.search(r"only \d+ of its 307 tensors fit", _text(driver, "training-plan"))
    _shot(driver, "03b-studio-refused-recipe")
    recipes.select_by_value("")
    _wait(driver, lambda d: d.find_element(By.ID, "start-training").is_enabled(), "the fine-tune plan again")
    driver.find_element(By.ID, "start-training").click()
    _wait(driver, lambda d: "succeeded" in _text(d, "training-status") or "failed" in _text(d, "training-status"),
          "the fine-tune run", timeout_s=240)
    _shot(driver, "04-studio-finetuned")
    assert "succeeded" in _text(driver, "training-status"), _text(driver, "training-log")
    (log_file,) = (root / "studio").rglob("job.log")
    log = log_file.read_text("utf-8")
    # The training loop's own count, one line; the studio's plan line said the same beforehand.
    counts = re.findall(r"warm start from \S*ko_default\S*: loaded (\d+) tensors, skipped (\d+)", log)
    assert counts and int(counts[0][0]) > 300 and counts[0][1] == "0", counts
    assert re.search(r"weights: acoustic \(glow_tts\): warm start from ko_default loads (\d+) of \1 tensors, skipped 0", log)
    with httpx.Client(base_url=base, timeout=60) as http:  # the new voice is served
        speech = http.get("/infer", params={"text": "안녕하세요.", "voice": "파인튠"})
        assert speech.status_code == 200 and speech.content[:4] == b"RIFF"

    driver.find_element(By.ID, "listen-link").click()
    _wait(driver, lambda d: _body(d, "ready") == "true", "the voice page for the new voice")
    assert driver.find_element(By.ID, "voice-select").get_attribute("value") == str(voice)
    assert "파인튠" in driver.find_element(By.ID, "voice-select").text
    first, done, chunks = _play(driver, "안녕하세요. 제 목소리입니다.")
    assert chunks >= 1 and first <= done
    _shot(driver, "05-listen-finetuned-voice")


def test_docs_render_without_leaving_loopback(server, browser):
    base, _ = server
    driver = browser
    driver.set_window_size(1280, 1200)
    _requested_urls(driver)  # drop what earlier pages requested
    driver.get(f"{base}/docs")
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"), "Swagger UI")
    assert driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text.startswith("moksori")
    assert driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path[data-path='/v1/audio/speech']")
    _shot(driver, "06-docs-offline")
    driver.get(f"{base}/redoc")
    _wait(driver, lambda d: any(h.text.startswith("moksori") for h in d.find_elements(By.TAG_NAME, "h1")), "ReDoc")
    _shot(driver, "07-redoc-offline")
    urls = _requested_urls(driver)
    assert any(url.endswith("/docs/static/swagger-ui-bundle.js") for url in urls), urls
    assert any(url.endswith("/docs/static/redoc.standalone.js") for url in urls), urls
    outside = [url for url in urls if not url.startswith((base + "/", "data:", "blob:"))]
    assert outside == [], outside


def test_pages_fit_a_phone(server, browser):
    base, _ = server
    driver = browser
    driver.set_window_size(390, 844)
    width = driver.execute_script("return window.innerWidth")
    for path, name in (("/", "08-phone-landing"), ("/listen", "09-phone-listen"), ("/studio", "10-phone-studio")):
        driver.get(f"{base}{path}")
        _wait(driver, lambda d: d.execute_script("return document.readyState") == "complete", path)
        if path != "/":
            _wait(driver, lambda d: _body(d, "ready") == "true", f"{path} ready")
        if path == "/studio":
            driver.execute_script("document.getElementById('training-form').scrollIntoView()")
        _shot(driver, name)
        overflow = driver.execute_script("return document.documentElement.scrollWidth")
        assert overflow <= width, f"{path} is {overflow} px wide on a {width} px screen"
