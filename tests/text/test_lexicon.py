"""User pronunciation lexicons: matching, precedence, storage (file and database) and the CLI."""

import json
from pathlib import Path

import pytest

from moksori.cli import main
from moksori.text.lexicon import (
    LEXICON_FORMAT,
    Lexicon,
    LexiconError,
    effective_lexicon,
    merge,
    voice_lexicon_path,
)

BRANDS = {"카카오T": "카카오 티", "K-pop": "케이팝", "k-drama": "케이드라마", "T": "티", "IT": "아이티"}

MATCHING = [
    ("카카오T를 불렀다", "카카오 티를 불렀다"),  # Hangul end: a particle may follow
    ("K-pop 공연", "케이팝 공연"),
    ("k-pop 공연", "k-pop 공연"),  # written with a capital: exact case only
    ("K-Drama 보기", "케이드라마 보기"),  # written in lowercase: any case
    ("IT 회사", "아이티 회사"),
    ("it is", "it is"),
    ("KT 통신", "KT 통신"),  # T is not matched inside a longer Latin word
    ("T맵", "티맵"),
    ("카카오톡", "카카오톡"),
]


@pytest.mark.parametrize(("text", "expected"), MATCHING)
def test_apply_matches_whole_forms_longest_first(text: str, expected: str) -> None:
    assert Lexicon(dict(BRANDS)).apply(text) == expected


def test_longest_written_form_wins_and_replacement_is_one_pass() -> None:
    lexicon = Lexicon({"카카오": "카카오오", "카카오T": "카카오 티", "티": "NEVER"})
    assert lexicon.apply("카카오T 카카오") == "카카오 티 카카오오"


def test_voice_entries_win_over_global_ones() -> None:
    global_lexicon = Lexicon({"K-pop": "케이 팝", "BTS": "비티에스"})
    voice = Lexicon({"K-pop": "케이팝"})
    merged = merge(global_lexicon, voice)
    assert merged.entries == {"K-pop": "케이팝", "BTS": "비티에스"}
    assert merge(voice, global_lexicon).entries["K-pop"] == "케이 팝"


def test_effective_lexicon_reads_global_then_voice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOKSORI_LEXICON", str(tmp_path / "global.json"))
    Lexicon({"K-pop": "케이 팝", "BTS": "비티에스"}).save(tmp_path / "global.json")
    voice_dir = tmp_path / "voice"
    Lexicon({"K-pop": "케이팝"}).save(voice_lexicon_path(voice_dir))
    assert effective_lexicon(voice_dir).apply("BTS K-pop") == "비티에스 케이팝"
    assert effective_lexicon(None).apply("BTS K-pop") == "비티에스 케이 팝"
    assert effective_lexicon(voice_dir, [Lexicon({"BTS": "방탄"})]).apply("BTS") == "방탄"


def test_lexicon_is_applied_before_normalisation() -> None:
    from moksori.text import TextFrontend

    frontend = TextFrontend("ko")
    replaced = Lexicon({"RTX": "알티엑스", "카카오T": "카카오 티"}).apply("카카오T 3대")
    assert frontend.process(replaced).normalized == "카카오 티 세 대"


@pytest.mark.parametrize(
    ("written", "spoken", "message"),
    [("", "x", "written form is empty"), ("a", "  ", "spoken form"), ("a\nb", "x", "line breaks"),
     ("x" * 101, "y", "longer than 100"), ("a", "y" * 201, "longer than 200")],
)
def test_bad_entries_are_refused_with_the_reason(written: str, spoken: str, message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        Lexicon().add(written, spoken)


def test_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.json"
    assert len(Lexicon.load(path)) == 0  # no file yet: empty
    Lexicon(dict(BRANDS)).save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == LEXICON_FORMAT
    assert Lexicon.load(path).entries == BRANDS
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(LexiconError, match="line 1, column 2"):
        Lexicon.load(path)
    path.write_text(json.dumps({"entries": {}}), encoding="utf-8")
    with pytest.raises(LexiconError, match="not a moksori lexicon"):
        Lexicon.load(path)


def test_remove_names_a_missing_entry() -> None:
    lexicon = Lexicon({"a": "에이"})
    assert lexicon.remove("a") == "에이"
    with pytest.raises(LookupError, match="'a'"):
        lexicon.remove("a")


def test_database_lexicon_of_a_voice(tmp_path: Path) -> None:
    from moksori.store import Database, Voice
    from moksori.store.lexicon import load_lexicon, remove_entry, set_entry

    with Database(f"sqlite:///{tmp_path / 'm.db'}") as db:
        with db.session() as session:
            voice = Voice(name="v", language="ko")
            session.add(voice)
            session.flush()
            voice_id = voice.id
        assert set_entry(db, voice_id, " K-pop ", "케이 팝") == ("K-pop", "케이 팝")
        set_entry(db, voice_id, "K-pop", "케이팝")  # changes the existing entry
        assert load_lexicon(db, voice_id).entries == {"K-pop": "케이팝"}
        with pytest.raises(LexiconError):
            set_entry(db, voice_id, "", "x")
        remove_entry(db, voice_id, "K-pop")
        with pytest.raises(LookupError):
            remove_entry(db, voice_id, "K-pop")
        set_entry(db, voice_id, "BTS", "비티에스")
        with db.session() as session:
            session.delete(session.get(Voice, voice_id))
        assert len(load_lexicon(db, voice_id)) == 0  # deleted with its voice


def test_cli_add_list_test_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MOKSORI_LEXICON", str(tmp_path / "global.json"))
    voice_dir = tmp_path / "voice"
    voice_dir.mkdir()
    (voice_dir / "voice.json").write_text("{}", encoding="utf-8")
    assert main(["lexicon", "add", "카카오T", "카카오 티"]) == 0
    assert main(["lexicon", "add", "K-pop", "케이 팝"]) == 0
    assert main(["lexicon", "add", "K-pop", "케이팝", "--voice", str(voice_dir)]) == 0
    capsys.readouterr()
    assert main(["lexicon", "list"]) == 0
    assert "카카오T\t카카오 티" in capsys.readouterr().out
    assert main(["lexicon", "test", "카카오T로 K-pop 2곡", "--voice", str(voice_dir)]) == 0
    out = capsys.readouterr().out
    assert "lexicon:    카카오 티로 케이팝 2곡" in out
    assert "normalized: 카카오 티로 케이팝 두 곡" in out
    assert main(["lexicon", "remove", "K-pop", "--voice", str(voice_dir)]) == 0
    assert Lexicon.load(voice_dir / "lexicon.json").entries == {}
    assert main(["lexicon", "remove", "K-pop", "--voice", str(voice_dir)]) == 2
    assert "no entry 'K-pop'" in capsys.readouterr().err
    assert main(["lexicon", "add", "x", "y", "--voice", str(tmp_path / "nowhere")]) == 2
    assert "not a voice folder" in capsys.readouterr().err


def test_a_rebuilt_voice_bundle_keeps_its_lexicon(tmp_path: Path) -> None:
    from moksori.bench.serve import build_tiny_voice

    voice = build_tiny_voice(tmp_path / "tiny", griffin_lim=True)
    Lexicon({"K-pop": "케이팝"}).save(voice_lexicon_path(voice))
    build_tiny_voice(tmp_path / "tiny", griffin_lim=True)  # the same voice, written again
    assert Lexicon.load(voice_lexicon_path(voice)).entries == {"K-pop": "케이팝"}
