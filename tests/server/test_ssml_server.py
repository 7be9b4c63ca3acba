"""SSML through the HTTP API and `moksori say --ssml`, with the tiny voice: breaks are real silence,
prosody rate changes the speed, malformed SSML is a 400 naming the line and column, and SSML does
not get past the unreadable-character check."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile

from moksori.cli import main


def _wave(body: bytes) -> tuple[np.ndarray, int]:
    wave, rate = soundfile.read(io.BytesIO(body), dtype="int16")
    return wave, rate


def _longest_silence_s(wave: np.ndarray, rate: int) -> float:
    """The longest run of exact zeros (digital silence), in seconds."""
    longest = current = 0
    for silent in wave == 0:
        current = current + 1 if silent else 0
        longest = max(longest, current)
    return longest / rate


def _speak(client, ssml: str, **extra) -> object:
    return client.post("/synthesize", json={"text": ssml, "voice": "tiny", "input_format": "ssml", **extra})


def test_break_is_real_silence_of_that_length(make_client) -> None:
    client = make_client()
    response = _speak(client, '<speak>하나 둘 셋.<break time="1200ms"/>넷 다섯.</speak>')
    assert response.status_code == 200, response.text
    wave, rate = _wave(response.content)
    assert 1.2 <= _longest_silence_s(wave, rate) < 1.5
    plain = client.post("/synthesize", json={"text": "하나 둘 셋. 넷 다섯.", "voice": "tiny"})
    assert _longest_silence_s(*_wave(plain.content)) < 0.5  # a sentence gap, not the break


def test_plain_text_that_reads_like_an_ssml_cache_key_does_not_answer_the_ssml(make_client) -> None:
    """The cache keyed SSML as "ssml:" + its parts: a plain text "ssml:1.0:안녕" was stored under the
    key of <speak>안녕</speak>, so every later SSML request for it got that text's audio."""
    client = make_client()
    poison = client.post("/synthesize", json={"text": "ssml:1.0:안녕", "voice": "tiny"})
    assert poison.status_code == 200 and poison.headers["x-cache"] == "miss"
    ssml = _speak(client, "<speak>안녕</speak>")
    assert ssml.status_code == 200 and ssml.headers["x-cache"] == "miss"
    assert ssml.content != poison.content
    # Nor does a text inside SSML that reads like a part boundary and a pause.
    written = _speak(client, "<speak>가|&lt;0.5&gt;|1.0:나</speak>")
    paused = _speak(client, '<speak>가<break time="500ms"/>나</speak>')
    assert (written.headers["x-cache"], paused.headers["x-cache"]) == ("miss", "miss")


def test_prosody_rate_maps_to_the_speed(make_client) -> None:
    client = make_client()
    normal = _speak(client, "<speak>오늘은 날씨가 아주 좋네요</speak>")
    slow = _speak(client, '<speak><prosody rate="50%">오늘은 날씨가 아주 좋네요</prosody></speak>')
    fast = _speak(client, "<speak>오늘은 날씨가 아주 좋네요</speak>", speed=2.0)
    lengths = [len(_wave(r.content)[0]) for r in (normal, slow, fast)]
    assert lengths[1] > 1.7 * lengths[0] and lengths[2] < 0.75 * lengths[0]  # durations are rounded up per symbol


def test_ssml_on_every_endpoint_and_streamed(make_client) -> None:
    client = make_client()
    ssml = '<speak><say-as interpret-as="digits">123</say-as><break time="300ms"/>끝</speak>'
    assert client.get("/infer", params={"text": ssml, "voice": "tiny", "input_format": "ssml"}).status_code == 200
    openai = client.post("/v1/audio/speech", json={"input": ssml, "voice": "tiny", "response_format": "wav", "input_format": "ssml"})
    assert openai.status_code == 200
    streamed = _speak(client, ssml, stream=True)
    assert streamed.status_code == 200 and streamed.content[:4] == b"RIFF"
    # Without input_format=ssml the markup is plain text (read out, not obeyed): no 300 ms break.
    plain = client.get("/infer", params={"text": ssml, "voice": "tiny"})
    assert plain.status_code == 200 and _longest_silence_s(*_wave(plain.content)) < 0.3


def test_malformed_ssml_is_a_400_naming_line_and_column(make_client) -> None:
    client = make_client()
    response = _speak(client, "<speak>\n하나 <break time='1s'>\n</speak>")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_ssml"
    assert (error["field"], error["line"], error["column"]) == ("text", 3, 3)
    assert "SSML line 3, column 3" in error["message"]
    hostile = _speak(client, '<!DOCTYPE speak [<!ENTITY x SYSTEM "file:///etc/passwd">]><speak>&x;</speak>')
    assert hostile.status_code == 400 and "not allowed" in hostile.json()["error"]["message"]
    bad_format = client.post("/synthesize", json={"text": "<speak>x</speak>", "voice": "tiny", "input_format": "html"})
    assert bad_format.status_code == 422


def test_ssml_never_bypasses_the_unreadable_character_check(make_client) -> None:
    client = make_client()
    for ssml in ("<speak>안녕 ☃</speak>", '<speak><sub alias="☃">눈</sub></speak>',
                 '<speak><say-as interpret-as="characters">☃</say-as></speak>'):
        for stream in (False, True):
            response = _speak(client, ssml, stream=stream)
            assert response.status_code == 422, (ssml, stream)
            assert response.json()["error"]["code"] == "unreadable_text"


def test_say_with_ssml_from_the_command_line(voices_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ssml.wav"
    ssml = '<speak>하나.<break time="1s"/><prosody rate="slow">둘.</prosody></speak>'
    assert main(["say", "--ssml", ssml, "--voice", str(voices_dir / "tiny"), "-o", str(out), "--seed", "1"]) == 0
    wave, rate = soundfile.read(str(out), dtype="int16")
    assert 1.0 <= _longest_silence_s(wave, rate) < 1.3
    assert main(["say", "--ssml", "<speak>\n<p>하나</speak>", "--voice", str(voices_dir / "tiny"), "-o", str(out)]) == 2
    assert "SSML line 2, column 8: malformed XML (mismatched tag)" in capsys.readouterr().err
    assert main(["say", "--ssml", "<speak>☃</speak>", "--voice", str(voices_dir / "tiny"), "-o", str(out)]) == 2
    assert "cannot read '☃'" in capsys.readouterr().err
