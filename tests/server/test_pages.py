"""The server's pages and what they read: the landing page, the offline API docs, voice cards
(controls from the models' knobs, Griffin-Lim labelled, privacy as the API's), the ``default``
voice name, and AAC from /v1/audio/speech."""

from __future__ import annotations

import io
import re
from pathlib import Path

import av
import pytest

from moksori.bench.serve import build_tiny_voice
from moksori.store import Database, Voice
from moksori.store.accounts import create_user
from moksori.store.keys import create_api_key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_landing_page_links_the_pages_and_loads_nothing_from_elsewhere(make_client) -> None:
    page = make_client().get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    links = set(re.findall(r'href="([^"]+)"', page.text))
    assert {"/listen", "/studio", "/docs", "/redoc"} <= links
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "studio is off" in page.text  # no database here
    assert not re.search(r'(src|href)="https?:', page.text)


def test_docs_pages_use_the_packaged_swagger_ui_and_redoc(make_client) -> None:
    client = make_client()
    for path, asset in (("/docs", "/docs/static/swagger-ui-bundle.js"), ("/redoc", "/docs/static/redoc.standalone.js")):
        page = client.get(path)
        assert page.status_code == 200 and asset in page.text, page.text
        assert not re.search(r'(src|href)="https?:', page.text), page.text
        assert "img-src 'self' data:" in page.headers["content-security-policy"]
        script = client.get(asset)
        assert script.status_code == 200 and len(script.content) > 100_000
    assert client.get("/docs/static/swagger-ui.css").headers["content-type"].startswith("text/css")
    missing = client.get("/docs/static/..%2F__init__.py")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_voice_card_names_models_controls_and_griffin_lim(make_client, tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    build_tiny_voice(voices / "tiny", name="tiny")
    build_tiny_voice(voices / "rough", name="rough", griffin_lim=True)
    client = make_client(voices_dir=voices, include_default_voice=True)
    card = client.get("/voices/tiny/card").json()
    assert card["acoustic"]["model"] == "glow_tts" and card["vocoder"]["trained"]
    assert set(card["controls"]) == {"speed", "sigma"}  # Glow-TTS reads noise_scale; no style, no vocoder knobs
    assert card["suggested_vocoder"] is None
    rough = client.get("/voices/rough/card").json()
    assert rough["vocoder"] == {"model": "griffin_lim", "trained": False, "parameters": None}
    offer = rough["suggested_vocoder"]
    assert offer == {"voice": "ko_default", "model": "vocos", "field": "vocoder_voice"}
    shipped = client.get("/voices/ko_default/card").json()
    assert shipped["data_minutes"] > 300 and shipped["evaluation"]["mcd_db"] > 0
    assert shipped["steps"]["acoustic"] > 0
    unknown = client.get("/voices/nobody/card")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "voice_not_found"


def test_voice_card_of_a_private_voice_needs_its_owners_key(make_client, db_url, voices_dir) -> None:
    database = Database(db_url)
    alice = create_user(database, "alice", "correct horse battery")
    bob = create_user(database, "bob", "correct horse battery")
    with database.session() as session:
        row = Voice(name="secret", language="ko", owner_id=alice.id, is_private=True, bundle_path=str(voices_dir / "tiny"))
        session.add(row)
    _, alice_key = create_api_key(database, "alice", owner_id=alice.id)
    _, bob_key = create_api_key(database, "bob", owner_id=bob.id)
    client = make_client(db_url=db_url, require_api_keys=True)
    assert client.get(f"/voices/{row.id}/card").status_code == 401
    assert client.get(f"/voices/{row.id}/card", headers=bearer(bob_key)).status_code == 404
    mine = client.get(f"/voices/{row.id}/card", headers=bearer(alice_key))
    assert mine.status_code == 200 and mine.json()["name"] == "secret" and mine.json()["private"]
    database.dispose()


def test_default_names_the_default_voice(make_client) -> None:
    client = make_client()
    for request in (lambda: client.get("/infer", params={"text": "안녕", "voice": "default"}),
                    lambda: client.post("/synthesize", json={"text": "안녕", "voice": "default"})):
        response = request()
        assert response.status_code == 200 and response.headers["x-voice"] == "tiny", response.text


def test_openai_speech_answers_aac(make_client) -> None:
    response = make_client().post("/v1/audio/speech", json={"input": "안녕하세요. 반갑습니다.", "response_format": "aac"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/aac" and response.content[:2] == b"\xff\xf1"  # ADTS sync word
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        assert stream.codec_context.name == "aac" and stream.rate == 22050
    assert samples / 22050 == pytest.approx(float(response.headers["x-audio-seconds"]), abs=0.1)


def test_serve_prints_where_the_pages_are() -> None:
    from moksori.server.run import page_urls

    lines = page_urls("127.0.0.1", 8123).splitlines()
    assert lines[0] == "moksori server at http://127.0.0.1:8123/"
    assert "http://127.0.0.1:8123/listen" in lines[1] and "http://127.0.0.1:8123/studio" in lines[2]
    assert "http://127.0.0.1:8123/docs" in lines[3]
    wildcard = page_urls("0.0.0.0", 80, studio=False)
    assert "http://127.0.0.1:80/listen" in wildcard and "studio: off" in wildcard and "all addresses" in wildcard
    assert "http://[::1]:8000/listen" in page_urls("::", 8000)


def test_a_griffin_lim_voice_can_speak_through_the_shipped_vocoder(make_client, tmp_path: Path) -> None:
    import numpy as np
    import soundfile

    voices = tmp_path / "voices"
    build_tiny_voice(voices / "rough", name="rough", griffin_lim=True)
    client = make_client(voices_dir=voices, include_default_voice=True)

    def speak(**extra: str) -> tuple[np.ndarray, str]:
        response = client.get("/infer", params={"text": "안녕하세요.", "voice": "rough", "sigma": "0", **extra})
        assert response.status_code == 200, response.text
        return soundfile.read(io.BytesIO(response.content))[0], response.headers["x-cache"]

    own, _ = speak()
    lent, cache = speak(vocoder_voice="ko_default")
    assert cache == "miss" and len(lent) == len(own) and not np.allclose(lent, own, atol=1e-3)
    streamed = client.post("/synthesize", json={"text": "안녕하세요.", "voice": "rough", "vocoder_voice": "ko_default",
                                                "sigma": 0, "stream": True, "format": "pcm"})
    assert streamed.status_code == 200 and len(streamed.content) == 2 * len(lent)
    pcm = np.frombuffer(streamed.content, "<i2") / 32767.0
    assert np.abs(pcm - lent).max() < 0.05  # the same borrowed vocoder, streamed
    for lender, status, code, words in (("nobody", 404, "voice_not_found", "'nobody'"),
                                        ("rough", 400, "vocoder_mismatch", "Griffin-Lim")):
        response = client.get("/infer", params={"text": "안녕.", "voice": "ko_default", "vocoder_voice": lender})
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code and words in response.json()["error"]["message"]
