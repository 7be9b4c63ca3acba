"""Which voices the server offers, and one shared Synthesizer per voice.

Voices come from two places, merged:

* bundles in ``voices_dir`` (each sub-folder with a voice.json, or ``voices_dir`` itself when it
  is a bundle): public, with the folder name as id;
* ``Voice`` rows of the database that have a ``bundle_path``: id is the row id, and a row with
  ``is_private`` is seen and used only with an API key of its owner. A row pointing into
  ``voices_dir`` takes over the folder's bundle (its id, name and privacy apply).

With ``include_default_voice`` the voice shipped with moksori (``moksori/voices/ko_default``) is
offered too, as ``ko_default``, unless ``voices_dir`` holds a voice of that id or name; it is
the default voice only when no other public voice is there (or ``default_voice`` names it).
An installation without the shipped voice simply does not list it.

Voices the recording studio trained (a row whose bundle is ``voices_dir/studio-<row id>``) are
*studio voices*: they never shadow the operator's voices (folder bundles, the shipped voice, rows
the operator registered). A name or id is looked up among operator voices first, then studio
voices (the caller's own before other users' public ones); ``studio-<n>`` folders are served only
through their row; and the default voice is chosen among operator voices only (or set by
``default_voice``), so no studio user can change what a request without ``voice`` gets.

Metadata is read from voice.json (re-read when the file changes); weights are loaded on first
use, once, and the Synthesizer is shared by every request (inference only, so thread-safe).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

import moksori.voices as shipped_voices
from moksori.synthesis import Synthesizer, VoiceError, read_voice_json
from moksori.synthesis.voice_files import VOICE_JSON

log = logging.getLogger(__name__)

# The folder name moksori.studio gives a trained bundle (``bundle_name``): studio-<voice row id>.
STUDIO_BUNDLE = re.compile(r"studio-[0-9]+")
# What a VoiceInfo version carries after it when the voice borrows another voice's vocoder.
VOCODER_MARK = "|vocoder:"
# The name that means "the server's default voice" wherever a voice is named (never a studio voice's).
DEFAULT_ALIAS = "default"


@dataclass(frozen=True)
class VoiceInfo:
    """What the server knows about a voice without loading its weights."""

    id: str
    name: str
    path: Path
    language: str
    sample_rate: int
    description: str = ""
    created: str | None = None
    speakers: list[str] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    owner_id: int | None = None
    is_private: bool = False
    version: str = ""  # changes when the bundle is rebuilt; part of cache keys
    studio: bool = False  # trained in the recording studio: never shadows an operator voice
    vocoder_from: Path | None = None  # another voice's folder whose vocoder this one speaks through

    def with_vocoder(self, other: "VoiceInfo") -> "VoiceInfo":
        """This voice through ``other``'s vocoder (its own cache and Synthesizer identity)."""
        return replace(self, vocoder_from=other.path, version=f"{self.version}{VOCODER_MARK}{other.path}|{other.version}")

    def visible_to(self, owner_id: int | None) -> bool:
        return not self.is_private or (owner_id is not None and owner_id == self.owner_id)

    def public_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "language": self.language,
            "sample_rate": self.sample_rate,
            "description": self.description,
            "created": self.created,
            "speakers": self.speakers,
            "training": self.training,
            "private": self.is_private,
        }


class UnknownVoiceError(LookupError):
    def __init__(self, wanted: str, available: list[str], message: str | None = None) -> None:
        self.wanted = wanted
        self.available = available
        shown = ", ".join(available) if available else "none"
        super().__init__(message or f"voice {wanted!r} not found; available voices: {shown}")


class NoDefaultVoiceError(UnknownVoiceError):
    """No voice was asked for and the operator's voices offer no default."""

    def __init__(self, available: list[str]) -> None:
        shown = ", ".join(available) if available else "none"
        super().__init__("(default)", available, "this server has no default voice (the operator sets one with "
                         f"default_voice); name a voice with 'voice'; available voices: {shown}")


def info_from_bundle(path: Path, *, voice_id: str | None = None, owner_id: int | None = None, is_private: bool = False) -> VoiceInfo:
    """Read a bundle's voice.json (no weights) into a VoiceInfo; VoiceError when it is invalid."""
    data = read_voice_json(path)
    files = data.get("files", {})
    version = ",".join(f"{name}:{entry.get('sha256', '')[:16]}" for name, entry in sorted(files.items()))
    return VoiceInfo(
        id=voice_id or path.name,
        name=str(data["name"]),
        path=path,
        language=str(data.get("language") or data["text_frontend"].get("language", "")),
        sample_rate=int(data["audio"]["sample_rate"]),
        description=str(data.get("description", "")),
        created=data.get("created"),
        speakers=[str(s) for s in data.get("speakers") or []],
        training=dict(data.get("training") or {}),
        owner_id=owner_id,
        is_private=is_private,
        version=f"{data.get('created')}|{version}",
    )


class VoiceRegistry:
    """Voices from a folder and the database; lookups by name or id; shared Synthesizers."""

    def __init__(
        self,
        voices_dir: Path,
        database: Any | None = None,
        default_voice: str | None = None,
        *,
        include_default_voice: bool = False,
        precision: str = "fp32",
        num_threads: int | None = None,
    ) -> None:
        self.voices_dir = Path(voices_dir)
        self.precision = precision  # every Synthesizer's (moksori.synthesis.precision)
        # Every Synthesizer's threads: PyTorch's (process-wide) for a voice on the PyTorch models, its
        # ONNX Runtime sessions' otherwise (an exported voice runs without torch, see onnx_voice).
        self.num_threads = num_threads
        self.database = database
        self.default_voice = default_voice
        self.include_default_voice = include_default_voice
        self._bundle_cache: dict[Path, tuple[float, VoiceInfo | None]] = {}
        self._synthesizers: dict[tuple[Path, str], Synthesizer] = {}
        self._load_locks: dict[Path, threading.Lock] = {}
        self._lock = threading.Lock()

    # --- listing -------------------------------------------------------------------------

    def all_voices(self) -> list[VoiceInfo]:
        """Every servable voice, private ones included, sorted by name then id."""
        by_path = {info.path: info for info in self._folder_voices()}
        for info in self._database_voices():
            by_path[info.path] = info  # a database row takes over its folder's bundle
        return sorted(by_path.values(), key=lambda info: (info.name, info.id))

    def voices_for(self, owner_id: int | None) -> list[VoiceInfo]:
        """The voices a caller with ``owner_id`` (None: anonymous / ownerless key) may use."""
        return [info for info in self.all_voices() if info.visible_to(owner_id)]

    def find(self, wanted: str | None, owner_id: int | None) -> VoiceInfo:
        """A visible voice by id or name, or the default voice when ``wanted`` is empty.
        Operator voices come first, then studio voices (the caller's own first), so a studio
        voice never shadows an operator's. UnknownVoiceError lists the visible names otherwise."""
        visible = self.voices_for(owner_id)
        if not wanted:
            return self._default(visible)
        if wanted.casefold() == DEFAULT_ALIAS:  # as `moksori say --voice default`, unless an operator voice has that name
            return _lookup([info for info in visible if not info.studio], wanted, owner_id) or self._default(visible)
        found = _lookup(visible, wanted, owner_id)
        if found is None:
            raise UnknownVoiceError(wanted, [info.name for info in visible])
        return found

    def operator_names(self) -> set[str]:
        """Ids and names of every voice that is not a studio voice (private ones included), and
        the shipped voice's: names a studio voice may not take."""
        names = {shipped_voices.DEFAULT_VOICE_NAME, DEFAULT_ALIAS}
        for info in self.all_voices():
            if not info.studio:
                names.update((info.id, info.name))
        return names

    def _default(self, visible: list[VoiceInfo]) -> VoiceInfo:
        if self.default_voice:  # the operator's choice, looked up operator voices first
            found = _lookup(visible, self.default_voice, None)
            if found is None:  # said as the server's setting: the caller named no voice
                names = [info.name for info in visible]
                raise UnknownVoiceError(self.default_voice, names, f"this server's default voice {self.default_voice!r} "
                                        f"(default_voice) is not among its voices; name a voice with 'voice'; "
                                        f"available voices: {', '.join(names) or 'none'}")
            return found
        operator = [info for info in visible if not info.studio]
        public = [info for info in operator if not info.is_private] or operator
        # The shipped voice is the default only when nothing else is offered.
        public = [info for info in public if not self._is_shipped(info)] or public
        if not public:
            raise NoDefaultVoiceError([info.name for info in visible])
        return public[0]

    def _folder_voices(self) -> list[VoiceInfo]:
        if (self.voices_dir / VOICE_JSON).is_file():
            folders = [self.voices_dir]
        elif self.voices_dir.is_dir():
            folders = sorted(p for p in self.voices_dir.iterdir() if (p / VOICE_JSON).is_file())
        else:
            folders = []
        # A studio bundle is served only through its database row (owner, privacy, studio rank);
        # hidden folders (a studio bundle being deleted is one) are never served.
        folders = [folder for folder in folders if not STUDIO_BUNDLE.fullmatch(folder.name) and not folder.name.startswith(".")]
        infos = (self._bundle_info(folder.resolve()) for folder in folders)
        found = [info for info in infos if info is not None]
        shipped = self._shipped_voice()
        if shipped is not None and not any(
            shipped_voices.DEFAULT_VOICE_NAME in (info.id, info.name) or info.path == shipped.path for info in found
        ):
            found.append(shipped)
        return found

    def _shipped_voice(self) -> VoiceInfo | None:
        """The voice shipped with moksori as ``ko_default``, or None (not asked for, or absent)."""
        if not self.include_default_voice:
            return None
        path = shipped_voices.default_voice_path()
        if not (path / VOICE_JSON).is_file():
            return None
        info = self._bundle_info(path.resolve())
        if info is None or info.id == shipped_voices.DEFAULT_VOICE_NAME:
            return info
        return replace(info, id=shipped_voices.DEFAULT_VOICE_NAME)

    def _is_shipped(self, info: VoiceInfo) -> bool:
        return self.include_default_voice and info.path == shipped_voices.default_voice_path().resolve()

    def _bundle_info(self, path: Path) -> VoiceInfo | None:
        """The folder's VoiceInfo, re-read only when its voice.json changed; None if invalid."""
        try:
            mtime = (path / VOICE_JSON).stat().st_mtime
        except OSError:
            return None
        cached = self._bundle_cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            info: VoiceInfo | None = info_from_bundle(path)
        except (VoiceError, KeyError, TypeError, ValueError) as error:
            log.warning("skipping voice folder %s: %s", path, error)
            info = None
        self._bundle_cache[path] = (mtime, info)
        return info

    def _database_voices(self) -> list[VoiceInfo]:
        if self.database is None:
            return []
        from moksori.store.models import Voice as VoiceRow

        with self.database.session() as session:
            rows = session.scalars(select(VoiceRow).where(VoiceRow.bundle_path.is_not(None))).all()
        infos = []
        for row in rows:
            base = self._bundle_info(self._resolve(row.bundle_path))
            if base is None:
                continue
            # The row's name and description are what the owner chose; the bundle's are defaults.
            changes = {"id": str(row.id), "name": row.name, "owner_id": row.owner_id, "is_private": bool(row.is_private),
                       "studio": self._is_studio_bundle(base.path)}
            if row.description:
                changes["description"] = row.description
            infos.append(replace(base, **changes))
        return infos

    def _is_studio_bundle(self, path: Path) -> bool:
        return path.parent == self.voices_dir.resolve() and STUDIO_BUNDLE.fullmatch(path.name) is not None

    def _resolve(self, bundle_path: str) -> Path:
        path = Path(bundle_path).expanduser()
        return (path if path.is_absolute() else self.voices_dir / path).resolve()

    # --- synthesizers ----------------------------------------------------------------------

    def synthesizer(self, info: VoiceInfo) -> Synthesizer:
        """The shared Synthesizer of ``info`` (loaded on first use; a rebuilt bundle reloads)."""
        key = (info.path, info.version)
        synthesizer = self._synthesizers.get(key)
        if synthesizer is not None:
            return synthesizer
        with self._lock:
            load_lock = self._load_locks.setdefault(info.path, threading.Lock())
        with load_lock:  # one load per voice, other voices are not held up
            synthesizer = self._synthesizers.get(key)
            if synthesizer is None:
                synthesizer = self._load(info)
                borrowed = _vocoder_source(info.version)
                with self._lock:
                    # Older versions of this voice (with the same borrowed vocoder, if any) are stale.
                    stale = [old for old in self._synthesizers
                             if old[0] == info.path and _vocoder_source(old[1]) == borrowed]
                    for old in stale:
                        del self._synthesizers[old]
                    self._synthesizers[key] = synthesizer
        return synthesizer

    def _load(self, info: VoiceInfo) -> Synthesizer:
        if info.vocoder_from is None:
            return Synthesizer(info.path, precision=self.precision, precision_fallback=True, num_threads=self.num_threads)
        from moksori.synthesis.bundle import load_voice, with_vocoder_of

        return Synthesizer(with_vocoder_of(load_voice(info.path), load_voice(info.vocoder_from)), use_onnx=False,
                           precision=self.precision, precision_fallback=True, num_threads=self.num_threads)

    def loaded_paths(self) -> set[Path]:
        """Bundle folders of the voices whose weights are in memory (names are for callers to
        choose: a private voice's name is not everyone's to see)."""
        with self._lock:
            return {path for path, _ in self._synthesizers}


def _lookup(visible: list[VoiceInfo], wanted: str, owner_id: int | None) -> VoiceInfo | None:
    """``wanted`` by id, then by name, among operator voices, then likewise among studio voices
    (the caller's own before others')."""
    for tier in ([i for i in visible if not i.studio], [i for i in visible if i.studio]):
        for info in tier:
            if info.id == wanted:
                return info
        named = [info for info in tier if info.name == wanted]
        named.sort(key=lambda info: owner_id is None or info.owner_id != owner_id)
        if named:
            return named[0]
    return None


def _vocoder_source(version: str) -> str:
    """The borrowed vocoder's folder named in a version ('' for the voice's own vocoder)."""
    return version.partition(VOCODER_MARK)[2].partition("|")[0]
