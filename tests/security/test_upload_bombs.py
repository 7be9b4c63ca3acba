"""Issue 14.1, decompression bombs: a small compressed take that decodes to hours of audio must be
refused from its header, before decoding, and decoding must never hold more than a take's worth."""

from __future__ import annotations

import tracemalloc

import pytest
import soundfile

import moksori.audio.io as audio_io

MB = 1024 * 1024


@pytest.fixture(scope="module")
def hour_of_silence(sec) -> bytes:
    return sec.flac_silence(3600.0)


def _peak_upload(client, voice, prompt, data, sec):
    tracemalloc.start()
    try:
        response = sec.upload(client, voice, prompt, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return response, peak


def _count_block_reads(monkeypatch) -> list[int]:
    """A list that grows by one for every block of audio decoded (``SoundFile.read``)."""
    reads: list[int] = []
    original_read = soundfile.SoundFile.read
    monkeypatch.setattr(soundfile.SoundFile, "read", lambda self, *a, **k: reads.append(1) or original_read(self, *a, **k))
    return reads


def test_hour_long_flac_is_refused_from_its_header(make_site, sec, hour_of_silence, monkeypatch):
    assert len(hour_of_silence) < 1 * MB  # the bomb: 0.25 MB that decodes to 317 MB of float32
    site = make_site()
    client = site.client()
    voice, prompt = sec.new_voice(client), sec.first_ko_prompt(client)

    def no_whole_reads(*args, **kwargs):
        raise AssertionError("an upload was decoded whole (soundfile.read)")

    monkeypatch.setattr(soundfile, "read", no_whole_reads)
    decoded = _count_block_reads(monkeypatch)

    response, peak = _peak_upload(client, voice, prompt, hour_of_silence, sec)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "take_too_long"
    assert "3600.0 s" in error["message"] and "at most 60 s" in error["message"]
    assert decoded == []  # refused from the header: not one block decoded
    assert peak < 20 * MB, f"peak Python memory during the upload: {peak / MB:.0f} MB"


def test_many_channels_are_refused_before_decoding(make_site, sec):
    site = make_site()
    client = site.client()
    voice, prompt = sec.new_voice(client), sec.first_ko_prompt(client)
    eight_channels = sec.flac_silence(5.0, channels=8, rate=48000)
    response = sec.upload(client, voice, prompt, eight_channels)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_many_channels" and "8 channels" in error["message"]


def test_a_header_without_length_is_decoded_in_bounded_blocks(make_site, sec, monkeypatch):
    """A FLAC whose header does not state its length gets through the header check; decoding in
    blocks stops as soon as the take limit is passed, never holding the whole stream."""
    site = make_site(max_take_s=5.0)
    client = site.client()
    voice, prompt = sec.new_voice(client), sec.first_ko_prompt(client)
    bomb = sec.without_length(sec.flac_silence(600.0))
    monkeypatch.setattr(audio_io.AudioLimits, "block_frames", 22050)  # one second a block
    blocks = _count_block_reads(monkeypatch)

    response, peak = _peak_upload(client, voice, prompt, bomb, sec)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "take_too_long" and "at most 5 s" in error["message"]
    assert len(blocks) <= 7  # 5 s allowed, the 6th block is over: never the 600 s
    assert peak < 20 * MB


def test_a_take_within_the_limits_still_works(make_site, sec):
    site = make_site()
    client = site.client()
    voice, prompt = sec.new_voice(client), sec.first_ko_prompt(client)
    response = sec.upload(client, voice, prompt, sec.flac_silence(2.0, channels=2, rate=44100))
    assert response.status_code == 201, response.text
    assert response.json()["source_sample_rate"] == 44100
