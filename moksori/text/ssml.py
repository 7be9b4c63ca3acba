"""SSML input: a useful subset of the Speech Synthesis Markup Language, parsed into parts to say.

Supported::

    <speak>                      the root (required); xml:lang and version are accepted, not used
    <p>, <s>                     paragraph and sentence: their ends are a paragraph / sentence break
    <break time="500ms"/>        silence of that length (ms or s, at most 10 s); or strength=
                                 none|x-weak|weak|medium|strong|x-strong (0, 0.1, 0.2, 0.4, 0.7, 1 s)
    <sub alias="케이팝">K-pop</sub>   say the alias instead of the content
    <say-as interpret-as="...">  characters (letter by letter), digits (digit by digit), cardinal,
                                 ordinal, date (format= ymd, mdy, dmy, ym, md, y; default ymd),
                                 time (14:30, 2:30pm), telephone (digit groups, 0 as 공 in Korean)
    <prosody rate="...">         x-slow|slow|medium|fast|x-fast|default, a percentage (80%, +20%)
                                 or a multiplier (1.5); nested rates multiply. Maps to the speed.
    <mark name="..."/>           accepted and ignored; <emphasis> is read as plain text

Anything else is refused with the element's name and place. The result is a list of
:class:`Speech` parts (text at a rate) and :class:`Pause` parts (seconds of silence); the text
of each part goes through the normal front end afterwards, so SSML never bypasses the checks for
unreadable characters.

Parsing is safe by construction: ``defusedxml`` refuses DTDs, entity declarations and external
references (billion-laughs and XXE documents are errors, not expansions), and the size of the
input is the caller's limit. Malformed SSML raises :class:`SsmlError`, whose ``line`` and
``column`` (1-based) say where.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

MAX_BREAK_S = 10.0
MAX_DEPTH = 64  # elements inside one another; deeper (600 <s> in 4 KB) ran out of Python's recursion
MIN_RATE, MAX_RATE = 0.25, 4.0
BREAK_STRENGTHS = {"none": 0.0, "x-weak": 0.1, "weak": 0.2, "medium": 0.4, "strong": 0.7, "x-strong": 1.0}
RATE_WORDS = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.5}
SAY_AS = ("characters", "digits", "cardinal", "ordinal", "date", "time", "telephone")
ELEMENTS = ("speak", "p", "s", "break", "sub", "say-as", "prosody", "mark", "emphasis")


class SsmlError(ValueError):
    """Malformed or unsupported SSML; ``line`` and ``column`` (1-based) say where."""

    def __init__(self, message: str, line: int, column: int) -> None:
        self.line, self.column, self.reason = line, column, message
        super().__init__(f"SSML line {line}, column {column}: {message}")


@dataclass(frozen=True)
class Speech:
    text: str
    rate: float = 1.0
    # What ends the part when another follows at another rate: "sentence" or "paragraph" (an <s>/<p>
    # end, or a full stop), so that the silence the synthesizer puts there is not lost; "" mid-sentence.
    boundary: str = ""


@dataclass(frozen=True)
class Pause:
    seconds: float


Part = Speech | Pause


@dataclass(frozen=True)
class SsmlDocument:
    parts: tuple[Part, ...]

    def key(self) -> str:
        """A stable text for cache keys, one per document: JSON, so that no text inside a part can
        read like a part boundary or a pause ("가|<0.5>|1.0:나" is not 가, a pause, 나)."""
        return json.dumps([[p.rate, p.text, p.boundary] if isinstance(p, Speech) else p.seconds for p in self.parts],
                          ensure_ascii=False)

    @property
    def text(self) -> str:
        """Everything said, without pauses or rates."""
        return "\n".join(p.text for p in self.parts if isinstance(p, Speech))


def looks_like_ssml(text: str) -> bool:
    return text.lstrip().startswith(("<speak", "<?xml"))


# --- parsing ------------------------------------------------------------------------------------


class _Builder(ET.TreeBuilder):
    """Remembers where each element starts (ElementTree elements carry no line numbers)."""

    def __init__(self) -> None:
        super().__init__()
        self.parser: DefusedXMLParser | None = None
        self.positions: dict[int, tuple[int, int]] = {}

    def start(self, tag, attrs):  # noqa: ANN001, ANN201 - TreeBuilder's signature
        element = super().start(tag, attrs)
        expat = self.parser.parser
        self.positions[id(element)] = (expat.CurrentLineNumber, expat.CurrentColumnNumber + 1)
        return element


def _parse_xml(ssml: str) -> tuple[ET.Element, dict[int, tuple[int, int]]]:
    builder = _Builder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.parser = parser
    try:
        parser.feed(ssml)
        return parser.close(), builder.positions
    except ET.ParseError as error:
        line, column = error.position
        reason = str(error).split(": line")[0]
        raise SsmlError(f"malformed XML ({reason})", line, column + 1) from None
    except DefusedXmlException as error:
        expat = parser.parser
        raise SsmlError(f"DTDs, entity declarations and external references are not allowed ({type(error).__name__})",
                        expat.CurrentLineNumber, expat.CurrentColumnNumber + 1) from None


def _local(tag: str) -> str:
    """``{http://www.w3.org/2001/10/synthesis}speak`` → ``speak``."""
    return tag.rsplit("}", 1)[-1]


def parse_ssml(ssml: str, language: str = "ko", lexicon: Callable[[str], str] | None = None) -> SsmlDocument:
    """The parts of an SSML document. ``lexicon`` (e.g. ``Lexicon.apply``) rewrites plain text
    nodes, not the markup, aliases or say-as readings. SsmlError on malformed or unsupported input."""
    root, positions = _parse_xml(ssml)
    walker = _Walker(language, lexicon or (lambda text: text), positions)
    if _local(root.tag) != "speak":
        walker.fail(root, f"the root element must be <speak>, not <{_local(root.tag)}>")
    walker.children(root, 1.0)
    return SsmlDocument(walker.finish())


_PARAGRAPH, _SENTENCE = "\u2029", "\u2028"  # markers while collecting; never in the output
_BOUNDARIES = re.compile("\\s*[\u2028\u2029][\\s\u2028\u2029]*")
_SENTENCE_END = re.compile(r"(?:\.{3}|[.?!…])+[\"'”’」』)\]]*$")  # as moksori.text.sentences ends one


def _boundary(space: str) -> str:
    """The break that whitespace around a part's text holds after :meth:`_Walker.flush`'s rewrite."""
    return "paragraph" if "\n\n" in space else "sentence" if "\n" in space else ""


def _spaces(text: str) -> str:
    """Whitespace in SSML text is not significant: any run of it (line breaks too) is one space."""
    return re.sub(r"[\s\u2028\u2029]+", " ", text)


class _Walker:
    def __init__(self, language: str, lexicon: Callable[[str], str], positions: dict[int, tuple[int, int]]) -> None:
        self.language = language
        self.lexicon = lexicon
        self.positions = positions
        self.parts: list[Part] = []
        self.pending: list[str] = []
        self.rate = 1.0
        self.depth = 0

    def fail(self, element: ET.Element, message: str) -> None:
        line, column = self.positions.get(id(element), (1, 1))
        raise SsmlError(message, line, column)

    # text collection: consecutive text at one rate is one Speech part
    def say(self, text: str, rate: float) -> None:
        if rate != self.rate:
            self.flush()
            self.rate = rate
        self.pending.append(text)

    def flush(self) -> None:
        """The pending text as one part: a run of <p>/<s> boundaries becomes a blank line (a
        paragraph) if it holds a <p>, else a line break (a sentence), which is how the
        synthesizer's sentence splitter reads them."""
        text = "".join(self.pending)
        self.pending = []
        text = _BOUNDARIES.sub(lambda m: "\n\n" if _PARAGRAPH in m.group(0) else "\n", text)
        text = re.sub(r"[ \t]+", " ", text)
        text = re.sub(r" ?\n ?", "\n", text)
        stripped = text.strip()
        self._end_previous(_boundary(text[: len(text) - len(text.lstrip())] if stripped else text))
        if stripped:
            ending = _boundary(text[len(text.rstrip()):]) or ("sentence" if _SENTENCE_END.search(stripped) else "")
            self.parts.append(Speech(stripped, self.rate, ending))

    def _end_previous(self, boundary: str) -> None:
        """A break at the start of this text ends the previous part (a paragraph outranks a sentence)."""
        previous = self.parts[-1] if self.parts else None
        if boundary and isinstance(previous, Speech) and previous.boundary != "paragraph":
            self.parts[-1] = Speech(previous.text, previous.rate, boundary)

    def finish(self) -> list[Part]:
        """The parts; a boundary is kept only where another Speech follows (a pause sets its own silence)."""
        self.flush()
        following = self.parts[1:] + [None]
        return [Speech(part.text, part.rate) if isinstance(part, Speech) and not isinstance(after, Speech) else part
                for part, after in zip(self.parts, following)]

    def children(self, element: ET.Element, rate: float) -> None:
        if element.text:
            self.say(self.lexicon(_spaces(element.text)), rate)
        for child in element:
            self.element(child, rate)
            if child.tail:
                self.say(self.lexicon(_spaces(child.tail)), rate)

    def element(self, element: ET.Element, rate: float) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(element, f"elements are nested more than {MAX_DEPTH} deep")
        self._element(element, rate)
        self.depth -= 1

    def _element(self, element: ET.Element, rate: float) -> None:
        name = _local(element.tag)
        if name not in ELEMENTS:
            self.fail(element, f"unsupported element <{name}> (supported: {', '.join(ELEMENTS)})")
        if name == "speak":
            self.fail(element, "<speak> can only be the root element")
        elif name in ("p", "s"):
            boundary = _PARAGRAPH if name == "p" else _SENTENCE
            self.say(boundary, rate)
            self.children(element, rate)
            self.say(boundary, rate)
        elif name == "break":
            self.flush()
            self.parts.append(Pause(self._break_seconds(element)))
        elif name == "sub":
            alias = element.get("alias")
            if alias is None or not alias.strip():
                self.fail(element, "<sub> needs an alias attribute (what to say)")
            self.say(alias, rate)
        elif name == "say-as":
            self.say(self._say_as(element), rate)
        elif name == "prosody":
            self.children(element, self._rate(element, rate))
        elif name == "emphasis":
            self.children(element, rate)
        # mark: nothing to say

    def _break_seconds(self, element: ET.Element) -> float:
        time, strength = element.get("time"), element.get("strength")
        if time is not None:
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)\s*", time)
            if not match:
                self.fail(element, f"<break time={time!r}>: write a time such as 500ms or 1.5s")
            seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
            if seconds > MAX_BREAK_S:
                self.fail(element, f"<break time={time!r}> is longer than {MAX_BREAK_S:g} s")
            return seconds
        if strength is not None:
            if strength not in BREAK_STRENGTHS:
                self.fail(element, f"<break strength={strength!r}>: use one of {', '.join(BREAK_STRENGTHS)}")
            return BREAK_STRENGTHS[strength]
        return BREAK_STRENGTHS["medium"]

    def _rate(self, element: ET.Element, rate: float) -> float:
        value = element.get("rate")
        if value is None:
            return rate
        value = value.strip()
        if value in RATE_WORDS:
            factor = RATE_WORDS[value]
        elif match := re.fullmatch(r"([+-]?)(\d+(?:\.\d+)?)%", value):
            sign, number = match.group(1), float(match.group(2))
            factor = 1 + number / 100 if sign == "+" else 1 - number / 100 if sign == "-" else number / 100
        elif re.fullmatch(r"\d+(?:\.\d+)?", value):
            factor = float(value)
        else:
            self.fail(element, f"<prosody rate={value!r}>: use x-slow, slow, medium, fast, x-fast, a percentage or a number")
        new_rate = rate * factor
        if not MIN_RATE <= new_rate <= MAX_RATE:
            self.fail(element, f"<prosody rate={value!r}> makes the rate {new_rate:g}, outside {MIN_RATE:g}..{MAX_RATE:g}")
        return new_rate

    def _say_as(self, element: ET.Element) -> str:
        kind = element.get("interpret-as")
        if kind not in SAY_AS:
            self.fail(element, f"<say-as interpret-as={kind!r}>: use one of {', '.join(SAY_AS)}")
        if len(element):
            self.fail(element, "<say-as> holds only text, no other elements")
        content = " ".join((element.text or "").split())
        if not content:
            self.fail(element, "<say-as> is empty")
        try:
            return read_as(kind, content, self.language, element.get("format"))
        except ValueError as error:
            self.fail(element, f"<say-as interpret-as={kind!r}>: {error}")
        raise AssertionError("unreachable")


# --- say-as readings ----------------------------------------------------------------------------


def read_as(kind: str, content: str, language: str, date_format: str | None = None) -> str:
    """The text to say for ``<say-as interpret-as=kind>content</say-as>``; ValueError if it does not fit."""
    reader = _KOREAN if language == "ko" else _ENGLISH
    if kind == "date":
        return reader["date"](content, date_format or "ymd")
    return reader[kind](content)


def _number(content: str) -> int:
    plain = content.replace(",", "").strip()
    if not re.fullmatch(r"-?\d+", plain):
        raise ValueError(f"{content!r} is not a whole number")
    return int(plain)


def _date_fields(content: str, date_format: str) -> dict[str, int]:
    if not re.fullmatch(r"[ymd]{1,3}", date_format) or len(set(date_format)) != len(date_format):
        raise ValueError(f"format {date_format!r}: use letters y, m and d, such as ymd, mdy, dmy, ym, md")
    pieces = [p for p in re.split(r"[-/.\s]+", content.strip().rstrip(".")) if p]
    if len(pieces) != len(date_format) or not all(p.isdigit() for p in pieces):
        raise ValueError(f"{content!r} does not match the format {date_format!r}")
    fields = {letter: int(piece) for letter, piece in zip(date_format, pieces)}
    month = fields.get("m", 1)
    if not 1 <= month <= 12 or not 1 <= fields.get("d", 1) <= _days_in_month(fields.get("y"), month):
        raise ValueError(f"{content!r} is not a date")
    return fields


def _days_in_month(year: int | None, month: int) -> int:
    """31 for January; 29 for February of a leap year or of no year given (02-29 is a date)."""
    import calendar

    return calendar.monthrange(year if year is not None and year >= 1 else 2000, month)[1]


def _time_fields(content: str) -> tuple[int, int, int, str | None]:
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*([ap]\.?m\.?)?", content.strip(), re.IGNORECASE)
    if not match:
        raise ValueError(f"{content!r} is not a time such as 14:30 or 2:30pm")
    hour, minute, second = int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0)
    meridiem = match.group(4)[0].lower() if match.group(4) else None
    # 24:00 is the end of a day, 24:30 no time; am/pm count hours to 12 (13:00pm was read 오후 열세 시)
    if hour > 24 or minute > 59 or second > 59 or (hour == 24 and minute + second) or (meridiem and hour > 12):
        raise ValueError(f"{content!r} is not a time")
    return hour, minute, second, meridiem


def _phone_groups(content: str) -> list[str]:
    groups = [g for g in re.split(r"[-\s.()]+", content.strip()) if g]
    if not groups or not all(re.fullmatch(r"\+?\d+", g) for g in groups):
        raise ValueError(f"{content!r} is not a telephone number (digits in groups)")
    return groups


def _ko_characters(content: str) -> str:
    from moksori.text.korean.latin import LETTER_NAMES
    from moksori.text.korean.numbers import SINO_DIGITS

    spoken = []
    for char in content:
        if char.isspace():
            continue
        if char.isascii() and char.isalpha():
            spoken.append(LETTER_NAMES[char.lower()])
        elif char.isascii() and char.isdigit():
            spoken.append(SINO_DIGITS[int(char)])
        else:
            spoken.append(char)  # Hangul syllables one by one; anything else is checked later
    return " ".join(spoken)


def _ko_digits(content: str) -> str:
    from moksori.text.korean.numbers import SINO_DIGITS

    digits = [c for c in content if not c.isspace() and c not in ",-"]
    if not digits or not all(c.isascii() and c.isdigit() for c in digits):
        raise ValueError(f"{content!r} is not a string of digits")
    return " ".join(SINO_DIGITS[int(c)] for c in digits)


def _ko_cardinal(content: str) -> str:
    from moksori.text.korean.numbers import sino_korean

    return sino_korean(_number(content))


def _ko_ordinal(content: str) -> str:
    from moksori.text.korean.numbers import native_ordinal

    n = _number(content)
    if n < 1:
        raise ValueError(f"{content!r}: an ordinal is 1 or more")
    return f"{native_ordinal(n)} 번째"


def _ko_date(content: str, date_format: str) -> str:
    from moksori.text.korean.numbers import sino_korean

    fields = _date_fields(content, date_format)
    months = {6: "유월", 10: "시월"}
    words = []
    if "y" in fields:
        words.append(f"{sino_korean(fields['y'])} 년")
    if "m" in fields:
        words.append(months.get(fields["m"], sino_korean(fields["m"]) + "월"))
    if "d" in fields:
        words.append(f"{sino_korean(fields['d'])} 일")
    return " ".join(words)


def _ko_time(content: str) -> str:
    from moksori.text.korean.numbers import native_korean, sino_korean

    hour, minute, second, meridiem = _time_fields(content)
    words = [] if meridiem is None else ["오전" if meridiem == "a" else "오후"]
    words.append(f"{native_korean(hour, prenominal=True) if hour else '영'} 시")
    if minute:
        words.append(f"{sino_korean(minute)} 분")
    if second:
        words.append(f"{sino_korean(second)} 초")
    return " ".join(words)


def _ko_telephone(content: str) -> str:
    from moksori.text.korean.numbers import read_digits

    words = []
    for group in _phone_groups(content):
        if group.startswith("+"):
            words.append("플러스")
            group = group[1:]
        words.append(read_digits(group, zero="공"))
    return " ".join(words)


def _en_characters(content: str) -> str:
    from moksori.text.english import number_to_words

    return " ".join(number_to_words(int(c)) if c.isdigit() and c.isascii() else c.upper() if c.isalpha() else c
                    for c in content if not c.isspace())


def _en_digits(content: str) -> str:
    from moksori.text.english import number_to_words

    digits = [c for c in content if not c.isspace() and c not in ",-"]
    if not digits or not all(c.isascii() and c.isdigit() for c in digits):
        raise ValueError(f"{content!r} is not a string of digits")
    return " ".join(number_to_words(int(c)) for c in digits)


def _en_cardinal(content: str) -> str:
    from moksori.text.english import number_to_words

    n = _number(content)
    return ("minus " if n < 0 else "") + number_to_words(abs(n))


def _en_ordinal(content: str) -> str:
    from moksori.text.english import ordinal_words

    n = _number(content)
    if n < 1:
        raise ValueError(f"{content!r}: an ordinal is 1 or more")
    return ordinal_words(n)


_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")


def _en_date(content: str, date_format: str) -> str:
    from moksori.text.english import ordinal_words, year_words

    fields = _date_fields(content, date_format)
    words = []
    if "m" in fields:
        words.append(_EN_MONTHS[fields["m"] - 1])
    if "d" in fields:
        words.append(ordinal_words(fields["d"]))
    if "y" in fields:
        words.append(year_words(fields["y"]))
    return " ".join(words)


def _en_time(content: str) -> str:
    from moksori.text.english import number_to_words

    hour, minute, _, meridiem = _time_fields(content)
    words = [number_to_words(hour)]
    if minute:
        words.append(("oh " if minute < 10 else "") + number_to_words(minute))
    elif meridiem is None:
        words.append("o'clock")
    if meridiem:
        words.append("a m" if meridiem == "a" else "p m")
    return " ".join(words)


def _en_telephone(content: str) -> str:
    from moksori.text.english import number_to_words

    words = []
    for group in _phone_groups(content):
        if group.startswith("+"):
            words.append("plus")
            group = group[1:]
        words.append(" ".join("oh" if d == "0" else number_to_words(int(d)) for d in group))
    return ", ".join(words)


_KOREAN: dict[str, Callable[..., str]] = {
    "characters": _ko_characters, "digits": _ko_digits, "cardinal": _ko_cardinal, "ordinal": _ko_ordinal,
    "date": _ko_date, "time": _ko_time, "telephone": _ko_telephone,
}
_ENGLISH: dict[str, Callable[..., str]] = {
    "characters": _en_characters, "digits": _en_digits, "cardinal": _en_cardinal, "ordinal": _en_ordinal,
    "date": _en_date, "time": _en_time, "telephone": _en_telephone,
}
