"""SSML parsing: each supported element, say-as readings, and errors that name the line and column."""

import pytest

from moksori.text.ssml import Pause, Speech, SsmlError, parse_ssml, read_as


def parts(ssml: str, language: str = "ko", **kwargs) -> list:
    return list(parse_ssml(ssml, language, **kwargs).parts)


def test_speak_with_plain_text_is_one_part_and_whitespace_is_not_significant():
    assert parts("<speak>\n  안녕하세요.\n  반갑습니다.\n</speak>") == [Speech("안녕하세요. 반갑습니다.")]


def test_namespaced_speak_is_accepted():
    ssml = '<?xml version="1.0"?><speak version="1.1" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="ko-KR">네</speak>'
    assert parts(ssml) == [Speech("네")]


@pytest.mark.parametrize(
    ("tag", "seconds"),
    [('<break time="500ms"/>', 0.5), ('<break time="1.5s"/>', 1.5), ('<break time="0ms"/>', 0.0),
     ('<break strength="strong"/>', 0.7), ('<break strength="none"/>', 0.0), ("<break/>", 0.4)],
)
def test_break_becomes_a_pause_of_that_length(tag: str, seconds: float):
    assert parts(f"<speak>하나{tag}둘</speak>") == [Speech("하나"), Pause(seconds), Speech("둘")]


def test_p_and_s_become_paragraph_and_sentence_breaks():
    ssml = "<speak><p><s>첫 문장</s><s>둘째 문장</s></p><p>새 문단</p>끝</speak>"
    assert parts(ssml) == [Speech("첫 문장\n둘째 문장\n\n새 문단\n\n끝")]


def test_sub_says_the_alias():
    assert parts('<speak><sub alias="세계보건기구">WHO</sub>의 발표</speak>') == [Speech("세계보건기구의 발표")]


@pytest.mark.parametrize(
    ("rate", "value"),
    [("x-slow", 0.5), ("slow", 0.75), ("fast", 1.25), ("x-fast", 1.5), ("80%", 0.8), ("+20%", 1.2), ("-10%", 0.9),
     ("1.5", 1.5)],
)
def test_prosody_rate_sets_the_rate_of_its_text(rate: str, value: float):
    assert parts(f'<speak>보통 <prosody rate="{rate}">다르게</prosody> 보통</speak>') == [
        Speech("보통"), Speech("다르게", pytest.approx(value)), Speech("보통")]


def test_prosody_at_the_normal_rate_does_not_split_the_text():
    assert parts('<speak>보통 <prosody rate="medium">그대로</prosody> 보통</speak>') == [Speech("보통 그대로 보통")]


def test_nested_prosody_rates_multiply():
    ssml = '<speak><prosody rate="x-slow"><prosody rate="x-slow">아주 천천히</prosody></prosody></speak>'
    assert parts(ssml) == [Speech("아주 천천히", 0.25)]


KOREAN_SAY_AS = [
    ("characters", "KBS", None, "케이 비 에스"),
    ("characters", "가나2", None, "가 나 이"),
    ("digits", "1203", None, "일 이 영 삼"),
    ("cardinal", "1,203", None, "천이백삼"),
    ("cardinal", "-5", None, "마이너스 오"),
    ("ordinal", "1", None, "첫 번째"),
    ("ordinal", "3", None, "세 번째"),
    ("date", "2026-11-21", None, "이천이십육 년 십일월 이십일 일"),
    ("date", "6/25/1950", "mdy", "천구백오십 년 유월 이십오 일"),
    ("date", "10.9", "md", "시월 구 일"),
    ("time", "14:30", None, "열네 시 삼십 분"),
    ("time", "9:05:07", None, "아홉 시 오 분 칠 초"),
    ("time", "2:30pm", None, "오후 두 시 삼십 분"),
    ("time", "24:00", None, "스물네 시"),
    ("time", "12:30pm", None, "오후 열두 시 삼십 분"),
    ("telephone", "010-1234-5678", None, "공일공 일이삼사 오육칠팔"),
    ("telephone", "+82 2 123 4567", None, "플러스 팔이 이 일이삼 사오육칠"),
]


@pytest.mark.parametrize(("kind", "content", "date_format", "expected"), KOREAN_SAY_AS)
def test_say_as_in_korean(kind: str, content: str, date_format, expected: str):
    attribute = f' format="{date_format}"' if date_format else ""
    assert parts(f'<speak><say-as interpret-as="{kind}"{attribute}>{content}</say-as></speak>') == [Speech(expected)]


ENGLISH_SAY_AS = [
    ("characters", "NASA", None, "N A S A"),
    ("digits", "407", None, "four zero seven"),
    ("cardinal", "1203", None, "one thousand two hundred three"),
    ("ordinal", "22", None, "twenty-second"),
    ("date", "2026-11-21", None, "November twenty-first twenty twenty-six"),
    ("time", "9:05", None, "nine oh five"),
    ("telephone", "555-0100", None, "five five five, oh one oh oh"),
]


@pytest.mark.parametrize(("kind", "content", "date_format", "expected"), ENGLISH_SAY_AS)
def test_say_as_in_english(kind: str, content: str, date_format, expected: str):
    assert read_as(kind, content, "en", date_format) == expected


def test_lexicon_applies_to_text_not_to_markup_or_aliases():
    lexicon = {"K-pop": "케이팝", "p": "피"}.get
    apply = lambda text: " ".join(lexicon(word, word) for word in text.split(" "))  # noqa: E731
    ssml = '<speak><p>K-pop <sub alias="K-pop">케이-팝</sub></p></speak>'
    assert parts(ssml, lexicon=apply) == [Speech("케이팝 K-pop")]


ERRORS = [
    ("plain text", "malformed XML", 1, 1),
    ("<speak>하나<p>둘</speak>", "malformed XML (mismatched tag)", 1, 16),
    ("<p>하나</p>", "root element must be <speak>", 1, 1),
    ("<speak>\n하나 <audio src='x.wav'/></speak>", "unsupported element <audio>", 2, 4),
    ("<speak><speak>x</speak></speak>", "can only be the root", 1, 8),
    ('<speak>\n\n  <break time="20s"/></speak>', "longer than 10 s", 3, 3),
    ('<speak><break time="soon"/></speak>', "500ms or 1.5s", 1, 8),
    ('<speak><break strength="huge"/></speak>', "use one of none", 1, 8),
    ("<speak><sub>WHO</sub></speak>", "needs an alias", 1, 8),
    ('<speak><say-as interpret-as="spell">x</say-as></speak>', "use one of characters", 1, 8),
    ('<speak><say-as interpret-as="cardinal">many</say-as></speak>', "not a whole number", 1, 8),
    ('<speak><say-as interpret-as="date">2026-13-01</say-as></speak>', "is not a date", 1, 8),
    ('<speak><say-as interpret-as="date" format="md">02-30</say-as></speak>', "is not a date", 1, 8),
    ('<speak><say-as interpret-as="date">2023-02-29</say-as></speak>', "is not a date", 1, 8),
    ('<speak><say-as interpret-as="date">2026-04-31</say-as></speak>', "is not a date", 1, 8),
    ('<speak><say-as interpret-as="date" format="yq">2026-1</say-as></speak>', "use letters y, m and d", 1, 8),
    ('<speak><say-as interpret-as="time">25:00</say-as></speak>', "is not a time", 1, 8),
    ('<speak><say-as interpret-as="time">13:00pm</say-as></speak>', "is not a time", 1, 8),
    ('<speak><say-as interpret-as="time">24:30</say-as></speak>', "is not a time", 1, 8),
    ('<speak><say-as interpret-as="telephone">call me</say-as></speak>', "not a telephone number", 1, 8),
    ('<speak><say-as interpret-as="digits"></say-as></speak>', "is empty", 1, 8),
    ('<speak><prosody rate="10">x</prosody></speak>', "outside 0.25..4", 1, 8),
    ('<speak><prosody rate="warp">x</prosody></speak>', "use x-slow", 1, 8),
    ("<speak>&nbsp;</speak>", "undefined entity", 1, 8),
    # 600 nested <s> (4 KB, under the server's text limit) was a RecursionError: a 500 internal_error
    ("<speak>" + "<s>" * 600 + "안녕" + "</s>" * 600 + "</speak>", "nested more than 64 deep", 1, 7 + 3 * 64 + 1),
]


@pytest.mark.parametrize(("ssml", "message", "line", "column"), ERRORS)
def test_errors_name_the_line_and_column(ssml: str, message: str, line: int, column: int):
    with pytest.raises(SsmlError) as caught:
        parse_ssml(ssml)
    error = caught.value
    assert message in str(error)
    assert (error.line, error.column) == (line, column)
    assert str(error).startswith(f"SSML line {line}, column {column}: ")


@pytest.mark.parametrize(
    "hostile",
    [
        # billion laughs: entity expansion
        '<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        "<speak>&b;</speak>",
        # external entity (XXE)
        '<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY x SYSTEM "file:///etc/passwd">]><speak>&x;</speak>',
        # any DTD at all
        '<!DOCTYPE speak SYSTEM "http://example.com/speak.dtd"><speak>x</speak>',
    ],
)
def test_hostile_xml_is_refused(hostile: str):
    with pytest.raises(SsmlError, match="DTDs, entity declarations and external references are not allowed"):
        parse_ssml(hostile)


@pytest.mark.parametrize(
    ("ssml", "boundary"),
    [('<speak><p>하나</p><p><prosody rate="fast">둘</prosody></p></speak>', "paragraph"),
     ('<speak><s>하나</s><s><prosody rate="fast">둘</prosody></s></speak>', "sentence"),
     ('<speak>하나. <prosody rate="fast">둘</prosody></speak>', "sentence"),
     ('<speak><prosody rate="fast">하나</prosody><p>둘</p></speak>', "paragraph"),
     ('<speak>하나 <prosody rate="fast">둘</prosody></speak>', "")],
)
def test_a_sentence_or_paragraph_end_at_a_rate_change_is_kept(ssml: str, boundary: str):
    """A <p>/<s> end or a full stop where the rate changes was stripped with the part's whitespace,
    so the two parts were read with no pause between them."""
    first, second = parts(ssml)
    assert (first.text, first.boundary, second.boundary) == ("하나" + "." * ("하나." in ssml), boundary, "")


def test_a_boundary_is_kept_only_before_more_speech():
    assert parts('<speak><s>하나</s><break time="1s"/>둘.</speak>') == [Speech("하나"), Pause(1.0), Speech("둘.")]
