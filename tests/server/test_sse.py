"""OpenAI's ``stream_format: "sse"`` on /v1/audio/speech: base64 audio deltas as sentences are made,
then a done event carrying the alignment outcome (which headers sent before synthesis cannot)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from moksori.bench import write_untrained_checkpoint
from moksori.models import registry
from moksori.models.tacotron2 import Tacotron2Config
from moksori.synthesis import make_bundle
from moksori.text import TextFrontend

TEXT = "첫 번째 문장입니다. 두 번째 문장입니다."


def events(response) -> list[dict]:
    body = b"".join(response.iter_raw()).decode("utf-8")
    blocks = [block for block in body.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in blocks)
    return [json.loads(block[len("data: "):]) for block in blocks]


def audio_of(found: list[dict]) -> bytes:
    return b"".join(base64.b64decode(event["audio"]) for event in found if event["type"] == "speech.audio.delta")


def test_sse_sends_audio_deltas_then_done_with_the_outcome(make_client) -> None:
    client = make_client()
    request = {"input": TEXT, "voice": "tiny", "response_format": "pcm", "stream_format": "sse"}
    with client.stream("POST", "/v1/audio/speech", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        found = events(response)
    types = [event["type"] for event in found]
    assert types[-1] == "speech.audio.done" and types[:-1] == ["speech.audio.delta"] * (len(types) - 1)
    assert len(types) >= 3  # the first sentence's head, its rest, the second sentence
    done = found[-1]
    assert done["moksori"]["alignment"] == "ok" and done["moksori"]["alignment_failures"] == []
    assert done["usage"]["input_tokens"] == len(TEXT)
    pcm = audio_of(found)
    whole = client.post("/v1/audio/speech", json={"input": TEXT, "voice": "tiny", "response_format": "pcm"})
    assert len(pcm) == len(whole.content)  # the same samples as the whole response
    # OpenAI's pcm is 24 kHz: the tiny voice's 22,050 Hz audio is resampled as it streams.
    assert response.headers["x-sample-rate"] == "24000" and done["moksori"]["sample_rate"] == 24000
    assert done["moksori"]["audio_seconds"] == pytest.approx(len(pcm) / 2 / 24000, abs=1e-3)


def test_sse_wav_opens_with_a_streaming_header(make_client) -> None:
    client = make_client()
    request = {"input": "안녕하세요.", "response_format": "wav", "stream_format": "sse"}
    with client.stream("POST", "/v1/audio/speech", json=request) as response:
        audio = audio_of(events(response))
    assert audio[:4] == b"RIFF" and audio[36:40] == b"data" and len(audio) > 44


def test_stream_format_and_its_response_format_are_validated(make_client) -> None:
    client = make_client()
    bad = client.post("/v1/audio/speech", json={"input": "안녕하세요.", "stream_format": "chunks"})
    assert bad.status_code == 422 and "stream_format" in bad.json()["error"]["message"]
    mp3 = client.post("/v1/audio/speech", json={"input": "안녕하세요.", "stream_format": "sse"})  # mp3 by default
    assert mp3.status_code == 400 and mp3.json()["error"]["code"] == "unsupported_format"
    assert "response_format" in mp3.json()["error"]["message"]
    empty = client.post("/v1/audio/speech", json={"input": " ", "stream_format": "sse", "response_format": "pcm"})
    assert empty.status_code == 400 and "input" in empty.json()["error"]["message"]
    assert client.post("/v1/audio/speech", json={"input": "안녕하세요.", "response_format": "wav",
                                                 "stream_format": "audio"}).content[:4] == b"RIFF"


@pytest.fixture(scope="module")
def tacotron2_voices(tmp_path_factory) -> Path:
    """A tiny Tacotron2 whose stop gate never fires: every sentence fails its alignment check."""
    root = tmp_path_factory.mktemp("t2_sse")
    frontend = TextFrontend("ko")
    torch.manual_seed(0)
    model = registry.get("tacotron2").build(Tacotron2Config.tiny(len(frontend.symbols), max_decoder_steps=60))
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.bias.fill_(-50.0)
    acoustic = write_untrained_checkpoint(root / "acoustic.pt", model, "tacotron2", frontend)
    family = registry.get("hifigan")
    vocoder = write_untrained_checkpoint(root / "vocoder.pt", family.build(family.config("tiny")), "hifigan", None)
    make_bundle(acoustic, root / "voices" / "t2", vocoder_ckpt=vocoder, name="t2")
    return root / "voices"


def failures_counted(client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("moksori_alignment_failures_total{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_failed_alignments_are_in_the_done_event_and_the_metrics(make_client, tacotron2_voices) -> None:
    client = make_client(voices_dir=tacotron2_voices)
    request = {"input": "안녕하세요. 반가워요.", "voice": "t2", "response_format": "pcm", "stream_format": "sse"}
    with client.stream("POST", "/v1/audio/speech", json=request) as response:
        found = events(response)
    done = found[-1]["moksori"]
    assert done["alignment"].startswith("failed; sentence 1") and "hit max_decoder_steps" in done["alignment"]
    assert [failure["sentence"] for failure in done["alignment_failures"]] == [1, 2]
    assert np.frombuffer(audio_of(found), dtype="<i2").size > 0  # the audio still came, flagged
    assert failures_counted(client) == 2
    # A raw audio stream cannot carry the outcome; it is logged and counted.
    with client.stream("POST", "/synthesize", json={"text": "안녕하세요.", "voice": "t2", "stream": True}) as response:
        assert len(b"".join(response.iter_raw())) > 44
    assert failures_counted(client) == 3


def test_sse_takes_ssml_input(make_client) -> None:
    client = make_client()
    ssml = '<speak>안녕하세요.<break time="300ms"/>반가워요.</speak>'
    request = {"input": ssml, "input_format": "ssml", "response_format": "pcm", "stream_format": "sse"}
    with client.stream("POST", "/v1/audio/speech", json=request) as response:
        found = events(response)
    assert found[-1]["type"] == "speech.audio.done" and found[-1]["moksori"]["alignment"] == "ok"
    pcm = np.frombuffer(audio_of(found), dtype="<i2")
    assert pcm.size > 0.3 * 22050 and np.any(pcm[: pcm.size // 2] != 0)  # speech and the break's silence
    broken = client.post("/v1/audio/speech", json={**request, "input": "<speak>안녕"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_ssml"
