"""The text front end: raw text → normalised text → pronunciation → tokens → ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moksori.text import nvidia
from moksori.text.english import clean_english
from moksori.text.symbols import BLANK, CODAS, PROSODY, SymbolTable, symbol_table
from moksori.text.tokens import english_to_tokens, intersperse, korean_to_tokens

LANGUAGES = ("ko", "en")


@dataclass(frozen=True)
class FrontendResult:
    """Every stage of one text's trip through the front end.

    With ``add_blank`` the blank is interleaved in ``tokens`` as well as in
    ``ids``, so ``tokens[i]`` is always the symbol of ``ids[i]``.
    """

    text: str
    normalized: str
    pronounced: str
    tokens: list[str]
    ids: list[int]


# After the standard pronunciation rules a syllable ends in one of seven sounds (음절의 끝소리
# 규칙): ㄱ ㄴ ㄷ ㄹ ㅁ ㅂ ㅇ. The other coda symbols only occur without pronunciation.
PRONOUNCED_CODAS = frozenset("\u11a8\u11ab\u11ae\u11af\u11b7\u11b8\u11bc")


class TextFrontend:
    """Turns text into symbol ids for one language and one symbol table.

    ``use_pronunciation`` applies the Korean standard pronunciation rules (G2P)
    before splitting into jamo; English has no pronunciation step (characters are
    used as they are), so the flag changes nothing there. ``symbols`` is the table
    of a stored voice; by default the current built-in table of the language.
    ``cleaners="nvidia_english"`` (English only) reads text exactly as NVIDIA Tacotron2's
    ``english_cleaners`` and symbol table do (imported NVIDIA voices; :mod:`moksori.text.nvidia`).
    """

    def __init__(
        self,
        language: str = "ko",
        *,
        add_blank: bool = False,
        use_pronunciation: bool = True,
        symbols: SymbolTable | None = None,
        cleaners: str | None = None,
    ) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r} (supported: {', '.join(LANGUAGES)})")
        if cleaners not in (None, nvidia.NVIDIA_ENGLISH):
            raise ValueError(f"unknown cleaners {cleaners!r} (known: {nvidia.NVIDIA_ENGLISH})")
        if cleaners == nvidia.NVIDIA_ENGLISH and language != "en":
            raise ValueError(f"cleaners {cleaners!r} read English; the language must be 'en', not {language!r}")
        self.language = language
        self.add_blank = add_blank
        self.use_pronunciation = use_pronunciation
        self.cleaners = cleaners
        if symbols is None and cleaners == nvidia.NVIDIA_ENGLISH:
            symbols = SymbolTable(nvidia.NVIDIA_ENGLISH_SYMBOLS, nvidia.NVIDIA_ENGLISH_VERSION)
        self.symbols = symbols if symbols is not None else symbol_table(language)
        if add_blank and self.symbols.blank_id is None:
            raise ValueError(f"symbol table {self.symbols.version!r} has no blank symbol for add_blank")

    def process(self, text: str, *, strict: bool = True) -> FrontendResult:
        """All stages for ``text``.

        Raises ``UnreadableTextError`` (strict) for characters that cannot be read,
        and ``ValueError`` if nothing readable is left.
        """
        if self.cleaners == nvidia.NVIDIA_ENGLISH:
            normalized, tokens = nvidia.text_to_tokens(text)
            pronounced = normalized
            if not nvidia.has_speech(tokens):
                raise ValueError(f"the text is empty after normalisation: {text[:80]!r}")
        elif self.language == "ko":
            normalized, pronounced = self._korean_text(text, strict=strict)
            tokens = korean_to_tokens(pronounced, strict=strict)
        else:
            normalized = pronounced = clean_english(text, strict=strict)
            tokens = english_to_tokens(normalized, strict=strict)
        if all(token in PROSODY for token in tokens):
            raise ValueError(f"the text is empty after normalisation: {text[:80]!r}")
        ids = self.symbols.to_ids(tokens)
        if self.add_blank:
            ids = intersperse(ids, self.symbols.blank_id)
            tokens = self.symbols.to_tokens(ids)
        return FrontendResult(text, normalized, pronounced, tokens, ids)

    def to_ids(self, text: str, *, strict: bool = True) -> list[int]:
        return self.process(text, strict=strict).ids

    def spoken_symbols(self) -> list[str]:
        """The table's symbols this front end can produce: no pad or blank, and with Korean
        pronunciation only the seven codas that survive it. Dataset coverage is judged on these."""
        specials = {self.symbols.pad, BLANK}
        unreachable = set(CODAS) - PRONOUNCED_CODAS if self.language == "ko" and self.use_pronunciation else set()
        return [symbol for symbol in self.symbols.symbols if symbol not in specials | unreachable]

    def settings(self) -> dict[str, Any]:
        """What a voice stores to rebuild this front end exactly."""
        settings = {
            "language": self.language,
            "add_blank": self.add_blank,
            "use_pronunciation": self.use_pronunciation,
            "symbol_table": self.symbols.to_dict(),
        }
        if self.cleaners is not None:  # absent for moksori's own cleaners: older settings stay as they were
            settings["cleaners"] = self.cleaners
        return settings

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> TextFrontend:
        if "language" not in settings:
            raise ValueError("text front end settings need a 'language'")
        unknown = set(settings) - {"language", "add_blank", "use_pronunciation", "symbol_table", "cleaners"}
        if unknown:
            raise ValueError(f"unknown text front end settings: {', '.join(sorted(unknown))}")
        stored_table = settings.get("symbol_table")
        return cls(
            settings["language"],
            add_blank=bool(settings.get("add_blank", False)),
            use_pronunciation=bool(settings.get("use_pronunciation", True)),
            symbols=SymbolTable.from_dict(stored_table) if stored_table is not None else None,
            cleaners=settings.get("cleaners"),
        )

    def __repr__(self) -> str:
        return (
            f"TextFrontend({self.language!r}, add_blank={self.add_blank}, "
            f"use_pronunciation={self.use_pronunciation}, symbols={self.symbols.version!r}"
            + (f", cleaners={self.cleaners!r})" if self.cleaners else ")")
        )

    def _korean_text(self, text: str, *, strict: bool) -> tuple[str, str]:
        # Imported here so that English-only use never loads MeCab and the G2P tables.
        from moksori.text.korean.normalize import normalize
        from moksori.text.korean.pronounce import pronounce_hangul

        normalized = normalize(text, strict=strict)
        pronounced = pronounce_hangul(normalized) if self.use_pronunciation else normalized
        return normalized, pronounced
