import pytest

from moksori.text.sentences import split_paragraphs, split_sentences

KOREAN = (
    "오늘은 날씨가 좋다. 내일은 비가 올까요? 정말 그래요! 모르겠어요… "
    '그래서 "가자."라고 했다. 그가 "먼저 가. 나중에 갈게." 하고 말했다. 원주율은 3.14입니다.'
)
ENGLISH = (
    "Mr. Smith met Dr. Jones, e.g. at noon. J. K. Rowling wrote it. "
    'He said "Stop. Now." Then he left... Really? Yes! It was 3.50 dollars. I was born in 1995. Then I grew.'
)


def test_korean_paragraph() -> None:
    assert split_sentences(KOREAN) == [
        "오늘은 날씨가 좋다.",
        "내일은 비가 올까요?",
        "정말 그래요!",
        "모르겠어요…",
        '그래서 "가자."라고 했다.',
        '그가 "먼저 가. 나중에 갈게." 하고 말했다.',
        "원주율은 3.14입니다.",
    ]


def test_english_paragraph() -> None:
    assert split_sentences(ENGLISH) == [
        "Mr. Smith met Dr. Jones, e.g. at noon.",
        "J. K. Rowling wrote it.",
        'He said "Stop. Now."',
        "Then he left...",
        "Really?",
        "Yes!",
        "It was 3.50 dollars.",
        "I was born in 1995.",
        "Then I grew.",
    ]


@pytest.mark.parametrize(
    "sentence",
    [
        "행사는 2026.11.21. 토요일에 열린다.",
        "행사는 2026. 11. 21. 토요일에 열린다.",
        "값은 약 3.5배 올랐다.",
        "See Fig. 3 and vol. 2 for details.",
        "(괄호 안. 문장도) 한 문장이다.",
        "그는 「첫째. 둘째.」 하고 적었다.",
        "이건 A.I. 기술이다.",
        "The U.S. Army came.",
        "교재 p. 23을 보세요.",
        "He was born Sept. 30 on Mt. Fuji, Ph.D. in hand.",
        "Call ext. 23 now.",
    ],
)
def test_no_split_inside(sentence: str) -> None:
    assert split_sentences(sentence) == [sentence]


def test_line_breaks_and_paragraphs() -> None:
    text = "첫 문단입니다. 둘째 문장.\n같은 문단 다음 줄\n\n  \n둘째 문단입니다.\r\n\r\nThird one. Fourth!"
    assert split_paragraphs(text) == [
        ["첫 문단입니다.", "둘째 문장.", "같은 문단 다음 줄"],
        ["둘째 문단입니다."],
        ["Third one.", "Fourth!"],
    ]
    assert split_sentences(text) == [s for p in split_paragraphs(text) for s in p]


def test_empty_text() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\n \n") == []
    assert split_paragraphs("") == []


def test_long_sentence_is_cut_at_commas_first() -> None:
    clause = "하늘은 맑고 바람은 시원했으며"
    sentence = ", ".join([clause] * 12) + "."
    pieces = split_sentences(sentence, max_chars=60)
    assert all(len(piece) <= 60 for piece in pieces)
    assert all(piece.endswith((",", ".")) for piece in pieces)
    assert " ".join(pieces) == sentence


def test_long_clause_is_cut_at_spaces() -> None:
    sentence = " ".join(["word"] * 100) + "."
    pieces = split_sentences(sentence, max_chars=42)
    assert all(0 < len(piece) <= 42 for piece in pieces)
    assert " ".join(pieces) == sentence


def test_overlong_word_is_cut() -> None:
    assert split_sentences("x" * 25, max_chars=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_short_sentences_untouched_by_limit() -> None:
    assert split_sentences("짧은 문장. 또 하나.", max_chars=10) == ["짧은 문장.", "또 하나."]


def test_invalid_max_chars() -> None:
    with pytest.raises(ValueError):
        split_sentences("가", max_chars=0)


def test_a_list_items_number_does_not_end_a_sentence() -> None:
    """"1. 사과" was split into the sentences "1." and "사과", a sentence pause after each number."""
    assert split_sentences("1. 사과를 씻는다. 2. 껍질을 깎는다.") == ["1. 사과를 씻는다.", "2. 껍질을 깎는다."]
    assert split_sentences("준비물:\n1. 사과\n2. 배") == ["준비물:", "1. 사과", "2. 배"]
    assert split_sentences("답은 5. 다음 문제.") == ["답은 5.", "다음 문제."]  # a number that ends a sentence
    assert split_sentences("2026. 새해가 밝았다.") == ["2026.", "새해가 밝았다."]  # a year heading
