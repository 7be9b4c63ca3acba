"""Studio test helpers: apps with a studio on a temporary database and data folder, a tiny
training recipe, and espeak-spoken takes of the built-in Korean prompts."""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import yaml


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CONFIGS = Path(__file__).resolve().parents[2] / "moksori" / "recipes"
SAMPLE_RATE = 22050


def wav_file(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16") -> bytes:
    """The bytes of a WAV file; ``wave`` may be (samples,) or (samples, channels)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(wave, dtype=np.float32), sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def spoken() -> list[tuple[str, np.ndarray]]:
    """(text, 22,050 Hz wave) for the first six built-in Korean prompts, spoken by espeak-ng,
    with 80 ms of silence on each side as a recorded take has (espeak's own clip starts and
    ends in sound, which the studio judges cut off). 80 ms is within the studio's trim margin,
    so automatic trimming leaves these takes as they are."""
    from moksori.audio import resample
    from moksori.espeak import synthesize
    from moksori.data.prompt_sets import builtin_prompts

    clips = []
    for text in builtin_prompts("ko")[:6]:
        wave, rate = synthesize(text, voice="ko")
        pad = np.zeros(int(0.08 * SAMPLE_RATE), np.float32)
        clips.append((text, np.concatenate([pad, resample(wave, rate, SAMPLE_RATE), pad])))
    return clips


@pytest.fixture(scope="session")
def recipes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_glowtts.yaml cut down: ``tiny`` (15 steps), ``tiny_resume`` (60 steps, a checkpoint
    every 5) and ``tiny_long`` (far more steps than a test waits for); ``tiny_two_stage``: 4
    Glow-TTS steps, then 2 HiFi-GAN steps on its aligned mels (as glowtts_hifigan_ko.yaml); and
    ``vocoder_only``, which the studio must refuse."""
    folder = tmp_path_factory.mktemp("recipes")
    base = yaml.safe_load((CONFIGS / "tiny_glowtts.yaml").read_text())
    variants = {"tiny": (15, 5), "tiny_resume": (60, 5), "tiny_long": (100000, 1000)}
    for name, (steps, every) in variants.items():
        recipe = {**base, "train": {**base["train"], "steps": steps, "checkpoint_interval": every,
                                    "eval_interval": 100000, "warmup_steps": 5, "log_interval": 1}}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    vocoder = yaml.safe_load((CONFIGS / "tiny_hifigan.yaml").read_text())
    vocoder["train"].update(steps=2, checkpoint_interval=2, eval_interval=100000, log_interval=1, adversarial=False)
    acoustic = {**base, "train": {**base["train"], "steps": 4, "checkpoint_interval": 4, "eval_interval": 100000,
                                  "warmup_steps": 5, "log_interval": 1}}
    # The vocoder stage names the acoustic run's own folder, as a hand-written recipe does.
    vocoder["vocoder_finetune_from"] = "runs/somewhere/latest.pt"
    two_stage = {"stages": [{"name": "acoustic", **acoustic}, {"name": "vocoder", **vocoder}]}
    (folder / "tiny_two_stage.yaml").write_text(yaml.safe_dump(two_stage))
    (folder / "vocoder_only.yaml").write_text(yaml.safe_dump(vocoder))
    return folder


@pytest.fixture
def make_site(site_factory: Callable[..., Any], recipes_dir: Path) -> Callable[..., Any]:
    """A studio site (tests/conftest.py ``StudioSite``) offering the tiny test recipes."""

    def make(**studio: Any) -> Any:
        return site_factory(**{"recipes_dir": recipes_dir, "default_recipe": "tiny", "train_threads": 1, **studio})

    return make


@pytest.fixture
def site(make_site: Callable[..., Any]) -> Any:
    return make_site()


@pytest.fixture
def client(site: Any) -> TestClient:
    return site.client()


def builtin_ko(client: TestClient) -> int:
    sets = client.get("/api/studio/prompt-sets").json()["prompt_sets"]
    return next(s["id"] for s in sets if s["source"] == "builtin" and s["language"] == "ko")


def prompt_ids(client: TestClient, set_id: int) -> dict[str, int]:
    """text → prompt id of a set."""
    prompts = client.get(f"/api/studio/prompt-sets/{set_id}/prompts").json()["prompts"]
    return {p["text"]: p["id"] for p in prompts}


def new_voice(client: TestClient, name: str = "지민", language: str = "ko", **extra: Any) -> int:
    response = client.post("/api/studio/voices", json={"name": name, "language": language, **extra})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def upload(client: TestClient, voice_id: int, prompt_id: int, data: bytes, name: str = "take.wav") -> Any:
    return client.post(f"/api/studio/voices/{voice_id}/takes", data={"prompt_id": str(prompt_id)},
                       files={"audio": (name, data, "application/octet-stream")})


def upload_spoken(client: TestClient, voice_id: int, spoken: list[tuple[str, np.ndarray]], n: int) -> list[dict]:
    ids = prompt_ids(client, builtin_ko(client))
    results = []
    for text, wave in spoken[:n]:
        response = upload(client, voice_id, ids[text], wav_file(wave))
        assert response.status_code == 201, response.text
        results.append(response.json())
    return results


def wait_for(check: Callable[[], Any], timeout_s: float = 120.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="session")
def tools() -> Any:
    """The helpers above, for test modules (importlib import mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(wav_file=wav_file, builtin_ko=builtin_ko, prompt_ids=prompt_ids, new_voice=new_voice,
                           upload=upload, upload_spoken=upload_spoken, wait_for=wait_for)


# Headless Debian Chromium with the flags this machine's closed network needs (no background
# connections, no component updates); every browser test starts it through `launch_chromium`.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
)


@pytest.fixture(scope="session")
def launch_chromium() -> Any:
    """``launch(*flags, window=(w, h), prefs=None, performance_log=False)`` → a selenium driver
    (the caller quits it); fresh profile folders, removed at the end of the session."""
    import shutil
    import tempfile

    from selenium import webdriver

    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    profiles: list[str] = []

    def launch(*flags: str, window: tuple[int, int] = (1280, 1400), prefs: dict[str, Any] | None = None,
               performance_log: bool = False) -> Any:
        profiles.append(tempfile.mkdtemp(prefix="moksori-chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (*CHROMIUM_FLAGS, f"--window-size={window[0]},{window[1]}", f"--user-data-dir={profiles[-1]}", *flags):
            options.add_argument(flag)
        if prefs:
            options.add_experimental_option("prefs", prefs)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", **({"performance": "ALL"} if performance_log else {})})
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
        driver.set_page_load_timeout(30)
        return driver

    yield launch
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)
