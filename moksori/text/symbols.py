"""The versioned symbol tables: which token gets which id.

A voice's embedding rows follow its symbol table, so the table is stored with the
voice (``SymbolTable.to_dict``) and read back from there (``SymbolTable.from_dict``).
A built-in table never changes under the same version; a changed table gets a new
version string, and the old one stays listed in ``BUILTIN_TABLES`` so old voices
can still be checked.

Layout of every built-in table:

- id 0: the pad symbol ``"_"`` (padding in batches).
- id 1: the blank symbol ``"<blank>"``, interleaved between tokens when a model uses
  Glow-TTS's ``add_blank``. Glow-TTS puts the blank at ``len(symbols)``; we give it a
  fixed, dedicated id inside the table instead, so the table alone says how many
  embedding rows a model needs and the blank never collides with a real symbol.
- then the prosody symbols: word boundary ``" "`` and ``. , ? ! …``.
- then the language's letters: Korean jamo with distinct onset (U+1100–U+1112),
  nucleus (U+1161–U+1175) and coda (U+11A8–U+11C2) symbols; English lowercase
  letters plus ``'`` and ``-``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from moksori.text.nvidia import NVIDIA_ENGLISH_SYMBOLS, NVIDIA_ENGLISH_VERSION

PAD = "_"
BLANK = "<blank>"
SPACE = " "
PROSODY = (SPACE, ".", ",", "?", "!", "…")

ONSETS = tuple(chr(code) for code in range(0x1100, 0x1113))
NUCLEI = tuple(chr(code) for code in range(0x1161, 0x1176))
CODAS = tuple(chr(code) for code in range(0x11A8, 0x11C3))
ENGLISH_LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")

KOREAN_VERSION = "ko-jamo-1"
ENGLISH_VERSION = "en-char-1"

BUILTIN_TABLES: dict[str, tuple[str, ...]] = {
    KOREAN_VERSION: (PAD, BLANK, *PROSODY, *ONSETS, *NUCLEI, *CODAS),
    ENGLISH_VERSION: (PAD, BLANK, *PROSODY, "'", "-", *ENGLISH_LETTERS),
    # Imported NVIDIA Tacotron2 voices: NVIDIA's own table (no blank), see moksori.text.nvidia.
    NVIDIA_ENGLISH_VERSION: NVIDIA_ENGLISH_SYMBOLS,
}

_VERSION_BY_LANGUAGE = {"ko": KOREAN_VERSION, "en": ENGLISH_VERSION}


class UnknownSymbolError(KeyError):
    """A token or id is not in the symbol table; the message names it."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


class SymbolTable:
    """An ordered list of symbols; a symbol's id is its position."""

    def __init__(self, symbols: Sequence[str], version: str) -> None:
        _check_symbols(symbols, version)
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.version = version
        self._ids = {symbol: index for index, symbol in enumerate(self.symbols)}

    @property
    def pad(self) -> str:
        return self.symbols[0]

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def blank_id(self) -> int | None:
        """Id of the blank symbol, or None if this table has none."""
        return self._ids.get(BLANK)

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SymbolTable):
            return NotImplemented
        return self.version == other.version and self.symbols == other.symbols

    def __hash__(self) -> int:
        return hash((self.version, self.symbols))

    def __repr__(self) -> str:
        return f"SymbolTable(version={self.version!r}, {len(self)} symbols)"

    def to_ids(self, tokens: Iterable[str]) -> list[int]:
        ids = []
        for token in tokens:
            try:
                ids.append(self._ids[token])
            except KeyError:
                raise UnknownSymbolError(
                    f"symbol {token!r} ({_code_points(token)}) is not in symbol table "
                    f"{self.version!r}"
                ) from None
        return ids

    def to_tokens(self, ids: Iterable[int]) -> list[str]:
        tokens = []
        for symbol_id in ids:
            if not 0 <= symbol_id < len(self.symbols):
                raise UnknownSymbolError(
                    f"id {symbol_id} is outside symbol table {self.version!r} "
                    f"(ids 0..{len(self.symbols) - 1})"
                )
            tokens.append(self.symbols[symbol_id])
        return tokens

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SymbolTable:
        """Rebuild a stored table from its own symbols.

        The stored list is what the voice was trained with, so it is used as is
        (a voice made by a newer moksori with an unknown version still loads). If
        the version is one of ours, the symbols must be exactly that version's:
        anything else means the file was edited or corrupted, and ids would point
        at the wrong embedding rows.
        """
        try:
            version = data["version"]
            symbols = data["symbols"]
        except (KeyError, TypeError):
            raise ValueError(
                "a stored symbol table needs 'version' and 'symbols' fields"
            ) from None
        if not isinstance(version, str) or not isinstance(symbols, list):
            raise ValueError(
                "a stored symbol table needs a string 'version' and a list 'symbols'"
            )
        builtin = BUILTIN_TABLES.get(version)
        if builtin is not None and tuple(symbols) != builtin:
            raise ValueError(
                f"stored symbol table claims version {version!r} but its symbols differ "
                f"from that version's ({_first_difference(symbols, builtin)}); "
                "the table was edited or the file is damaged"
            )
        return cls(symbols, version)


def symbol_table(language: str) -> SymbolTable:
    """The current built-in table for ``"ko"`` or ``"en"``."""
    try:
        version = _VERSION_BY_LANGUAGE[language]
    except KeyError:
        known = ", ".join(sorted(_VERSION_BY_LANGUAGE))
        raise ValueError(f"no symbol table for language {language!r} (known: {known})") from None
    return SymbolTable(BUILTIN_TABLES[version], version)


def _check_symbols(symbols: Sequence[str], version: str) -> None:
    if not version or not isinstance(version, str):
        raise ValueError("a symbol table needs a non-empty version string")
    if not symbols:
        raise ValueError(f"symbol table {version!r} is empty")
    for symbol in symbols:
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"symbol table {version!r} holds a non-string or empty symbol: {symbol!r}")
    seen: set[str] = set()
    for symbol in symbols:
        if symbol in seen:
            raise ValueError(f"symbol table {version!r} lists {symbol!r} twice")
        seen.add(symbol)


def _code_points(token: str) -> str:
    return " ".join(f"U+{ord(character):04X}" for character in token)


def _first_difference(stored: Sequence[str], builtin: Sequence[str]) -> str:
    for index, (left, right) in enumerate(zip(stored, builtin)):
        if left != right:
            return f"id {index} is {left!r}, expected {right!r}"
    return f"{len(stored)} symbols, expected {len(builtin)}"
