"""Recording prompt lists: the project's own built-in lists and reading prompt files.

A prompt file is UTF-8 text (a byte-order mark is allowed and dropped) with one
sentence per line, in either of two layouts, which may even be mixed in one file:

* ``sentence<TAB>character count`` — the layout of mimic-recording-studio prompt
  files and of the built-in lists. The count column is informational and ignored:
  if it is present but not a whole number, a :class:`PromptFileWarning` names the
  file and line and the sentence is still used. Columns after the second are ignored.
* plain text — the whole line is the sentence.

Blank lines and lines whose first non-blank character is ``#`` are skipped (so a
sentence cannot start with ``#``). Each sentence is stripped of outer whitespace and
put into Unicode NFC form (decomposed Hangul is composed into syllables); nothing
else is changed and duplicates are kept, in file order.

A file that is not UTF-8 raises ``ValueError`` naming the file, line and byte
offset; a file with no sentences raises ``ValueError`` naming the file.

Jamo coverage is counted with the Unicode conjoining jamo as keys: onsets
U+1100–U+1112 (19), nuclei U+1161–U+1175 (21) and codas U+11A8–U+11C2 (27), i.e.
exactly the jamo that make up precomposed syllables U+AC00–U+D7A3.
"""

from __future__ import annotations

import os
import re
import unicodedata
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "Prompt",
    "PromptFileWarning",
    "ONSETS",
    "NUCLEI",
    "CODAS",
    "available_languages",
    "builtin_prompts",
    "builtin_prompt_records",
    "read_prompts",
    "read_prompt_file",
    "parse_prompts",
    "jamo_coverage",
    "missing_jamo",
    "to_compatibility_jamo",
]

_BOM = "\ufeff"

#: Conjoining jamo, in Unicode order.
ONSETS: tuple[str, ...] = tuple(chr(c) for c in range(0x1100, 0x1113))  # 19
NUCLEI: tuple[str, ...] = tuple(chr(c) for c in range(0x1161, 0x1176))  # 21
CODAS: tuple[str, ...] = tuple(chr(c) for c in range(0x11A8, 0x11C3))  # 27

_SYLLABLE_FIRST = 0xAC00
_SYLLABLE_LAST = 0xD7A3

# Compatibility jamo (U+3131–U+3163) for readable messages.
_COMPAT_ONSETS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_COMPAT_NUCLEI = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_COMPAT_CODAS = "ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"
_TO_COMPAT = {
    **dict(zip(ONSETS, _COMPAT_ONSETS)),
    **dict(zip(NUCLEI, _COMPAT_NUCLEI)),
    **dict(zip(CODAS, _COMPAT_CODAS)),
}

_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")


class PromptFileWarning(UserWarning):
    """A prompt file line was usable but odd (e.g. a count column that is not a number)."""


@dataclass(frozen=True)
class Prompt:
    """One sentence of a prompt list and where it came from."""

    text: str
    line: int  # 1-based line number in the source file
    source: str = ""  # the file it was read from, for messages

    def __str__(self) -> str:
        return self.text

    @property
    def where(self) -> str:
        """``file:line``, for error messages."""
        return f"{self.source}:{self.line}" if self.source else f"line {self.line}"


# --------------------------------------------------------------------------- reading


def _decode(data: bytes, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.end].hex(" ")
        raise ValueError(
            f"{name}: not UTF-8 text at line {line}, byte {exc.start} "
            f"(column byte {exc.start - line_start + 1}, bytes {bad}); "
            "save the file as UTF-8"
        ) from None
    if text.startswith(_BOM):
        text = text[1:]
    return text


def parse_prompts(text: str, name: str = "<text>") -> list[Prompt]:
    """Parse prompt-file content already decoded to ``str`` (see the module notes).

    ``name`` is used in warnings and errors. Raises ``ValueError`` if there is no
    sentence in ``text``.
    """
    if text.startswith(_BOM):
        text = text[1:]
    prompts: list[Prompt] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "\t" in line:
            columns = line.split("\t")
            sentence = columns[0].strip()
            count = columns[1].strip()
            if count and not count.isdigit():
                warnings.warn(
                    f"{name}:{number}: character-count column {count!r} is not a "
                    "whole number; ignored",
                    PromptFileWarning,
                    stacklevel=3,
                )
            if not sentence:
                warnings.warn(
                    f"{name}:{number}: empty sentence column; line skipped",
                    PromptFileWarning,
                    stacklevel=3,
                )
                continue
        else:
            sentence = stripped
        prompts.append(Prompt(unicodedata.normalize("NFC", sentence), number, name))
    if not prompts:
        raise ValueError(f"{name}: no sentences found (empty file, or only blank/comment lines)")
    return prompts


def read_prompts(path: str | os.PathLike[str]) -> list[Prompt]:
    """Read a prompt file into :class:`Prompt` records (text plus 1-based line number)."""
    name = os.fspath(path)
    data = Path(path).read_bytes()
    return parse_prompts(_decode(data, name), name)


def read_prompt_file(path: str | os.PathLike[str]) -> list[str]:
    """Read a prompt file (``sentence<TAB>count`` or one sentence per line) into sentences.

    Raises ``FileNotFoundError`` if it does not exist and ``ValueError`` (naming the
    file, and the line and byte for bad encoding) if it is not UTF-8 or holds no
    sentence.
    """
    return [p.text for p in read_prompts(path)]


# --------------------------------------------------------------------------- built-in lists


def _prompt_dir():
    return resources.files("moksori.data") / "prompts"


def available_languages() -> list[str]:
    """Language codes with a built-in prompt list, sorted (e.g. ``['en', 'ko']``)."""
    found = []
    for entry in _prompt_dir().iterdir():
        if entry.name.endswith(".tsv") and entry.is_file():
            found.append(entry.name[: -len(".tsv")])
    return sorted(found)


def builtin_prompt_records(language: str) -> list[Prompt]:
    """The built-in prompt list for ``language`` (``"ko"`` or ``"en"``) as records."""
    code = language.strip().lower() if isinstance(language, str) else ""
    available = available_languages()
    if not _LANGUAGE_RE.match(code) or code not in available:
        raise ValueError(
            f"no built-in prompt list for language {language!r}; "
            f"available: {', '.join(available) or '(none)'}"
        )
    resource = _prompt_dir() / f"{code}.tsv"
    name = f"moksori/data/prompts/{code}.tsv"
    return parse_prompts(_decode(resource.read_bytes(), name), name)


def builtin_prompts(language: str) -> list[str]:
    """The sentences of the built-in prompt list for ``language`` (``"ko"`` or ``"en"``).

    Unknown language → ``ValueError`` listing the available ones.
    """
    return [p.text for p in builtin_prompt_records(language)]


# --------------------------------------------------------------------------- jamo coverage


def _jamo_of(text: str):
    """Yield ``(kind, conjoining jamo)`` for every Hangul jamo in ``text``."""
    for ch in unicodedata.normalize("NFC", text):
        code = ord(ch)
        if _SYLLABLE_FIRST <= code <= _SYLLABLE_LAST:
            index = code - _SYLLABLE_FIRST
            yield "onset", chr(0x1100 + index // 588)
            yield "nucleus", chr(0x1161 + (index % 588) // 28)
            tail = index % 28
            if tail:
                yield "coda", chr(0x11A7 + tail)
        elif 0x1100 <= code <= 0x1112:
            yield "onset", ch
        elif 0x1161 <= code <= 0x1175:
            yield "nucleus", ch
        elif 0x11A8 <= code <= 0x11C2:
            yield "coda", ch


def jamo_coverage(sentences) -> dict[str, dict[str, int]]:
    """Count every onset, nucleus and coda in ``sentences`` (an iterable of str or Prompt).

    Returns ``{"onset": {...}, "nucleus": {...}, "coda": {...}}``; each inner dict has
    all 19 / 21 / 27 conjoining jamo as keys (count 0 when absent), in Unicode order.
    """
    if isinstance(sentences, (str, Prompt)):
        sentences = [sentences]
    counts: dict[str, dict[str, int]] = {
        "onset": dict.fromkeys(ONSETS, 0),
        "nucleus": dict.fromkeys(NUCLEI, 0),
        "coda": dict.fromkeys(CODAS, 0),
    }
    for sentence in sentences:
        text = sentence.text if isinstance(sentence, Prompt) else sentence
        for kind, jamo in _jamo_of(text):
            counts[kind][jamo] += 1
    return counts


def missing_jamo(sentences, min_count: int = 1) -> list[str]:
    """Conjoining jamo (onsets, then nuclei, then codas) seen fewer than ``min_count`` times.

    Onset ᄀ (U+1100) and coda ᆨ (U+11A8) are different characters, so the result is
    unambiguous; :func:`to_compatibility_jamo` turns it into readable ㄱ/ㅏ letters.
    """
    coverage = jamo_coverage(sentences)
    return [
        jamo
        for kind in ("onset", "nucleus", "coda")
        for jamo, count in coverage[kind].items()
        if count < min_count
    ]


def to_compatibility_jamo(jamo: str) -> str:
    """Map conjoining jamo to compatibility jamo (ᄀ/ᆨ → ㄱ); other characters are kept."""
    return "".join(_TO_COMPAT.get(ch, ch) for ch in jamo)
