"""The speech endpoints apply the voice's pronunciation lexicon over the global one."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from moksori.text.lexicon import Lexicon, voice_lexicon_path


@pytest.fixture
def own_voices(voices_dir: Path, tmp_path: Path) -> Path:
    """A copy of the tiny voice, so its lexicon.json stays this test's."""
    root = tmp_path / "voices"
    shutil.copytree(voices_dir / "tiny", root / "tiny")
    return root


@pytest.fixture
def spoken_texts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts the server hands to the Synthesizer."""
    from moksori.synthesis.synthesizer import Synthesizer

    texts: list[str] = []
    original = Synthesizer.synthesize_report

    def record(self: Any, text: str, **options: Any) -> Any:
        texts.append(text)
        return original(self, text, **options)

    monkeypatch.setattr(Synthesizer, "synthesize_report", record)
    return texts


def test_voice_lexicon_wins_over_global_and_makes_unreadable_text_readable(
    make_client, own_voices: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spoken_texts: list[str]
) -> None:
    monkeypatch.setenv("MOKSORI_LEXICON", str(tmp_path / "global.json"))
    client = make_client(voices_dir=own_voices)
    assert client.get("/infer", params={"text": "☃ 좋아요", "voice": "tiny"}).status_code == 422  # unreadable

    Lexicon({"☃": "눈사람", "K-pop": "케이 팝"}).save(tmp_path / "global.json")
    Lexicon({"K-pop": "케이팝"}).save(voice_lexicon_path(own_voices / "tiny"))
    response = client.get("/infer", params={"text": "☃ K-pop 좋아요", "voice": "tiny"})
    assert response.status_code == 200, response.text
    assert spoken_texts[-1] == "눈사람 케이팝 좋아요"

    # An edited lexicon is heard at once (the cache key is the text after the lexicon).
    Lexicon({"K-pop": "코리안 팝"}).save(voice_lexicon_path(own_voices / "tiny"))
    again = client.post("/v1/audio/speech", json={"input": "☃ K-pop 좋아요", "voice": "tiny", "response_format": "wav"})
    assert again.status_code == 200 and again.headers["x-cache"] == "miss"
    assert spoken_texts[-1] == "눈사람 코리안 팝 좋아요"


def test_streamed_synthesis_applies_the_lexicon(make_client, own_voices: Path) -> None:
    Lexicon({"☃": "눈사람"}).save(voice_lexicon_path(own_voices / "tiny"))
    client = make_client(voices_dir=own_voices)
    response = client.post("/synthesize", json={"text": "☃ 좋아요.", "voice": "tiny", "stream": True})
    assert response.status_code == 200, response.text


def test_a_broken_voice_lexicon_is_a_clear_server_error(make_client, own_voices: Path) -> None:
    voice_lexicon_path(own_voices / "tiny").write_text("{broken", encoding="utf-8")
    response = make_client(voices_dir=own_voices).get("/infer", params={"text": "안녕", "voice": "tiny"})
    assert response.status_code == 500 and response.json()["error"]["code"] == "lexicon_unusable"


def test_database_voice_gets_its_rows_entries(make_client, own_voices: Path, db_url: str, spoken_texts: list[str]) -> None:
    from moksori.store import Database, Voice
    from moksori.store.lexicon import set_entry

    with Database(db_url) as db:
        with db.session() as session:
            row = Voice(name="줄리", language="ko", bundle_path=str(own_voices / "tiny"))
            session.add(row)
            session.flush()
            row_id = row.id
        set_entry(db, row_id, "☃", "눈사람")
    client = make_client(voices_dir=own_voices, db_url=db_url)
    response = client.get("/infer", params={"text": "☃ 안녕", "voice": "줄리"})
    assert response.status_code == 200, response.text
    assert spoken_texts[-1] == "눈사람 안녕"
