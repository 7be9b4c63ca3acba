"""Built-in prompt lists and the prompt-file reader (moksori.data.prompt_sets)."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from importlib import resources

import pytest

from moksori.data.prompt_sets import (
    CODAS,
    NUCLEI,
    ONSETS,
    Prompt,
    PromptFileWarning,
    available_languages,
    builtin_prompt_records,
    builtin_prompts,
    jamo_coverage,
    missing_jamo,
    read_prompt_file,
    read_prompts,
    to_compatibility_jamo,
)

LATIN_OR_DIGIT = re.compile(r"[0-9A-Za-z]")


def _raw_lines(language: str) -> list[str]:
    data = (resources.files("moksori.data") / "prompts" / f"{language}.tsv").read_bytes()
    return data.decode("utf-8").splitlines()


# --------------------------------------------------------------------------- built-in lists


@pytest.fixture(scope="module")
def ko() -> list[str]:
    return builtin_prompts("ko")


def test_available_languages():
    assert {"ko", "en"} <= set(available_languages())


def test_ko_size_and_uniqueness(ko):
    assert len(ko) >= 520
    duplicates = [s for s, n in Counter(ko).items() if n > 1]
    assert not duplicates
    assert len(set(ko)) >= 500


@pytest.mark.parametrize("language", ["ko", "en"])
def test_length_column_matches(language):
    lines = _raw_lines(language)
    assert lines, language
    for number, line in enumerate(lines, start=1):
        sentence, count = line.split("\t")
        assert sentence == sentence.strip() and sentence, f"{language}.tsv:{number}"
        assert int(count) == len(sentence), f"{language}.tsv:{number}: {line!r}"


def test_ko_jamo_coverage(ko):
    missing = missing_jamo(ko, min_count=3)
    assert not missing, "jamo seen < 3 times: " + " ".join(
        f"{to_compatibility_jamo(j)} (U+{ord(j):04X})" for j in missing
    )


def test_ko_digits_and_latin(ko):
    assert sum(bool(LATIN_OR_DIGIT.search(s)) for s in ko) >= 40


def test_ko_lengths_are_varied(ko):
    lengths = [len(s) for s in ko]
    assert min(lengths) <= 12 and max(lengths) >= 60
    assert 28 <= sum(lengths) / len(lengths) <= 45


def test_ko_is_hangul_text(ko):
    # every sentence is mostly Hangul and ends like a sentence
    for sentence in ko:
        hangul = sum("\uac00" <= ch <= "\ud7a3" for ch in sentence)
        assert hangul >= len(sentence.replace(" ", "")) // 2, sentence
        assert sentence[-1] in ".?!", sentence


def test_en_size():
    en = builtin_prompts("en")
    assert len(en) >= 200
    assert len(set(en)) == len(en)
    assert sum(any(c.isdigit() for c in s) for s in en) >= 20


def test_builtin_language_code_is_normalised():
    assert builtin_prompts(" KO ") == builtin_prompts("ko")


@pytest.mark.parametrize("language", ["fr", "", "../ko", "ko.tsv"])
def test_unknown_language(language):
    with pytest.raises(ValueError) as info:
        builtin_prompts(language)
    assert "en" in str(info.value) and "ko" in str(info.value)


def test_builtin_records_have_line_numbers():
    records = builtin_prompt_records("ko")
    assert records[0].line == 1 and records[-1].line == len(records)
    assert records[0].source.endswith("ko.tsv")
    assert isinstance(records[0], Prompt)


# --------------------------------------------------------------------------- read_prompt_file


def test_read_tsv(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("첫 번째 문장입니다.\t11\n두 번째 문장이에요.\t10\n", encoding="utf-8")
    assert read_prompt_file(path) == ["첫 번째 문장입니다.", "두 번째 문장이에요."]
    assert read_prompt_file(str(path)) == read_prompt_file(path)


def test_read_plain_text_with_bom_crlf_blank_and_comments(tmp_path):
    path = tmp_path / "p.txt"
    text = "\ufeff# my prompts\r\n\r\n  Hello there.  \r\n   \r\n  # indented comment\r\n안녕하세요.\r\n"
    path.write_bytes(text.encode("utf-8"))
    records = read_prompts(path)
    assert [p.text for p in records] == ["Hello there.", "안녕하세요."]
    assert [p.line for p in records] == [3, 6]
    assert records[0].where == f"{path}:3"


def test_bom_not_part_of_first_sentence(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeff문장 하나.\t6\n".encode("utf-8"))
    assert read_prompt_file(path) == ["문장 하나."]


def test_mixed_layout_and_extra_columns(tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_text("plain line.\nwith count.\t11\nextra.\t6\tignored\n", encoding="utf-8")
    assert read_prompt_file(path) == ["plain line.", "with count.", "extra."]


def test_bad_count_column_warns_and_keeps_sentence(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("좋은 문장.\tabc\n", encoding="utf-8")
    with pytest.warns(PromptFileWarning, match=r"bad\.tsv:1"):
        assert read_prompt_file(path) == ["좋은 문장."]


def test_empty_sentence_column_skipped_with_warning(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("\t5\n진짜 문장.\t6\n", encoding="utf-8")
    with pytest.warns(PromptFileWarning):
        assert read_prompt_file(path) == ["진짜 문장."]


def test_decomposed_hangul_is_composed(tmp_path):
    import unicodedata

    path = tmp_path / "nfd.txt"
    path.write_text(unicodedata.normalize("NFD", "한글 문장.") + "\n", encoding="utf-8")
    assert read_prompt_file(path) == ["한글 문장."]


def test_no_warning_for_good_file(tmp_path):
    path = tmp_path / "ok.tsv"
    path.write_text("문장.\t3\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_prompt_file(path)


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n  \n", b"# only\n#comments\n"])
def test_empty_file_is_an_error(tmp_path, content):
    path = tmp_path / "empty.tsv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="empty.tsv"):
        read_prompt_file(path)


def test_non_utf8_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "euckr.txt"
    path.write_bytes("첫 줄.\n".encode("utf-8") + "둘째 줄.\n".encode("euc-kr"))
    with pytest.raises(ValueError) as info:
        read_prompt_file(path)
    message = str(info.value)
    assert "euckr.txt" in message and "line 2" in message and "byte 9" in message


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_prompt_file(tmp_path / "nope.tsv")


def test_reads_shared_korean_corpus(shared_data):
    korean_corpus = shared_data / "korean_corpus.csv"
    sentences = read_prompt_file(korean_corpus)
    # 3,922 sentences: `wc -l` (and the shared README) say 3,921 because the file's
    # last line has no trailing newline; that last sentence must not be lost.
    assert len(sentences) == 3922
    data = korean_corpus.read_bytes()
    assert len(sentences) == data.count(b"\n") + (not data.endswith(b"\n"))
    assert sentences[-1] == data.decode("utf-8").rsplit("\n", 1)[-1].split("\t")[0]
    assert all(s and "\t" not in s for s in sentences)
    assert sentences[-1].endswith(".")


# --------------------------------------------------------------------------- jamo coverage


def test_jamo_inventory_sizes():
    assert (len(ONSETS), len(NUCLEI), len(CODAS)) == (19, 21, 27)


def test_jamo_coverage_counts():
    coverage = jamo_coverage(["닭", "값없다"])
    assert set(coverage) == {"onset", "nucleus", "coda"}
    assert list(coverage["onset"]) == list(ONSETS)
    assert coverage["coda"]["\u11b0"] == 1  # ㄺ in 닭
    assert coverage["coda"]["\u11b9"] == 2  # ㅄ in 값, 없
    assert coverage["onset"]["\u1103"] == 2  # ㄷ in 닭, 다
    assert coverage["nucleus"]["\u1161"] == 3  # ㅏ in 닭, 값, 다
    assert sum(coverage["coda"].values()) == 3  # 다 has no coda
    # non-Hangul is ignored; Prompt records and a single string are accepted
    assert jamo_coverage("abc 123")["onset"]["\u1100"] == 0
    assert jamo_coverage([Prompt("가", 1)])["onset"]["\u1100"] == 1


def test_missing_jamo():
    missing = missing_jamo(["가"])
    assert "\u1100" not in missing and "\u1161" not in missing
    assert len(missing) == 19 + 21 + 27 - 2
    assert [to_compatibility_jamo(j) for j in missing_jamo(["가나", "가"], min_count=2)][:2] == ["ㄲ", "ㄴ"]
    assert to_compatibility_jamo("\u1100\u11a8\u11b3") == "ㄱㄱㄽ"
