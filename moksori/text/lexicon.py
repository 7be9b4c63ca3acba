"""User pronunciation lexicons: written forms replaced by how to say them, before normalisation.

A lexicon maps a written form to a spoken one (``카카오T`` → ``카카오 티``, ``K-pop`` →
``케이팝``): names, brands and jargon the built-in rules read wrongly. It is applied to the raw
text before the normaliser, so the spoken form is then normalised and pronounced like any text
(and still checked for unreadable characters).

Precedence: a voice's lexicon over the global one over the built-in readings. :func:`merge`
builds the effective lexicon (later lexicons win for the same written form); the built-in
readings (the normaliser's dictionaries) come last anyway, since the lexicon rewrites the text
before them.

Matching:

- the longest written form wins where several match at one place (``카카오T`` before ``카카오``);
- a written form in lowercase matches any case (``k-pop`` matches ``K-Pop``); one with capitals
  matches only as written (``IT`` is not ``it``);
- a written form that begins or ends with a Latin letter or digit matches only where it is not
  part of a longer Latin word or number there (``T`` does not match inside ``IT``); Hangul ends
  match anywhere, so particles may follow (``카카오T를``).

Stored as JSON: ``{"format": "moksori-lexicon-1", "entries": {"K-pop": "케이팝", ...}}`` — the
global lexicon in ``$MOKSORI_LEXICON`` or ``~/.config/moksori/lexicon.json``, a voice's in
``lexicon.json`` of its bundle folder, a studio voice's in the database.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from moksori.atomic import atomic_write_bytes

LEXICON_FORMAT = "moksori-lexicon-1"
LEXICON_FILE = "lexicon.json"
GLOBAL_LEXICON_ENV = "MOKSORI_LEXICON"
MAX_WRITTEN_CHARS = 100
MAX_SPOKEN_CHARS = 200
MAX_ENTRIES = 5000

_LATIN_OR_DIGIT = "A-Za-z0-9"


class LexiconError(ValueError):
    """A lexicon entry or file that cannot be used; the message names the entry or file."""


def check_entry(written: str, spoken: str) -> tuple[str, str]:
    """The entry with surrounding spaces removed; LexiconError naming the problem otherwise."""
    if not isinstance(written, str) or not isinstance(spoken, str):
        raise LexiconError("a lexicon entry needs a written form and a spoken form, both text")
    written, spoken = written.strip(), " ".join(spoken.split())
    if not written:
        raise LexiconError("the written form is empty")
    if not spoken:
        raise LexiconError(f"the spoken form of {written!r} is empty")
    if len(written) > MAX_WRITTEN_CHARS:
        raise LexiconError(f"the written form {written[:20]!r}… is longer than {MAX_WRITTEN_CHARS} characters")
    if len(spoken) > MAX_SPOKEN_CHARS:
        raise LexiconError(f"the spoken form of {written!r} is longer than {MAX_SPOKEN_CHARS} characters")
    if any(c in "\r\n\t" for c in written) or any(not c.isprintable() and c != " " for c in written + spoken):
        raise LexiconError(f"the entry {written!r} holds line breaks or control characters")
    return written, spoken


@dataclass
class Lexicon:
    """Written form → spoken form. ``apply`` rewrites text; ``add``/``remove`` edit in place."""

    entries: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checked = dict(check_entry(w, s) for w, s in dict(self.entries).items())
        if len(checked) > MAX_ENTRIES:
            raise LexiconError(f"a lexicon holds at most {MAX_ENTRIES} entries, not {len(checked)}")
        self.entries = checked
        self._pattern: re.Pattern | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def add(self, written: str, spoken: str) -> tuple[str, str]:
        written, spoken = check_entry(written, spoken)
        if written not in self.entries and len(self.entries) >= MAX_ENTRIES:
            raise LexiconError(f"the lexicon is full ({MAX_ENTRIES} entries)")
        self.entries[written] = spoken
        self._pattern = None
        return written, spoken

    def remove(self, written: str) -> str:
        """Remove an entry; LookupError naming it when there is none."""
        written = written.strip()
        if written not in self.entries:
            raise LookupError(f"the lexicon has no entry {written!r}")
        self._pattern = None
        return self.entries.pop(written)

    def apply(self, text: str) -> str:
        """``text`` with every written form replaced by its spoken form (one pass, longest first)."""
        if not self.entries:
            return text
        if self._pattern is None:
            self._pattern = _compile(tuple(sorted(self.entries)))
        folded = {w.lower(): s for w, s in self.entries.items() if w == w.lower()}

        def spoken(match: re.Match) -> str:
            found = match.group(0)
            return self.entries.get(found) or folded[found.lower()]

        return self._pattern.sub(spoken, text)

    def to_json(self) -> dict:
        return {"format": LEXICON_FORMAT, "entries": dict(sorted(self.entries.items()))}

    @classmethod
    def from_json(cls, data: object, source: str = "lexicon") -> Lexicon:
        if not isinstance(data, Mapping) or data.get("format") != LEXICON_FORMAT or not isinstance(data.get("entries"), Mapping):
            raise LexiconError(f"{source}: not a moksori lexicon (expected {{'format': {LEXICON_FORMAT!r}, 'entries': {{...}}}})")
        try:
            return cls(dict(data["entries"]))
        except LexiconError as error:
            raise LexiconError(f"{source}: {error}") from None

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """The lexicon in ``path``; an empty one when the file does not exist."""
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise LexiconError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno})") from None
        return cls.from_json(data, str(path))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n"
        atomic_write_bytes(path, text.encode("utf-8"))
        return path


def _entry_pattern(written: str) -> str:
    part = re.escape(written)
    if re.match(f"[{_LATIN_OR_DIGIT}]", written):
        part = f"(?<![{_LATIN_OR_DIGIT}])" + part
    if re.search(f"[{_LATIN_OR_DIGIT}]$", written):
        part += f"(?![{_LATIN_OR_DIGIT}])"
    return f"(?i:{part})" if written == written.lower() and written != written.upper() else part


@lru_cache(maxsize=64)  # a server rebuilds a voice's lexicon per request; the pattern is reused
def _compile(written_forms: tuple[str, ...]) -> re.Pattern:
    ordered = sorted(written_forms, key=lambda w: (-len(w), w))
    return re.compile("|".join(_entry_pattern(w) for w in ordered))


def merge(*lexicons: Lexicon | None) -> Lexicon:
    """One lexicon from several, later ones winning for the same written form
    (``merge(global_lexicon, voice_lexicon)``: the voice's entries take precedence)."""
    entries: dict[str, str] = {}
    for lexicon in lexicons:
        if lexicon:
            entries.update(lexicon.entries)
    return Lexicon(entries)


def global_lexicon_path() -> Path:
    """``$MOKSORI_LEXICON``, or ``~/.config/moksori/lexicon.json`` (``$XDG_CONFIG_HOME`` honoured)."""
    configured = os.environ.get(GLOBAL_LEXICON_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "moksori" / LEXICON_FILE


def load_global_lexicon() -> Lexicon:
    return Lexicon.load(global_lexicon_path())


def voice_lexicon_path(voice_dir: str | Path) -> Path:
    return Path(voice_dir) / LEXICON_FILE


def load_voice_lexicon(voice_dir: str | Path) -> Lexicon:
    """The lexicon stored in a voice bundle folder (empty when it has none)."""
    return Lexicon.load(voice_lexicon_path(voice_dir))


def effective_lexicon(voice_dir: str | Path | None = None, extra: Iterable[Lexicon] = ()) -> Lexicon:
    """Global, then the bundle's, then ``extra`` (a studio voice's, from the database)."""
    voice = load_voice_lexicon(voice_dir) if voice_dir is not None else None
    return merge(load_global_lexicon(), voice, *extra)
