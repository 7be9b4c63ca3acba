"""Splitting long text into sentences (Korean and English) for synthesis.

A sentence ends at ``. ? ! …`` (and closing quotes or brackets right after them)
followed by whitespace or the end of the line. It does not end inside quotes or
brackets, after an abbreviation (Mr. Dr. e.g.) or an initial (J. K.), before a
lowercase word, after a dotted date (2026.11.21.) or between the parts of a spaced
date (2026. 11. 21.), after a list item's number (1. 사과), or before a Korean
quotative ("가자." 하고 말했다).
Every line break ends a sentence; a blank line also ends a paragraph. Sentences
longer than ``max_chars`` are cut at commas, then at spaces.
"""

from __future__ import annotations

import re

_END = re.compile(r"(?:\.{3}|[.?!…])+[\"'”’」』)\]]*(?=\s|$)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof rev gen col capt lt sgt vs no nos fig vol p pp approx "
    "inc ltd co dept est e.g i.e cf al mt ave blvd rd apt ext ph.d "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_DOTTED_DATE = re.compile(r"\d+(?:\.\d+)+$")
_QUOTATIVE = re.compile(r"(?:하고|하며|하면서|하는|하자|라고|라며|라는|이라고|고)(?:\s|$|[.,?!])")
_OPENING = "“‘「『([{"
_CLOSING = "”’」』)]}"
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")


def split_paragraphs(text: str, max_chars: int = 200) -> list[list[str]]:
    """Paragraphs (separated by blank lines), each a list of sentences."""
    paragraphs = []
    for block in _PARAGRAPH_BREAK.split(text):
        sentences = [
            piece
            for line in block.splitlines()
            for sentence in _split_line(line)
            for piece in _limit_length(sentence, max_chars)
        ]
        if sentences:
            paragraphs.append(sentences)
    return paragraphs


def split_sentences(text: str, max_chars: int = 200) -> list[str]:
    """Sentences in reading order, none longer than ``max_chars`` characters."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, not {max_chars}")
    return [sentence for paragraph in split_paragraphs(text, max_chars) for sentence in paragraph]


def _split_line(line: str) -> list[str]:
    sentences = []
    start = 0
    for match in _END.finditer(line):
        if _ends_sentence(line, start, match):
            sentences.append(line[start : match.end()].strip())
            start = match.end()
    sentences.append(line[start:].strip())
    return [sentence for sentence in sentences if sentence]


def _ends_sentence(line: str, start: int, match: re.Match[str]) -> bool:
    if _inside_quotes(line[start : match.end()]):
        return False
    before = line[start : match.start()].split()
    last_word = before[-1].lstrip(_OPENING + "\"'") if before else ""
    following = line[match.end() :].lstrip()
    if not following:
        return True
    if match.group(0).rstrip(_CLOSING + "\"'") == ".":
        if last_word.lower() in _ABBREVIATIONS or _is_initial(last_word):
            return False
        if _DOTTED_DATE.match(last_word):
            return False
        if last_word.isdigit() and (following[0].isdigit() or _ends_spaced_date(before)):
            return False
        if len(before) == 1 and last_word.isdigit() and len(last_word) <= 3:
            return False  # a list item's number ("1. 사과를 씻는다."): a pause, not a sentence of its own
        if following[0].isascii() and following[0].islower():
            return False
    return not (match.group(0)[-1] in "\"'”’」』" and _QUOTATIVE.match(following))


def _ends_spaced_date(words: list[str]) -> bool:
    """"2026. 11. 21." — the last number follows "digits." words."""
    return len(words) >= 2 and bool(re.fullmatch(r"\d{1,4}\.", words[-2]))


def _inside_quotes(segment: str) -> bool:
    if segment.count('"') % 2:
        return True
    return any(segment.count(opening) > segment.count(closing) for opening, closing in zip(_OPENING, _CLOSING))


def _is_initial(word: str) -> bool:
    """J (of "J. K."), or dotted initials: A.I, U.S (of "A.I. 기술", "the U.S. army")."""
    return bool(re.fullmatch(r"(?:[A-Z]\.)*[A-Z]", word))


def _limit_length(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces = []
    for clause in _pack(_CLAUSE_BREAK.split(sentence), max_chars):
        if len(clause) <= max_chars:
            pieces.append(clause)
        else:
            pieces.extend(_pack_words(clause, max_chars))
    return pieces


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Greedily join parts with spaces into chunks of at most ``max_chars``."""
    chunks: list[str] = []
    for part in parts:
        if chunks and len(chunks[-1]) + 1 + len(part) <= max_chars:
            chunks[-1] += " " + part
        else:
            chunks.append(part)
    return chunks


def _pack_words(text: str, max_chars: int) -> list[str]:
    words = []
    for word in text.split():
        # A single word longer than the limit has to be cut somewhere.
        words.extend(word[i : i + max_chars] for i in range(0, len(word), max_chars))
    return _pack(words, max_chars)
