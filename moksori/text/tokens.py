"""Text → token lists (Korean jamo, English characters) and back.

Tokens are the symbols of ``moksori.text.symbols``: one string per token. Whitespace
becomes one word-boundary token ``" "``; ``. , ? ! …`` are prosody tokens; ``; :`` and
dashes read as a comma-like pause; quotes and brackets carry no sound and are
dropped quietly. Anything else is unreadable: an ``UnreadableTextError`` when
``strict``, otherwise dropped with an ``UnreadableTextWarning``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from moksori.text.errors import UnreadableTextError, UnreadableTextWarning
from moksori.text.symbols import BLANK, CODAS, NUCLEI, ONSETS, PROSODY, SPACE

_SYLLABLE_FIRST = 0xAC00
_SYLLABLE_LAST = 0xD7A3
_NUCLEUS_COUNT = 21
_CODA_COUNT = 28  # 27 codas + "no coda"

_PAUSE_MARKS = {";": ",", ":": ",", "—": ",", "–": ",", "‥": "…"}
_SILENT_MARKS = set("\"'“”‘’«»「」『』()[]{}<>〈〉《》【】")
_PROSODY_MARKS = set(PROSODY) - {SPACE}
_JAMO_SYMBOLS = set(ONSETS) | set(NUCLEI) | set(CODAS)


def korean_to_tokens(text: str, *, strict: bool = True) -> list[str]:
    """Hangul text → jamo tokens with onset/nucleus/coda kept distinct."""
    return _tokenize(text, _korean_letter, strict=strict)


def english_to_tokens(text: str, *, strict: bool = True) -> list[str]:
    """Cleaned English text → character tokens (lowercase letters, ``'``, ``-``)."""
    return _tokenize(text, _english_letter, strict=strict)


def decompose_syllable(syllable: str) -> list[str]:
    """One precomposed Hangul syllable → [onset, nucleus] or [onset, nucleus, coda]."""
    # Unicode defines syllables arithmetically; this is exact and avoids a lookup table.
    offset = ord(syllable) - _SYLLABLE_FIRST
    if not 0 <= offset <= _SYLLABLE_LAST - _SYLLABLE_FIRST or len(syllable) != 1:
        raise ValueError(f"{syllable!r} is not a precomposed Hangul syllable")
    onset, rest = divmod(offset, _NUCLEUS_COUNT * _CODA_COUNT)
    nucleus, coda = divmod(rest, _CODA_COUNT)
    jamo = [ONSETS[onset], NUCLEI[nucleus]]
    if coda:
        jamo.append(CODAS[coda - 1])
    return jamo


def tokens_to_korean(tokens: Iterable[str]) -> str:
    """Jamo tokens → Hangul syllables again; prosody tokens come back as text."""
    pieces: list[str] = []
    pending: list[str] = []  # jamo of the syllable being assembled
    for token in tokens:
        if token in ONSETS and pending:
            pieces.append(_compose(pending))
            pending = []
        if token in _JAMO_SYMBOLS:
            pending.append(token)
            if token in CODAS:
                pieces.append(_compose(pending))
                pending = []
        elif token != BLANK:
            if pending:
                pieces.append(_compose(pending))
                pending = []
            pieces.append(token)
    if pending:
        pieces.append(_compose(pending))
    return "".join(pieces)


def intersperse(ids: list[int], blank_id: int) -> list[int]:
    """Glow-TTS ``add_blank``: the blank before, between and after every id."""
    result = [blank_id] * (2 * len(ids) + 1)
    result[1::2] = ids
    return result


def _korean_letter(character: str) -> list[str] | None:
    if _SYLLABLE_FIRST <= ord(character) <= _SYLLABLE_LAST:
        return decompose_syllable(character)
    if character in _JAMO_SYMBOLS:  # already-decomposed text from G2P
        return [character]
    return None


def _english_letter(character: str) -> list[str] | None:
    if "a" <= character <= "z" or character in "'-":
        return [character]
    return None


def _tokenize(text: str, letter_tokens, *, strict: bool) -> list[str]:
    tokens: list[str] = []
    unreadable: list[str] = []
    text = text.replace("...", "…")
    for character in text:
        letters = letter_tokens(character)
        if letters is not None:
            tokens.extend(letters)
        elif character.isspace():
            _add_space(tokens)
        elif character in _PROSODY_MARKS:
            _add_mark(tokens, character)
        elif character in _PAUSE_MARKS:
            _add_mark(tokens, _PAUSE_MARKS[character])
        elif character in _SILENT_MARKS:
            continue
        elif character not in unreadable:
            unreadable.append(character)
    _report_unreadable(unreadable, text, strict=strict)
    while tokens and tokens[-1] == SPACE:
        tokens.pop()
    return tokens


def _add_space(tokens: list[str]) -> None:
    if tokens and tokens[-1] != SPACE:
        tokens.append(SPACE)


def _add_mark(tokens: list[str], mark: str) -> None:
    # A mark belongs to the word before it: "가 ," reads like "가,".
    if tokens and tokens[-1] == SPACE:
        tokens.pop()
    tokens.append(mark)


def _report_unreadable(characters: list[str], text: str, *, strict: bool) -> None:
    if not characters:
        return
    if strict:
        raise UnreadableTextError(characters, text)
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in characters)
    warnings.warn(f"dropped unreadable {shown} from {text[:80]!r}", UnreadableTextWarning, stacklevel=3)


def _compose(jamo: list[str]) -> str:
    well_formed = (
        len(jamo) in (2, 3)
        and jamo[0] in ONSETS
        and jamo[1] in NUCLEI
        and (len(jamo) == 2 or jamo[2] in CODAS)
    )
    if not well_formed:
        return "".join(jamo)  # not a syllable; keep the jamo as they are
    code = _SYLLABLE_FIRST + (ONSETS.index(jamo[0]) * _NUCLEUS_COUNT + NUCLEI.index(jamo[1])) * _CODA_COUNT
    if len(jamo) == 3:
        code += CODAS.index(jamo[2]) + 1
    return chr(code)
