import pytest
from ko_speech_tools.jamo import h2j, j2h

from moksori.text.errors import UnreadableTextError, UnreadableTextWarning
from moksori.text.symbols import (
    BLANK,
    BUILTIN_TABLES,
    CODAS,
    NUCLEI,
    ONSETS,
    PAD,
    SymbolTable,
    UnknownSymbolError,
    symbol_table,
)
from moksori.text.tokens import (
    decompose_syllable,
    english_to_tokens,
    intersperse,
    korean_to_tokens,
    tokens_to_korean,
)


# --- symbol tables ---------------------------------------------------------


@pytest.mark.parametrize(("language", "version"), [("ko", "ko-jamo-1"), ("en", "en-char-1")])
def test_builtin_table_layout(language: str, version: str) -> None:
    table = symbol_table(language)
    assert table.version == version
    assert table.symbols[0] == PAD and table.pad_id == 0
    assert table.blank_id == 1 and table.symbols[1] == BLANK
    for prosody in " .,?!…":
        assert prosody in table
    assert len(set(table.symbols)) == len(table)


def test_korean_table_has_distinct_onset_nucleus_coda() -> None:
    table = symbol_table("ko")
    assert len(ONSETS) == 19 and len(NUCLEI) == 21 and len(CODAS) == 27
    assert ONSETS[0] == "\u1100" and NUCLEI[0] == "\u1161" and CODAS[0] == "\u11a8"
    for jamo in ONSETS + NUCLEI + CODAS:
        assert jamo in table
    # ㄱ as onset and as coda are different ids
    assert table.to_ids(["\u1100"]) != table.to_ids(["\u11a8"])
    assert len(table) == 2 + 6 + 19 + 21 + 27


def test_english_table_letters() -> None:
    table = symbol_table("en")
    assert all(letter in table for letter in "abcdefghijklmnopqrstuvwxyz'-")
    assert "A" not in table


def test_unknown_language() -> None:
    with pytest.raises(ValueError, match="'fr'"):
        symbol_table("fr")


def test_ids_round_trip() -> None:
    table = symbol_table("ko")
    tokens = korean_to_tokens("안녕하세요, 세상!")
    ids = table.to_ids(tokens)
    assert all(isinstance(i, int) and 0 < i < len(table) for i in ids)
    assert table.to_tokens(ids) == tokens


def test_unknown_symbol_names_it() -> None:
    table = symbol_table("en")
    with pytest.raises(UnknownSymbolError, match=r"'Q'.*U\+0051.*en-char-1"):
        table.to_ids(["a", "Q"])
    with pytest.raises(UnknownSymbolError, match="999"):
        table.to_tokens([1, 999])
    with pytest.raises(UnknownSymbolError):
        table.to_tokens([-1])


def test_dict_round_trip() -> None:
    table = symbol_table("ko")
    stored = table.to_dict()
    assert stored["version"] == "ko-jamo-1"
    assert SymbolTable.from_dict(stored) == table


def test_from_dict_rejects_edited_builtin_version() -> None:
    stored = symbol_table("en").to_dict()
    stored["symbols"][5], stored["symbols"][6] = stored["symbols"][6], stored["symbols"][5]
    with pytest.raises(ValueError, match="en-char-1.*id 5"):
        SymbolTable.from_dict(stored)
    shorter = symbol_table("en").to_dict()
    shorter["symbols"].pop()
    with pytest.raises(ValueError, match="differ"):
        SymbolTable.from_dict(shorter)


def test_from_dict_keeps_an_unknown_version_as_stored() -> None:
    stored = {"version": "xx-custom-3", "symbols": ["_", "<blank>", " ", "a", "b"]}
    table = SymbolTable.from_dict(stored)
    assert table.to_ids(["b", " ", "a"]) == [4, 2, 3]
    assert table.version == "xx-custom-3"


@pytest.mark.parametrize(
    "stored",
    [
        {"symbols": ["_"]},
        {"version": "v", "symbols": "_ab"},
        {"version": "v", "symbols": []},
        {"version": "v", "symbols": ["_", "a", "a"]},
        {"version": "v", "symbols": ["_", ""]},
        None,
    ],
)
def test_from_dict_rejects_malformed(stored) -> None:
    with pytest.raises(ValueError):
        SymbolTable.from_dict(stored)


def test_builtin_versions_are_frozen() -> None:
    # Changing a built-in table breaks every voice trained with it: add a new version.
    assert len(BUILTIN_TABLES["ko-jamo-1"]) == 75
    assert len(BUILTIN_TABLES["en-char-1"]) == 36


# --- Korean tokens -----------------------------------------------------------


def test_decompose_syllable() -> None:
    assert decompose_syllable("한") == ["\u1112", "\u1161", "\u11ab"]
    assert decompose_syllable("가") == ["\u1100", "\u1161"]
    assert decompose_syllable("닭") == ["\u1103", "\u1161", "\u11b0"]
    with pytest.raises(ValueError):
        decompose_syllable("a")


def test_decompose_agrees_with_jamo_library() -> None:
    text = "닭장 저쪽 구석에서 훨씬훨씬 똑똑한 꽃봉오리"
    tokens = [t for t in korean_to_tokens(text) if t != " "]
    assert "".join(tokens) == h2j(text).replace(" ", "")


@pytest.mark.parametrize(
    "text",
    [
        "안녕하세요.",
        "그래서 걔가 누구한테 얘기했는데?",
        "닭, 값, 삶, 읊다, 핥다, 없다!",
        "쓱싹쓱싹 색칠 과정까지 즐길 수 있어요…",
    ],
)
def test_text_to_jamo_to_text_round_trip(text: str) -> None:
    assert tokens_to_korean(korean_to_tokens(text)) == text


def test_round_trip_against_jamo_library_composition() -> None:
    tokens = korean_to_tokens("빼빼로")
    assert tokens_to_korean(tokens) == "".join(j2h(*tokens[i : i + 2]) for i in range(0, 6, 2))


def test_korean_prosody_tokens() -> None:
    tokens = korean_to_tokens("가,  나...\n다;  라 — 마 .")
    assert tokens == ["ᄀ", "ᅡ", ",", " ", "ᄂ", "ᅡ", "…", " ", "ᄃ", "ᅡ", ",", " ", "ᄅ", "ᅡ", ",", " ", "ᄆ", "ᅡ", "."]


def test_quotes_and_brackets_are_silent() -> None:
    assert korean_to_tokens('"가"(나)') == korean_to_tokens("가나")


def test_trailing_space_dropped_and_space_collapsed() -> None:
    assert korean_to_tokens("  가   나  ") == ["ᄀ", "ᅡ", " ", "ᄂ", "ᅡ"]


def test_unreadable_strict_raises_with_characters() -> None:
    with pytest.raises(UnreadableTextError) as caught:
        korean_to_tokens("가 abc 😀 나")
    assert caught.value.characters == ["a", "b", "c", "😀"]


def test_unreadable_lenient_warns_and_drops() -> None:
    with pytest.warns(UnreadableTextWarning, match="'#'"):
        tokens = korean_to_tokens("가#나", strict=False)
    assert tokens == ["ᄀ", "ᅡ", "ᄂ", "ᅡ"]


def test_decomposed_jamo_pass_through() -> None:
    assert korean_to_tokens(h2j("값")) == ["ᄀ", "ᅡ", "ᆹ"]


def test_tokens_to_korean_skips_blank_and_keeps_stray_jamo() -> None:
    assert tokens_to_korean([BLANK, "ᄀ", BLANK, "ᅡ", BLANK, "ᆫ", BLANK]) == "간"
    assert tokens_to_korean(["ᄀ", "ᄂ", "ᅡ"]) == "ᄀ나"
    assert tokens_to_korean(["ᄀ", "ᅡ", "ᅡ"]) == "가ᅡ"


# --- English tokens and blanks -----------------------------------------------


def test_english_tokens() -> None:
    assert english_to_tokens("it's a well-known fact.") == list("it's a well-known fact.")


def test_english_uppercase_is_unreadable() -> None:
    with pytest.raises(UnreadableTextError):
        english_to_tokens("Hello")


def test_intersperse() -> None:
    assert intersperse([5, 6, 7], 1) == [1, 5, 1, 6, 1, 7, 1]
    assert intersperse([], 1) == [1]
