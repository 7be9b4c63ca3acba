"""표준 발음법 articles 13–30 on our own table (tests/text/data/pronunciation_articles.tsv).

Each case's test id carries its article (a15-첫아들). The same table is scored side by side
with ko-speech-tools and g2pk2 by benchmarks/korean_g2p.py.
"""

from pathlib import Path

import pytest

from moksori.text.korean import morphemes
from moksori.text.korean.pronounce import pronounce_hangul

TABLE = Path(__file__).parent / "data" / "pronunciation_articles.tsv"
# Known misses, kept in the table so the benchmark counts them: mecab-ko-dic tags 신다 as a
# proper noun and 심고, 간염 as single nouns; 부엌일 is the native 일 ("work") after two
# syllables, which data/no_n_insertion.tsv reads as -일(日) (기념일 [기녀밀]).
KNOWN_MISSES = {"신다", "심고", "간염", "부엌일"}


def _cases() -> list:
    cases = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        article, written, spoken = line.split("\t")
        marks = [pytest.mark.xfail(strict=True, reason="known miss")] if written in KNOWN_MISSES else []
        cases.append(pytest.param(written, tuple(spoken.split("|")), id=f"a{article}-{written}", marks=marks))
    return cases


CASES = _cases()


def test_table_is_large_and_covers_every_article() -> None:
    articles = {case.id.split("-")[0] for case in CASES}
    assert len(CASES) >= 150
    assert {"a15", "a16", "a17", "a24", "a26", "a29", "a30"} <= articles


@pytest.mark.parametrize(("written", "allowed"), CASES)
def test_article(written: str, allowed: tuple[str, ...]) -> None:
    assert pronounce_hangul(written) in allowed


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("꽃잎이", "꼰니피"),  # the library's idiom list gave 꼰니비
        ("깻잎을", "깬니플"),
        ("이천이십", "이처니십"),  # Sino-Korean numerals take no ㄴ
        ("열일곱", "열릴곱"),  # native ones do
        ("한국인이", "한구기니"),  # -인(人): data/no_n_insertion.tsv
        ("골드", "골드"),  # a loanword: no 제26항 tensing
        ("사건과", "사껀과"),
        ("치읓은", "치으슨"),
    ],
    ids=["a30-꽃잎이", "a30-깻잎을", "a29-이천이십", "a29-열일곱", "a29-한국인이", "a26-골드", "a26-사건과", "a16-치읓은"],
)
def test_rule_edges(written: str, spoken: str) -> None:
    assert pronounce_hangul(written) == spoken


def test_no_liaison_across_a_space() -> None:
    # 제15항 across words ([꼬뒤]) is left to the eojeol boundary; the coda is neutralised.
    assert pronounce_hangul("꽃 위") == "꼳 위"
    assert pronounce_hangul("돈 있어") == "돈 이써"


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("새로운 영화", "새로운 영화"),  # a longer noun after a modifier: no ㄴ
        ("물론 읽었지만", "물론 일걷찌만"),  # an adverb said apart
        ("나은 여동생", "나은 여동생"),  # 여- is a piece of a compound, not a word
        ("삼 일", "삼 일"),  # Sino-Korean numerals
    ],
    ids=["a29-새로운-영화", "a29-물론-읽었지만", "a29-나은-여동생", "a29-삼-일"],
)
def test_no_n_insertion_across_a_space(written: str, spoken: str) -> None:
    assert pronounce_hangul(written) == spoken


def test_lexicon_rows_are_checked() -> None:
    lexicon = morphemes._tensification()
    assert lexicon["문법"] == "문뻡"
    assert all(len(word) == len(spoken) for word, spoken in lexicon.items())


def test_misaligned_analysis_falls_back() -> None:
    class Tagger:
        def parse(self, text: str) -> str:
            return "다른\tNNG,*,F,다른,*,*,*,*\nEOS\n"

    assert morphemes.annotate_with_rules("같은", Tagger()) is None
