"""NVIDIA Tacotron2's English text front end: its symbol table and ``english_cleaners``.

NVIDIA's published ``tacotron2_statedict.pt`` has one embedding row per symbol of its own table
(keithito's: pad, ``-``, punctuation, upper- and lowercase letters, ``@``-prefixed ARPAbet), so an
imported NVIDIA voice must read text the way NVIDIA's ``text_to_sequence(text,
["english_cleaners"])`` does: ASCII folding, lowercase, numbers and abbreviations in words,
whitespace collapsed (not stripped); every character of the table kept as a symbol and anything
else dropped silently; ``{HH AH0 L OW1}`` in curly braces read as ARPAbet. No end-of-sentence
symbol is added (NVIDIA adds none).

Numbers go through moksori's English number reader (:func:`moksori.text.english.expand_numbers`),
which spells cardinals, ordinals, years and money as NVIDIA's ``inflect``-based one does; decimals
follow NVIDIA ("3.14" → "three point fourteen").
"""

from __future__ import annotations

import re

from moksori.text.english import expand_numbers, to_ascii

NVIDIA_ENGLISH_VERSION = "en-nvidia-tacotron2-1"
NVIDIA_ENGLISH = "nvidia_english"  # the TextFrontend ``cleaners`` setting that selects this front end

_PAD = "_"
_SPECIAL = "-"
_PUNCTUATION = "!'(),.:;? "
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# CMUdict's phone set with stress markers (keithito's cmudict.valid_symbols), in its order.
ARPABET = tuple(
    "AA AA0 AA1 AA2 AE AE0 AE1 AE2 AH AH0 AH1 AH2 AO AO0 AO1 AO2 AW AW0 AW1 AW2 AY AY0 AY1 AY2 B CH D DH "
    "EH EH0 EH1 EH2 ER ER0 ER1 ER2 EY EY0 EY1 EY2 F G HH IH IH0 IH1 IH2 IY IY0 IY1 IY2 JH K L M N NG "
    "OW OW0 OW1 OW2 OY OY0 OY1 OY2 P R S SH T TH UH UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH".split()
)
NVIDIA_ENGLISH_SYMBOLS: tuple[str, ...] = (
    _PAD, *_SPECIAL, *_PUNCTUATION, *_LETTERS, *(f"@{phone}" for phone in ARPABET)
)

# NVIDIA's (keithito's) abbreviation list, with its spellings ("mrs." → "misess").
_ABBREVIATIONS = [
    (re.compile(rf"\b{short}\.", re.IGNORECASE), long)
    for short, long in (
        ("mrs", "misess"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"), ("co", "company"),
        ("jr", "junior"), ("maj", "major"), ("gen", "general"), ("drs", "doctors"), ("rev", "reverend"),
        ("lt", "lieutenant"), ("hon", "honorable"), ("sgt", "sergeant"), ("capt", "captain"),
        ("esq", "esquire"), ("ltd", "limited"), ("col", "colonel"), ("ft", "fort"),
    )
]
_DECIMAL = re.compile(r"(?<![$£\d])(\d+)\.(\d+)")
_WHITESPACE = re.compile(r"\s+")
_CURLY = re.compile(r"(.*?)\{(.+?)\}(.*)", re.DOTALL)
_KEPT = frozenset(NVIDIA_ENGLISH_SYMBOLS) - {_PAD}


def english_cleaners(text: str) -> str:
    """NVIDIA's ``english_cleaners``: ASCII, lowercase, numbers, abbreviations, whitespace collapsed."""
    text = to_ascii(text).lower()
    text = _DECIMAL.sub(lambda m: f"{m.group(1)} point {m.group(2)}", text)
    text = expand_numbers(text)
    for pattern, replacement in _ABBREVIATIONS:
        text = pattern.sub(replacement, text)
    return _WHITESPACE.sub(" ", text)


def text_to_tokens(text: str) -> tuple[str, list[str]]:
    """The cleaned text and its symbols, as NVIDIA's ``text_to_sequence`` with ``english_cleaners``
    (ARPAbet in curly braces kept as ``@`` symbols; characters outside the table dropped)."""
    tokens: list[str] = []
    cleaned_parts: list[str] = []
    while text:
        match = _CURLY.match(text)
        plain = match.group(1) if match else text
        cleaned = english_cleaners(plain)
        cleaned_parts.append(cleaned)
        tokens += [character for character in cleaned if character in _KEPT]
        if not match:
            break
        phones = [f"@{phone}" for phone in match.group(2).split()]
        cleaned_parts.append("{" + match.group(2) + "}")
        tokens += [phone for phone in phones if phone in _KEPT]
        text = match.group(3)
    return "".join(cleaned_parts), tokens


def has_speech(tokens: list[str]) -> bool:
    """Whether the symbols hold a letter or a phone (not only punctuation and spaces)."""
    return any(token.isalpha() or token.startswith("@") for token in tokens)


__all__ = [
    "ARPABET",
    "NVIDIA_ENGLISH",
    "NVIDIA_ENGLISH_SYMBOLS",
    "NVIDIA_ENGLISH_VERSION",
    "english_cleaners",
    "has_speech",
    "text_to_tokens",
]
