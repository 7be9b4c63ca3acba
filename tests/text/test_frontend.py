import json

import pytest

import moksori.text as text_package
from moksori.text import (
    FrontendResult,
    SymbolTable,
    TextFrontend,
    UnreadableTextError,
    UnreadableTextWarning,
    symbol_table,
)
from moksori.text.tokens import tokens_to_korean



def test_package_exports_work_on_a_known_input() -> None:
    """Every name ``moksori.text`` exports, used from the package, on inputs with known output."""
    result = text_package.TextFrontend("ko").process("국밥 먹자.")
    assert isinstance(result, text_package.FrontendResult)
    # 경음화 (밥 → 빱), 비음화 across the word boundary (빱 먹 → 빰 먹), 경음화 (자 → 짜)
    assert result.pronounced == "국빰 먹짜."
    assert result.tokens == [
        "\u1100", "\u116e", "\u11a8",  # 국: onset ㄱ, vowel ㅜ, coda ㄱ
        "\u1108", "\u1161", "\u11b7",  # 빰: onset ㅃ, vowel ㅏ, coda ㅁ
        " ",
        "\u1106", "\u1165", "\u11a8",  # 먹: onset ㅁ, vowel ㅓ, coda ㄱ
        "\u110d", "\u1161",  # 짜: onset ㅉ, vowel ㅏ
        ".",
    ]  # fmt: skip
    # ids of the versioned table: stored voices depend on them never moving
    table = text_package.symbol_table("ko")
    assert isinstance(table, text_package.SymbolTable)
    assert (table.version, len(table), table.pad_id, table.blank_id) == ("ko-jamo-1", 75, 0, 1)
    assert result.ids == [8, 40, 48, 16, 27, 63, 2, 14, 31, 48, 21, 27, 3]
    assert table.to_tokens(result.ids) == result.tokens
    assert text_package.TextFrontend("en").process("Hi, Bob.").ids == [17, 18, 4, 2, 11, 24, 11, 3]
    with pytest.raises(text_package.UnknownSymbolError, match=r"'Z' \(U\+005A\) is not in symbol table 'ko-jamo-1'"):
        table.to_ids(["Z"])

    text = "국밥 먹자. 좋아!\n\n내일 봐요."
    assert text_package.split_paragraphs(text) == [["국밥 먹자.", "좋아!"], ["내일 봐요."]]
    assert text_package.split_sentences(text) == ["국밥 먹자.", "좋아!", "내일 봐요."]

    with pytest.raises(text_package.UnreadableTextError) as caught:
        text_package.TextFrontend("ko").to_ids("국밥 😀")
    assert caught.value.characters == ["😀"]
    with pytest.warns(text_package.UnreadableTextWarning, match="😀"):
        lenient = text_package.TextFrontend("ko").to_ids("국밥 😀", strict=False)
    assert lenient == text_package.TextFrontend("ko").to_ids("국밥")


def test_korean_process_runs_every_stage() -> None:
    result = TextFrontend("ko").process("국물을 같이 먹는다.")
    assert isinstance(result, FrontendResult)
    assert result.text == "국물을 같이 먹는다."
    assert result.normalized == "국물을 같이 먹는다."
    assert result.pronounced == "궁무를 가치 멍는다."
    assert tokens_to_korean(result.tokens) == "궁무를 가치 멍는다."
    assert result.tokens[-1] == "."
    assert result.ids == symbol_table("ko").to_ids(result.tokens)


def test_korean_without_pronunciation_keeps_spelling() -> None:
    result = TextFrontend("ko", use_pronunciation=False).process("같이 먹는다")
    assert result.pronounced == "같이 먹는다"
    assert tokens_to_korean(result.tokens) == "같이 먹는다"


def test_korean_numbers_go_through_normalize() -> None:
    result = TextFrontend("ko").process("사과 3개")
    assert not any(character.isdigit() for character in result.normalized)
    assert "세" in result.normalized


def test_english_process() -> None:
    result = TextFrontend("en").process("Dr. Smith paid $3.")
    assert result.normalized == "doctor smith paid three dollars."
    assert result.pronounced == result.normalized
    assert "".join(result.tokens) == result.normalized
    assert result.ids == symbol_table("en").to_ids(result.tokens)


@pytest.mark.parametrize("language", ["ko", "en"])
def test_add_blank_interleaves_blank_id(language: str) -> None:
    sample = "가나" if language == "ko" else "hi"
    plain = TextFrontend(language).process(sample)
    blanked = TextFrontend(language, add_blank=True).process(sample)
    blank_id = symbol_table(language).blank_id
    assert blanked.ids[0::2] == [blank_id] * (len(plain.ids) + 1)
    assert blanked.ids[1::2] == plain.ids
    assert blanked.tokens[1::2] == plain.tokens
    assert len(blanked.tokens) == len(blanked.ids)


@pytest.mark.parametrize("language", ["ko", "en"])
@pytest.mark.parametrize("sample", ["", "   ", "...", " , ! ?"])
def test_empty_text_raises(language: str, sample: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        TextFrontend(language).to_ids(sample)


def test_unreadable_strict_by_default() -> None:
    with pytest.raises(UnreadableTextError) as caught:
        TextFrontend("en").to_ids("hello 😀")
    assert caught.value.characters == ["😀"]


def test_unreadable_lenient_warns() -> None:
    with pytest.warns(UnreadableTextWarning):
        ids = TextFrontend("en").to_ids("hello 😀", strict=False)
    assert ids == TextFrontend("en").to_ids("hello")


def test_unknown_language() -> None:
    with pytest.raises(ValueError, match="'fr'"):
        TextFrontend("fr")


@pytest.mark.parametrize("language", ["ko", "en"])
def test_settings_round_trip_through_json(language: str) -> None:
    frontend = TextFrontend(language, add_blank=True, use_pronunciation=False)
    settings = json.loads(json.dumps(frontend.settings()))
    assert settings["language"] == language
    assert settings["symbol_table"]["version"] == symbol_table(language).version
    rebuilt = TextFrontend.from_settings(settings)
    assert rebuilt.settings() == frontend.settings()
    sample = "같이 가요." if language == "ko" else "Come along."
    assert rebuilt.to_ids(sample) == frontend.to_ids(sample)


def test_from_settings_uses_stored_table() -> None:
    custom = SymbolTable(["_", "<blank>", " ", ".", "a", "b", "c", "h", "i"], "en-tiny-1")
    settings = {"language": "en", "add_blank": False, "symbol_table": custom.to_dict()}
    frontend = TextFrontend.from_settings(settings)
    assert frontend.symbols == custom
    assert frontend.to_ids("hi.") == [7, 8, 3]


def test_from_settings_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="language"):
        TextFrontend.from_settings({"add_blank": True})
    with pytest.raises(ValueError, match="colour"):
        TextFrontend.from_settings({"language": "ko", "colour": "red"})
    damaged = symbol_table("ko").to_dict()
    damaged["symbols"] = damaged["symbols"][:-1]
    with pytest.raises(ValueError, match="ko-jamo-1"):
        TextFrontend.from_settings({"language": "ko", "symbol_table": damaged})


def test_add_blank_needs_a_blank_symbol() -> None:
    no_blank = SymbolTable(["_", " ", "a"], "en-noblank-1")
    with pytest.raises(ValueError, match="blank"):
        TextFrontend("en", add_blank=True, symbols=no_blank)


def test_korean_corpus_sample_processes_strictly(shared_data) -> None:
    lines = (shared_data / "korean_corpus.csv").read_text(encoding="utf-8").splitlines()[:300]
    frontend = TextFrontend("ko")
    for line in lines:
        sentence = line.split("\t")[0]
        result = frontend.process(sentence)
        assert tokens_to_korean(result.tokens) == " ".join(result.pronounced.split())
        assert len(result.pronounced.split()) == len(sentence.split())  # no word merged or split


def test_spoken_symbols_leave_out_codas_that_pronunciation_never_produces() -> None:
    pronounced = TextFrontend("ko").spoken_symbols()
    spelled = TextFrontend("ko", use_pronunciation=False).spoken_symbols()
    assert "\u11ba" not in pronounced and "\u11ba" in spelled  # ㅅ as a coda: 옷 → [옫]
    assert "\u11af" in pronounced  # ㄹ survives
    assert len(spelled) - len(pronounced) == 20  # 27 codas, 7 pronounced
    # Everything the front end emits for real text is among them.
    frontend = TextFrontend("ko")
    tokens = set(frontend.process("닭 값이 없어서 꽃을 샀다. 읽고, 앉아!").tokens)
    assert tokens <= set(pronounced)


@pytest.mark.parametrize("language", ["ko", "en"])
def test_an_unreadable_character_is_named_as_written(language: str) -> None:
    """″ (U+2033) is normalised into two ′ (U+2032), and the error named ′, which nobody typed."""
    with pytest.raises(UnreadableTextError) as caught:
        TextFrontend(language).process("5″ 10")
    assert caught.value.characters == ["″"] and "U+2033" in str(caught.value)
