"""Attack tests: each reproduces one finding of issue 14 against a real app (TestClient), so a
regression shows up as the attack working again. Helpers are reached through the ``sec`` fixture
(importlib import mode cannot import conftest)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def flac_silence(seconds: float, channels: int = 1, rate: int = 22050) -> bytes:
    """A FLAC of silence: a few hundred kB that decode to ``seconds * rate * channels`` samples."""
    buffer = io.BytesIO()
    block = np.zeros((rate * 10, channels), dtype=np.int16)
    with soundfile.SoundFile(buffer, "w", rate, channels, format="FLAC", subtype="PCM_16") as handle:
        for _ in range(int(seconds // 10)):
            handle.write(block)
        handle.write(block[: int(seconds % 10 * rate)])
    return buffer.getvalue()


def without_length(flac: bytes) -> bytes:
    """The FLAC with its STREAMINFO total-samples field set to 0 ("unknown"), as a streaming
    encoder writes it: the header no longer tells how long the audio is."""
    data = bytearray(flac)
    assert data[:4] == b"fLaC"
    packed = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)  # rate 20, channels 3, bits 5, total 36
    data[18:26] = packed.to_bytes(8, "big")
    return bytes(data)


@pytest.fixture
def make_site(site_factory: Callable[..., Any]) -> Callable[..., Any]:
    """A server with a studio on its own folders (tests/conftest.py ``StudioSite``)."""
    return site_factory


def first_ko_prompt(client: TestClient) -> int:
    sets = client.get("/api/studio/prompt-sets").json()["prompt_sets"]
    set_id = next(s["id"] for s in sets if s["source"] == "builtin" and s["language"] == "ko")
    return client.get(f"/api/studio/prompt-sets/{set_id}/prompts").json()["prompts"][0]["id"]


def upload(client: TestClient, voice_id: int, prompt_id: int, data: bytes, name: str = "take.flac") -> Any:
    return client.post(f"/api/studio/voices/{voice_id}/takes", data={"prompt_id": str(prompt_id)},
                       files={"audio": (name, data, "application/octet-stream")})


def new_voice(client: TestClient, name: str = "voice", **extra: Any) -> int:
    response = client.post("/api/studio/voices", json={"name": name, "language": "ko", **extra})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="session")
def sec() -> SimpleNamespace:
    return SimpleNamespace(flac_silence=flac_silence, without_length=without_length, first_ko_prompt=first_ko_prompt,
                           upload=upload, new_voice=new_voice)
