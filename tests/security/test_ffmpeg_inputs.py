"""Review 8-X: uploads that FFmpeg (PyAV, for what libsndfile cannot read) would have opened with a
demuxer that reads other files named inside the upload. An ffconcat list in a take upload read a
file beside the upload in the studio's tmp folder (another user's upload in flight) as the take."""

from __future__ import annotations

import numpy as np
import soundfile

from moksori.audio.io import AudioError, AudioLimits, load_audio_bounded, load_audio_with_rate
from moksori.server.encode import encode_aac
from support.pyav import write_with_pyav


def _tone_wav(path) -> None:
    rate = 22050
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate), rate)


def test_a_take_upload_cannot_be_a_concat_list_reading_another_file(make_site, sec):
    site = make_site()
    client = site.client()
    voice, prompt = sec.new_voice(client), sec.first_ko_prompt(client)
    _tone_wav(site.studio.data_dir / "tmp" / "victim.wav")  # e.g. another user's upload in flight

    response = sec.upload(client, voice, prompt, b"ffconcat version 1.0\nfile victim.wav\n", name="take.m4a")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_audio"


def _tone_aac(path) -> None:
    path.write_bytes(encode_aac(np.full(22050, 0.3, dtype=np.float32), 22050))


def test_playlists_are_not_followed(tmp_path):
    _tone_wav(tmp_path / "victim.wav")
    _tone_aac(tmp_path / "victim.aac")
    concat = tmp_path / "list.m4a"
    concat.write_text("ffconcat version 1.0\nfile victim.wav\n")
    playlist = tmp_path / "list.m3u8"  # hls is probed by this extension
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n{tmp_path / 'victim.aac'}\n#EXT-X-ENDLIST\n")
    for path in (concat, playlist):
        for load in (load_audio_with_rate, lambda p: load_audio_bounded(p, AudioLimits(max_seconds=10))):
            try:
                load(path)
            except AudioError:
                continue
            raise AssertionError(f"{path.name} was decoded: FFmpeg followed the file names inside it")


def test_an_audio_track_of_a_codec_without_a_decoder_is_a_400(make_site, sec, tmp_path):
    """A Matroska audio track whose codec FFmpeg does not know has no decoder: an AttributeError, a 500."""
    path = tmp_path / "take.mka"
    write_with_pyav(path, np.zeros((1, 22050), dtype=np.int16), 22050, "matroska", "pcm_s16le")
    data = path.read_bytes()
    assert b"A_PCM/INT/LIT" in data
    site = make_site()
    client = site.client()
    voice, prompt = sec.new_voice(client), sec.first_ko_prompt(client)

    response = sec.upload(client, voice, prompt, data.replace(b"A_PCM/INT/LIT", b"A_ZZZ/INT/LIT"), name="take.mka")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_audio"


def test_tags_that_are_not_utf8_do_not_stop_decoding(tmp_path):
    """PyAV decodes a container's tags strictly as UTF-8 when it opens it: a UnicodeDecodeError, a 500."""
    path = tmp_path / "memo.m4a"
    write_with_pyav(path, np.full((1, 22050), 0.3, dtype=np.float32), 22050, "mp4", "aac", {"title": "TAGTAGTAG"})
    data = path.read_bytes()
    assert data.count(b"TAGTAGTAG") == 1
    path.write_bytes(data.replace(b"TAGTAGTAG", b"\xffTAG\xfeTAG\xc2"))

    wave, rate = load_audio_bounded(path, AudioLimits(max_seconds=10))
    assert rate == 22050 and wave.size > 20000
