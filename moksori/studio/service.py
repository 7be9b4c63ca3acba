"""The recording studio's logic: voices, prompt sets, takes with a quality verdict, progress,
LJSpeech export and deletion. No HTTP here: ``moksori.server.studio`` translates requests into
calls and :class:`StudioError` subclasses into statuses.

Files live in a :class:`~moksori.store.FileStore` under ``StudioSettings.data_dir``::

    voices/{voice_id}/takes/{prompt_id}_{random}.wav   one file per take, 16-bit mono WAV
    voices/{voice_id}/runs/{run_id}/                   training jobs (see moksori.studio.jobs)
    tmp/                                               uploads being decoded, zip exports

A take's file is written atomically before its database row; if the row cannot be written the
file is deleted again, so a crash never leaves a row pointing at nothing or a half file.
Deleting goes the other way round: the file (or folder) is first renamed to a ``.deleting-``
name, then the row is deleted (the rename is undone if that fails), then the file. A data folder
that cannot be written therefore refuses the delete before anything changes. What a kill -9 can
still leave behind (a take file whose row was never written, ``tmp/upload-*``, ``.deleting-*``)
is removed by :meth:`StudioService.reconcile` when the server starts.

Access: a voice with an owner is seen only by that user; a voice without one (made without
signing in) only by anonymous callers (where the server allows anonymous use), never by a
signed-in user. Uploaded prompt sets likewise; built-in sets are everyone's.
"""

from __future__ import annotations

import logging
import os
import re
import time
import secrets
import shutil
import tempfile
import unicodedata
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from moksori.audio import (
    AudioError,
    Problem,
    QualityThresholds,
    load_audio_with_rate,
    pcm16_round_trip,
    resample,
    trim_silence,
    wav_bytes,
)
from moksori.audio.io import AudioLimitError, AudioLimits, load_audio_bounded
from moksori.data.prompt_sets import (
    PromptFileWarning,
    available_languages,
    builtin_prompts,
    parse_prompts,
)
from moksori.studio.judging import BackgroundJudges
from moksori.studio.takes import Check, default_checks, judge_take, make_context, speaker_rate
from moksori.store import (
    Database,
    FileStore,
    Prompt,
    PromptSet,
    Recording,
    TrainingRun,
    Voice,
)

log = logging.getLogger(__name__)

ENV_PREFIX = "MOKSORI_STUDIO_"
# Leftovers younger than this may belong to an upload another server worker is handling now.
STALE_AFTER_S = 300.0
# A take "pending" this long is taken as lost even if another server process may have had it
# (its judges' queue holds at most 16 takes of a few seconds each).
JUDGES_LOST_AFTER_S = 600.0
TRASH_PREFIX = ".deleting-"
LANGUAGES = ("ko", "en")
ACTIVE_RUN_STATUSES = ("queued", "running")
# Recommended amounts of kept speech: fine-tuning a pretrained voice vs. training from scratch.
FINETUNE_GOAL_S = 3600.0
SCRATCH_GOAL_S = 5 * 3600.0
MAX_PROMPT_FILE_BYTES = 2 * 1024 * 1024
MAX_PROMPTS_PER_SET = 20000
MAX_PROMPT_CHARS = 500
# The newest take of a prompt that passes the checks becomes the kept one; a failing take is
# stored but not kept until the user keeps it anyway (or trims it into shape).


@dataclass
class StudioSettings:
    """Settings of the studio; read from ``MOKSORI_STUDIO_<FIELD>`` by :meth:`from_env`.

    ``data_dir`` None puts the studio's files in a ``studio`` folder beside the SQLite database
    file (see :func:`default_data_dir`). ``allow_anonymous`` None allows use without
    an account exactly when the server needs no API keys (a loopback address); ``allow_signup``
    None likewise allows creating accounts only then: off loopback the operator turns it on.
    ``train_threads`` None leaves training's thread count alone.
    """

    data_dir: Path | None = None
    sample_rate: int = 22050
    max_upload_bytes: int = 20 * 1024 * 1024
    max_take_s: float = 60.0
    max_channels: int = 2
    trim_margin_s: float = 0.15
    # Store every take with its edge silence cut (the untrimmed upload is kept beside it, so
    # ``untrim_take`` can undo it).
    auto_trim: bool = True
    # The operator's own recipes, offered beside those shipped with moksori (moksori/recipes).
    recipes_dir: Path = Path("configs")
    default_recipe: str = "glowtts_hifigan_ko"
    min_training_takes: int = 4
    allow_anonymous: bool | None = None
    allow_signup: bool | None = None
    train_threads: int | None = None
    # The background take judges (speech recogniser vs the script, DNSMOS noise) when the judges extra is installed.
    judges: bool = True
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)

    def __post_init__(self) -> None:
        self.data_dir = None if self.data_dir is None else Path(self.data_dir)
        self.recipes_dir = Path(self.recipes_dir)
        if self.sample_rate < 8000 or self.max_upload_bytes < 1 or self.max_take_s <= 0 or self.max_channels < 1:
            raise ValueError(
                "StudioSettings: sample_rate >= 8000, max_upload_bytes >= 1, max_take_s > 0 and max_channels >= 1"
            )
        if self.min_training_takes < 2:
            raise ValueError("StudioSettings.min_training_takes must be at least 2 (one goes to validation)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StudioSettings:
        """Settings from ``MOKSORI_STUDIO_*`` variables (``thresholds`` keeps its defaults)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = environ.get(ENV_PREFIX + item.name.upper())
            if raw is not None and item.name != "thresholds":
                values[item.name] = _parse_env(item.name, raw)
        root = environ.get("MOKSORI_STORAGE_ROOT", "").strip()
        if values.get("data_dir") is None and root:  # one storage root shared by instances and workers
            values["data_dir"] = Path(root).expanduser() / "studio"
        return cls(**values)


def _parse_env(name: str, raw: str) -> Any:
    where = f"{ENV_PREFIX}{name.upper()}={raw!r}"
    if name in ("data_dir", "allow_anonymous", "allow_signup", "train_threads") and raw.strip() == "":
        return None
    if name in ("allow_anonymous", "allow_signup", "auto_trim", "judges"):
        lowered = raw.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{where}: use true or false" + ("" if name in ("auto_trim", "judges") else " or empty (automatic)"))
        return lowered in ("true", "1", "yes")
    try:
        if name in ("sample_rate", "max_upload_bytes", "max_channels", "min_training_takes", "train_threads"):
            return int(raw)
        if name in ("max_take_s", "trim_margin_s"):
            return float(raw)
    except ValueError:
        raise ValueError(f"{where} is not a number") from None
    return raw


# --- errors ------------------------------------------------------------------------------------


class StudioError(Exception):
    """A request the studio cannot carry out; the message says why and what to do."""

    code = "studio_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFoundError(StudioError):
    code = "not_found"


class ConflictError(StudioError):
    code = "conflict"


class InvalidInputError(StudioError):
    code = "invalid_input"


class TooLargeError(InvalidInputError):
    code = "too_large"


# --- results -----------------------------------------------------------------------------------


@dataclass
class TakeResult:
    """A stored take, the problems found in it, and the rate the upload came in at."""

    recording: Recording
    problems: list[Problem]
    source_sample_rate: int | None = None

    @property
    def resampled(self) -> bool:
        return self.source_sample_rate is not None and self.source_sample_rate != self.recording.sample_rate


@dataclass
class PromptStatus:
    """One prompt of a set and, for one voice, its takes."""

    prompt: Prompt
    takes: int
    kept: Recording | None
    latest: Recording | None


@dataclass
class Progress:
    """How far a voice is: prompts with a kept take and minutes of kept speech."""

    voice_id: int
    kept_takes: int
    total_takes: int
    recorded_s: float
    prompts_done: int | None = None  # of the given prompt set
    prompts_total: int | None = None
    min_training_takes: int = 4

    @property
    def finetune_remaining_s(self) -> float:
        return max(0.0, FINETUNE_GOAL_S - self.recorded_s)

    @property
    def scratch_remaining_s(self) -> float:
        return max(0.0, SCRATCH_GOAL_S - self.recorded_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "kept_takes": self.kept_takes,
            "total_takes": self.total_takes,
            "recorded_seconds": round(self.recorded_s, 2),
            "recorded_minutes": round(self.recorded_s / 60.0, 2),
            "prompts_done": self.prompts_done,
            "prompts_total": self.prompts_total,
            "goals": {
                "finetune_minutes": FINETUNE_GOAL_S / 60.0,
                "scratch_minutes": SCRATCH_GOAL_S / 60.0,
                "finetune_remaining_minutes": round(self.finetune_remaining_s / 60.0, 2),
                "scratch_remaining_minutes": round(self.scratch_remaining_s / 60.0, 2),
            },
            "can_train": self.kept_takes >= self.min_training_takes,
            "min_training_takes": self.min_training_takes,
        }


# --- the service -------------------------------------------------------------------------------


class StudioService:
    """Voices, prompt sets and takes of the studio, over one database and one file store."""

    def __init__(self, database: Database, settings: StudioSettings, voices_dir: str | Path) -> None:
        self.db = database
        self.settings = settings
        self.files = FileStore(settings.data_dir or default_data_dir(database))
        self.voices_dir = Path(voices_dir)
        self.tmp_dir = self.files.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        # The take checks (see moksori.studio.takes); append a check to add one.
        self.checks: list[Check] = default_checks()
        # The slow checks (moksori.studio.judging), run after a take is stored.
        self.background_judges = BackgroundJudges(enabled=settings.judges)
        # Takes handed to this process's judges and not answered yet; a take "pending" that is not
        # here and was handed over before this process started (or long ago) was lost with its process.
        self._judging: set[int] = set()
        self._started = time.time()

    # --- voices -------------------------------------------------------------------------------

    def create_voice(
        self, name: str, language: str, description: str = "", *, owner_id: int | None = None, private: bool = False
    ) -> Voice:
        """A new voice; InvalidInputError for a bad name/language, ConflictError for a taken name."""
        name = _clean_name(name, "voice name")
        if language not in LANGUAGES:
            raise InvalidInputError(f"language {language!r} is not supported; use one of {', '.join(LANGUAGES)}")
        description = (description or "").strip()[:2000]
        if any(_unspeakable_control(c) and c not in "\n\r" for c in description):
            raise InvalidInputError("the description contains control characters or lone surrogates")
        voice = Voice(
            name=name,
            language=language,
            description=description,
            owner_id=owner_id,
            is_private=bool(private and owner_id is not None),
            sample_rate=self.settings.sample_rate,
        )
        try:
            with self.db.session() as session:
                if session.scalar(_same_name(name, owner_id)) is not None:
                    raise ConflictError(f"there is already a voice named {name!r}; choose another name")
                session.add(voice)
        except IntegrityError as error:  # lost a race with another create_voice
            raise ConflictError(f"there is already a voice named {name!r}; choose another name") from error
        return voice

    def list_voices(self, user_id: int | None) -> list[Voice]:
        """The caller's voices (signed in), or the voices without an owner (anonymous)."""
        owner = Voice.owner_id.is_(None) if user_id is None else Voice.owner_id == user_id
        with self.db.session() as session:
            return list(session.scalars(select(Voice).where(owner).order_by(Voice.created_at, Voice.id)))

    def get_voice(self, voice_id: int, user_id: int | None) -> Voice:
        with self.db.session() as session:
            return self.check_voice(session, voice_id, user_id)

    def delete_voice(self, voice_id: int, user_id: int | None, confirm: str | None) -> Voice:
        """Delete a voice, its takes, training runs and trained bundle. ``confirm`` must be the
        voice's name; otherwise ConflictError says what to send. Active training runs must be
        cancelled first (ConflictError)."""
        with self.db.session() as session:
            voice = self.check_voice(session, voice_id, user_id)
            if confirm != voice.name:
                takes = session.scalar(select(func.count()).where(Recording.voice_id == voice.id))
                raise ConflictError(
                    f"deleting voice {voice.name!r} removes its {takes} recordings and trained models for good; "
                    f"to confirm, send confirm={voice.name!r} (the voice's exact name)",
                    code="confirmation_required",
                )
            active = session.scalars(
                select(TrainingRun.id).where(
                    TrainingRun.voice_id == voice.id, TrainingRun.status.in_(ACTIVE_RUN_STATUSES)
                )
            ).all()
            if active:
                raise ConflictError(f"voice {voice.name!r} has training runs in progress ({active}); cancel them first")
        trashed: list[tuple[Path, Path]] = []
        try:
            # Files are moved aside first: a folder that cannot be written refuses before the row goes.
            for folder in (self.files.root / voice_folder(voice.id), self.bundle_dir(voice.id)):
                moved = _move_aside(folder)
                if moved is not None:
                    trashed.append((folder, moved))
            with self.db.session() as session:
                row = session.get(Voice, voice.id)
                if row is not None:
                    session.delete(row)
        except BaseException:
            _put_back(trashed)
            raise
        for _, moved in trashed:
            _remove_quietly(moved)
        return voice

    def check_writable(self) -> None:
        """Raise the OSError of a data folder that cannot be written (before a change that must
        not half-happen)."""
        fd, name = tempfile.mkstemp(prefix=".probe-", dir=self.files.root)
        os.close(fd)
        os.unlink(name)

    def bundle_dir(self, voice_id: int) -> Path:
        """Where the studio puts a voice's trained bundle: a folder of the server's voices_dir."""
        return self.voices_dir / bundle_name(voice_id)

    def check_voice(self, session: Session, voice_id: int, user_id: int | None) -> Voice:
        """The voice, loaded in ``session``, if ``user_id`` may use it; NotFoundError otherwise."""
        voice = session.get(Voice, voice_id)
        # A voice made without an account belongs to anonymous use only, not to every account.
        if voice is None or voice.owner_id != user_id:
            raise NotFoundError(f"no voice with id {voice_id}" + ("" if user_id else " (sign in to see your voices)"))
        return voice

    # --- prompt sets --------------------------------------------------------------------------

    def builtin_set(self, language: str) -> PromptSet:
        """The built-in prompt set of ``language``, stored on first use (its prompts never change
        afterwards, so recordings keep pointing at the sentences they were made for)."""
        if language not in available_languages():
            raise InvalidInputError(
                f"no built-in prompt list for {language!r}; available: {', '.join(available_languages())}"
            )
        with self.db.session() as session:
            existing = session.scalar(_builtin_query(language))
            if existing is not None:
                return existing
            prompt_set = PromptSet(name=f"built-in ({language})", language=language, source="builtin")
            prompt_set.prompts = [Prompt(position=i, text=t) for i, t in enumerate(builtin_prompts(language))]
            session.add(prompt_set)
        with self.db.session() as session:
            # Two processes may have raced; everyone uses the oldest set.
            return session.scalar(_builtin_query(language))

    def list_prompt_sets(self, user_id: int | None) -> list[tuple[PromptSet, int]]:
        """(set, number of prompts): the built-in sets, then the caller's uploaded ones."""
        builtin_ids = [self.builtin_set(language).id for language in available_languages()]
        owner = PromptSet.owner_id.is_(None) if user_id is None else PromptSet.owner_id == user_id
        count = select(func.count()).where(Prompt.prompt_set_id == PromptSet.id).scalar_subquery()
        query = (
            select(PromptSet, count)
            .where((PromptSet.id.in_(builtin_ids)) | ((PromptSet.source == "upload") & owner))
            .order_by(PromptSet.source, PromptSet.id)
        )
        with self.db.session() as session:
            return [(row[0], int(row[1])) for row in session.execute(query)]

    def upload_prompt_set(
        self, name: str, language: str, data: bytes, *, owner_id: int | None = None
    ) -> tuple[PromptSet, int, list[str]]:
        """Store an uploaded prompt file (``sentence<TAB>length`` or one sentence per line).
        Returns (set, number of prompts, warnings about odd lines)."""
        name = _clean_name(name, "prompt set name")
        if language not in LANGUAGES:
            raise InvalidInputError(f"language {language!r} is not supported; use one of {', '.join(LANGUAGES)}")
        if len(data) > MAX_PROMPT_FILE_BYTES:
            raise TooLargeError(f"prompt file is {len(data)} bytes; the limit is {MAX_PROMPT_FILE_BYTES}")
        sentences, notes = _parse_prompt_upload(data, name, language)
        prompt_set = PromptSet(name=name, language=language, owner_id=owner_id, source="upload")
        prompt_set.prompts = [Prompt(position=i, text=text) for i, text in enumerate(sentences)]
        with self.db.session() as session:
            session.add(prompt_set)
        return prompt_set, len(sentences), notes

    def get_prompt_set(self, set_id: int, user_id: int | None) -> PromptSet:
        with self.db.session() as session:
            return self._prompt_set(session, set_id, user_id)

    def prompt_statuses(self, set_id: int, voice_id: int | None, user_id: int | None) -> list[PromptStatus]:
        """Every prompt of a set with, for ``voice_id``, its number of takes, kept and latest take."""
        with self.db.session() as session:
            self._prompt_set(session, set_id, user_id)
            prompts = session.scalars(select(Prompt).where(Prompt.prompt_set_id == set_id).order_by(Prompt.position))
            prompts = list(prompts)
            takes: dict[int, list[Recording]] = {}
            if voice_id is not None:
                self.check_voice(session, voice_id, user_id)
                rows = session.scalars(
                    select(Recording)
                    .join(Prompt, Prompt.id == Recording.prompt_id)
                    .where(Recording.voice_id == voice_id, Prompt.prompt_set_id == set_id)
                    .order_by(Recording.take)
                )
                for row in rows:
                    takes.setdefault(row.prompt_id, []).append(row)
        return [_prompt_status(prompt, takes.get(prompt.id, [])) for prompt in prompts]

    def _prompt_set(self, session: Session, set_id: int, user_id: int | None) -> PromptSet:
        prompt_set = session.get(PromptSet, set_id)
        # Built-in sets are everyone's; an uploaded set only its uploader's (anonymous: anonymous use's).
        if prompt_set is None or not (
            prompt_set.owner_id == user_id or (prompt_set.source != "upload" and prompt_set.owner_id is None)
        ):
            raise NotFoundError(f"no prompt set with id {set_id}")
        return prompt_set

    def _prompt(self, session: Session, prompt_id: int, user_id: int | None) -> Prompt:
        prompt = session.get(Prompt, prompt_id)
        missing = NotFoundError(f"no prompt with id {prompt_id}")
        if prompt is None:
            raise missing
        try:  # a prompt of someone else's uploaded set is answered as a missing one
            self._prompt_set(session, prompt.prompt_set_id, user_id)
        except NotFoundError:
            raise missing from None
        return prompt

    # --- takes --------------------------------------------------------------------------------

    def store_take(self, voice_id: int, prompt_id: int, data: bytes, user_id: int | None) -> TakeResult:
        """Decode an uploaded take (any format soundfile reads), resample it to the voice's rate,
        store it as 16-bit mono WAV and judge it. InvalidInputError names what is wrong with a
        bad upload; TooLargeError for one over the size limit."""
        with self.db.session() as session:
            voice = self.check_voice(session, voice_id, user_id)
            prompt = self._prompt(session, prompt_id, user_id)
            language = prompt.prompt_set.language
            rate = self._speaker_rate(session, voice.id)
        wave, source_rate = self._decode_upload(data)
        if source_rate != voice.sample_rate:
            wave = resample(wave, source_rate, voice.sample_rate)
        stored = pcm16_round_trip(wave)
        cut = self._auto_trim(stored, voice.sample_rate)
        problems, quality = self._judge(stored, voice.sample_rate, prompt.text, language, rate, auto_trimmed=cut is not None)
        relative = take_path(voice.id, prompt.id)
        written = [relative]
        try:
            if cut is None:
                self.files.write_atomic(relative, wav_bytes(stored, voice.sample_rate))
            else:
                trimmed, (start, end) = cut
                written.append(original_path(relative))
                self.files.write_atomic(written[1], wav_bytes(stored, voice.sample_rate))
                self.files.write_atomic(relative, wav_bytes(trimmed, voice.sample_rate))
                quality["trim"] = {"start_s": round(start / voice.sample_rate, 3),
                                   "end_s": round(end / voice.sample_rate, 3), "original": written[1]}
            samples = stored.size if cut is None else cut[0].size
            recording = self._insert_take(voice, prompt, relative, samples, quality, problems)
        except BaseException:
            for path in written:
                self.files.delete(path)
            raise
        self._judge_in_background(recording.id, relative, stored, voice.sample_rate, prompt.text, language)
        return TakeResult(recording, problems, source_rate)

    def _auto_trim(self, wave: np.ndarray, sample_rate: int) -> tuple[np.ndarray, tuple[int, int]] | None:
        """The take with its edge silence cut, or None when automatic trimming is off, the take
        is silent, or there is nothing to cut."""
        if not self.settings.auto_trim:
            return None
        trimmed, (start, end) = trim_silence(wave, sample_rate, margin_s=self.settings.trim_margin_s)
        if trimmed.size == 0 or (start, end) == (0, wave.size):
            return None
        return trimmed, (start, end)

    def _speaker_rate(self, session: Session, voice_id: int) -> float | None:
        """The voice's speaker's seconds per syllable over their newest kept takes (None until
        there are enough; see :func:`moksori.studio.takes.speaker_rate`)."""
        rows = session.execute(
            select(Prompt.text, Recording.quality)
            .join(Prompt, Prompt.id == Recording.prompt_id)
            .where(Recording.voice_id == voice_id, Recording.kept.is_(True))
            .order_by(Recording.id.desc())
            .limit(200)
        ).all()
        return speaker_rate((text, float((quality or {}).get("speech_duration_s") or 0.0)) for text, quality in rows)

    def _decode_upload(self, data: bytes) -> tuple[np.ndarray, int]:
        """Decode an upload within the take limits: the header is checked before decoding and
        samples are decoded in blocks, so a small file that expands to hours is refused cheaply."""
        limit = self.settings.max_upload_bytes
        if len(data) > limit:
            raise TooLargeError(f"the upload is {len(data)} bytes; the limit is {limit} bytes")
        if not data:
            raise InvalidInputError("the uploaded audio is empty (0 bytes)", code="empty_upload")
        limits = AudioLimits(max_seconds=self.settings.max_take_s, max_channels=self.settings.max_channels)
        with self._temp_file(data) as path:
            try:
                return load_audio_bounded(path, limits)
            except AudioLimitError as error:
                raise InvalidInputError(str(error), code=error.code) from error
            except AudioError as error:
                # The message starts with our temp path: the client needs the problem, not the path.
                problem = str(error).replace(f"{path}: ", "").replace(str(path), "upload")
                raise InvalidInputError(f"the upload is not usable audio: {problem}", code="invalid_audio") from error

    @contextmanager
    def _temp_file(self, data: bytes) -> Iterator[Path]:
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)

    def _judge(
        self, wave: np.ndarray, sample_rate: int, text: str, language: str, speaker_s_per_syllable: float | None,
        *, auto_trimmed: bool = False,
    ) -> tuple[list[Problem], dict[str, Any]]:
        """Run :attr:`checks` on a take as it was recorded (before any trimming)."""
        context = make_context(wave, sample_rate, text, language, self.settings.thresholds,
                               speaker_s_per_syllable=speaker_s_per_syllable, auto_trimmed=auto_trimmed)
        problems = judge_take(context, self.checks)
        quality = {**context.report.to_dict(), "problems": [{"code": p.code, "message": p.message} for p in problems],
                   "speaker_s_per_syllable": speaker_s_per_syllable,
                   "judges": {**self.background_judges.initial_state(), "since": round(time.time(), 3)}}
        return problems, quality

    def _judge_in_background(self, recording_id: int, path: str, wave: np.ndarray, sample_rate: int, text: str,
                             language: str) -> None:
        """Hand the take to the background judges; their result is stored if the take still has ``path``."""
        if not self.background_judges.active:
            return
        context = make_context(wave, sample_rate, text, language, self.settings.thresholds)

        def done(state: dict[str, Any]) -> None:
            try:
                self._store_judges(recording_id, path, state)
            finally:
                self._judging.discard(recording_id)

        self._judging.add(recording_id)
        if self.background_judges.submit(context, done) is None:
            self._judging.discard(recording_id)

    def _store_judges(self, recording_id: int, path: str, state: dict[str, Any]) -> None:
        """Record the judges' result on the take; their problems join its own (its kept flag stays)."""
        with self.db.session() as session:
            row = session.get(Recording, recording_id)
            if row is None or row.path != path:  # deleted, trimmed or untrimmed meanwhile: judged again there
                return
            quality = dict(row.quality or {})
            found = [item for item in state.get("problems", []) if item not in quality.get("problems", [])]
            quality["problems"] = [*quality.get("problems", []), *found]
            quality["judges"] = state
            row.quality = quality
            codes = [item["code"] for item in quality["problems"]]
            row.verdict = ",".join(codes)[:200] if codes else "ok"

    def _insert_take(
        self, voice: Voice, prompt: Prompt, relative: str, samples: int, quality: dict[str, Any], problems: list[Problem]
    ) -> Recording:
        for attempt in range(3):
            try:
                with self.db.session() as session:
                    latest = session.scalar(
                        select(func.max(Recording.take)).where(
                            Recording.voice_id == voice.id, Recording.prompt_id == prompt.id
                        )
                    )
                    recording = Recording(
                        voice_id=voice.id,
                        prompt_id=prompt.id,
                        take=(latest or 0) + 1,
                        path=relative,
                        sample_rate=voice.sample_rate,
                        duration_s=samples / voice.sample_rate,
                        quality=quality,
                        verdict=_verdict(problems),
                        kept=False,
                    )
                    session.add(recording)
                    session.flush()
                    if not problems:
                        _keep_only(session, recording)
                return recording
            except IntegrityError:  # another upload of the same prompt took this take number
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get_take(self, recording_id: int, user_id: int | None) -> Recording:
        with self.db.session() as session:
            return self._recording(session, recording_id, user_id)

    def take_with_judges(self, recording_id: int, user_id: int | None) -> Recording:
        """:meth:`get_take`, after handing a take whose judges were lost (the server stopped while
        they worked) to the judges again, so it does not stay "pending" for good."""
        recording = self.get_take(recording_id, user_id)
        judges = (recording.quality or {}).get("judges") or {}
        if judges.get("status") != "pending" or recording.id in self._judging:
            return recording
        since = judges.get("since")
        if since is not None and since >= self._started and time.time() - since < JUDGES_LOST_AFTER_S:
            return recording  # handed over since this process started: another server process may be judging it
        with self.db.session() as session:
            text, language = _take_script(session, recording)
        if not self.background_judges.active:  # turned off since: say so instead of "pending"
            self._store_judges(recording.id, recording.path, self.background_judges.initial_state())
            return self.get_take(recording_id, user_id)
        wave, rate = load_audio_with_rate(self.files.path(recording.path))
        log.info("take %d: its judges were lost (the server stopped while they worked); judging it again", recording.id)
        self._judge_in_background(recording.id, recording.path, wave, rate, text, language)
        return recording

    def take_file(self, recording_id: int, user_id: int | None) -> Path:
        """The stored WAV of a take."""
        return self.files.path(self.get_take(recording_id, user_id).path)

    def set_kept(self, recording_id: int, kept: bool, user_id: int | None) -> Recording:
        """Keep a take (the prompt's other takes are no longer kept) or drop it from the dataset."""
        with self.db.session() as session:
            recording = self._recording(session, recording_id, user_id)
            if kept:
                _keep_only(session, recording)
            else:
                recording.kept = False
            return recording

    def trim_take(self, recording_id: int, user_id: int | None) -> TakeResult:
        """Cut the take's leading and trailing silence (keeping ``trim_margin_s``) and judge it
        again. The trimmed audio goes to a new file; the old one is removed once the row points
        at the new one."""
        recording = self.get_take(recording_id, user_id)
        with self.db.session() as session:
            text, language = _take_script(session, recording)
            speaker = self._speaker_rate(session, recording.voice_id)
        wave, rate = load_audio_with_rate(self.files.path(recording.path))
        trimmed, _ = trim_silence(wave, rate, margin_s=self.settings.trim_margin_s)
        if trimmed.size == 0:
            raise InvalidInputError("the take is silent: there is nothing to keep after trimming; record it again")
        problems, quality = self._judge(trimmed, rate, text, language, speaker)
        if "trim" in (recording.quality or {}):  # the untrimmed upload stays restorable
            quality["trim"] = {"original": recording.quality["trim"]["original"]}
        relative = take_path(recording.voice_id, recording.prompt_id)
        self.files.write_atomic(relative, wav_bytes(trimmed, rate))
        try:
            with self.db.session() as session:
                row = self._recording(session, recording_id, user_id)
                old_path = row.path
                row.path, row.duration_s, row.quality = relative, trimmed.size / rate, quality
                row.verdict = _verdict(problems)
                if not problems:
                    _keep_only(session, row)
        except BaseException:
            self.files.delete(relative)
            raise
        self.files.delete(old_path)
        self._judge_in_background(recording_id, relative, trimmed, rate, text, language)
        return TakeResult(row, problems)

    def untrim_take(self, recording_id: int, user_id: int | None) -> TakeResult:
        """Undo the trimming of a take: the untrimmed upload, kept since the take was stored,
        becomes the take's file again and is judged as it is (its edge silence included)."""
        recording = self.get_take(recording_id, user_id)
        original = (recording.quality or {}).get("trim", {}).get("original")
        if not original or not self.files.path(original).is_file():
            raise InvalidInputError("this take was not trimmed (or its untrimmed recording is gone): nothing to undo",
                                    code="not_trimmed")
        with self.db.session() as session:
            text, language = _take_script(session, recording)
            speaker = self._speaker_rate(session, recording.voice_id)
        wave, rate = load_audio_with_rate(self.files.path(original))
        problems, quality = self._judge(wave, rate, text, language, speaker)
        with self.db.session() as session:
            row = self._recording(session, recording_id, user_id)
            trimmed_path = row.path
            row.path, row.duration_s, row.quality = original, wave.size / rate, quality
            row.verdict = _verdict(problems)
            if not problems:
                _keep_only(session, row)
        self.files.delete(trimmed_path)
        self._judge_in_background(recording_id, original, wave, rate, text, language)
        return TakeResult(row, problems)

    def delete_take(self, recording_id: int, user_id: int | None) -> Recording:
        """Delete a take's row and file(s): both, or neither (an OSError when a file cannot be
        removed leaves the row alone). The untrimmed upload of a trimmed take goes too."""
        trashed: list[tuple[Path, Path]] = []
        try:
            with self.db.session() as session:
                recording = self._recording(session, recording_id, user_id)
                for relative in _take_files(recording):
                    source = self.files.path(relative)
                    moved = _move_aside(source)
                    if moved is not None:
                        trashed.append((source, moved))
                session.delete(recording)
        except BaseException:
            _put_back(trashed)
            raise
        for _, moved in trashed:
            _remove_quietly(moved)
        return recording

    def _recording(self, session: Session, recording_id: int, user_id: int | None) -> Recording:
        recording = session.get(Recording, recording_id)
        missing = NotFoundError(f"no recording with id {recording_id}")
        if recording is None:
            raise missing
        try:  # someone else's take is answered as a missing one: no word of its voice
            self.check_voice(session, recording.voice_id, user_id)
        except NotFoundError:
            raise missing from None
        return recording

    # --- progress and export ------------------------------------------------------------------

    def progress(self, voice_id: int, user_id: int | None, prompt_set_id: int | None = None) -> Progress:
        with self.db.session() as session:
            self.check_voice(session, voice_id, user_id)
            kept = (Recording.voice_id == voice_id) & Recording.kept.is_(True)
            kept_takes, seconds = session.execute(
                select(func.count(), func.coalesce(func.sum(Recording.duration_s), 0.0)).where(kept)
            ).one()
            total = session.scalar(select(func.count()).where(Recording.voice_id == voice_id))
            progress = Progress(voice_id, int(kept_takes), int(total), float(seconds),
                                min_training_takes=self.settings.min_training_takes)
            if prompt_set_id is not None:
                self._prompt_set(session, prompt_set_id, user_id)
                in_set = Prompt.prompt_set_id == prompt_set_id
                progress.prompts_total = session.scalar(select(func.count()).select_from(Prompt).where(in_set))
                progress.prompts_done = session.scalar(
                    select(func.count(func.distinct(Recording.prompt_id)))
                    .join(Prompt, Prompt.id == Recording.prompt_id)
                    .where(kept, in_set)
                )
        return progress

    def export_entries(self, voice_id: int, user_id: int | None) -> list[tuple[str, str, Path]]:
        """(utterance id, text, stored file) of every kept take of a voice, in prompt order."""
        with self.db.session() as session:
            self.check_voice(session, voice_id, user_id)
            rows = session.execute(
                select(Recording, Prompt.text)
                .join(Prompt, Prompt.id == Recording.prompt_id)
                .where(Recording.voice_id == voice_id, Recording.kept.is_(True))
                .order_by(Prompt.prompt_set_id, Prompt.position, Recording.take)
            ).all()
        return [(utterance_id(rec), _metadata_text(text), self.files.path(rec.path)) for rec, text in rows]

    def export_ljspeech(self, voice_id: int, out_dir: str | Path, user_id: int | None) -> int:
        """Write the voice's kept takes as an LJSpeech folder (``metadata.csv`` id|text|text and
        ``wavs/{id}.wav``) into ``out_dir``, which is replaced; returns the number of clips."""
        entries = self.export_entries(voice_id, user_id)
        out_dir = Path(out_dir)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        (out_dir / "wavs").mkdir(parents=True)
        for utt_id, _, source in entries:
            _link_or_copy(source, out_dir / "wavs" / f"{utt_id}.wav")
        (out_dir / "metadata.csv").write_text(_metadata(entries), encoding="utf-8")
        return len(entries)

    def export_zip(self, voice_id: int, user_id: int | None) -> tuple[Path, str]:
        """A zip of the LJSpeech folder (in the studio's tmp folder; the caller deletes it) and
        the name to download it as. ConflictError when the voice has no kept take."""
        voice = self.get_voice(voice_id, user_id)
        entries = self.export_entries(voice_id, user_id)
        if not entries:
            raise ConflictError(f"voice {voice.name!r} has no kept recordings to export yet")
        folder = f"{_slug(voice.name)}-{voice.id}"
        fd, name = tempfile.mkstemp(prefix="export-", suffix=".zip", dir=self.tmp_dir)
        os.close(fd)
        try:
            # Stored, not deflated: PCM hardly compresses and this keeps exports fast.
            with zipfile.ZipFile(name, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.writestr(f"{folder}/metadata.csv", _metadata(entries))
                for utt_id, _, source in entries:
                    archive.write(source, f"{folder}/wavs/{utt_id}.wav")
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name), f"{folder}.zip"

    # --- start-up ---------------------------------------------------------------------------------

    def reconcile(self, stale_after_s: float = STALE_AFTER_S) -> dict[str, int]:
        """Clean up what a killed server left in the data folder, and log it: upload and export
        temp files, take files without a row, folders of voices that no longer exist, and
        ``.deleting-`` leftovers; only those older than ``stale_after_s`` (another worker may be
        writing newer ones). Returns counts by kind. A folder that cannot be written is logged,
        not fatal."""
        counts = {"temp_files": 0, "orphan_takes": 0, "orphan_voice_folders": 0, "deleting": 0}
        cutoff = time.time() - stale_after_s
        try:
            self._reconcile(counts, cutoff)
        except OSError as error:
            log.warning("studio start-up: could not clean the data folder %s: %s", self.files.root, error)
        if any(counts.values()):
            log.warning("studio start-up: removed %d temp files, %d take files without a row, %d folders of deleted "
                        "voices, %d half-deleted files (left by a killed server) from %s",
                        counts["temp_files"], counts["orphan_takes"], counts["orphan_voice_folders"], counts["deleting"],
                        self.files.root)
        return counts

    def _reconcile(self, counts: dict[str, int], cutoff: float) -> None:
        for path in self.tmp_dir.glob("*"):
            if path.name.startswith(("upload-", "export-")) and _older(path, cutoff):
                _remove_quietly(path)
                counts["temp_files"] += 1
        with self.db.session() as session:
            voice_ids = set(session.scalars(select(Voice.id)))
            take_paths = set()
            for path, quality in session.execute(select(Recording.path, Recording.quality)):
                take_paths.add(path)
                take_paths.add(((quality or {}).get("trim") or {}).get("original"))
        voices_root = self.files.root / "voices"
        for folder in sorted(voices_root.glob("*")) if voices_root.is_dir() else []:
            if folder.name.startswith(TRASH_PREFIX):
                _remove_quietly(folder)
                counts["deleting"] += 1
            elif folder.name.isdigit() and int(folder.name) not in voice_ids and _older(folder, cutoff):
                _remove_quietly(folder)
                counts["orphan_voice_folders"] += 1
            elif folder.name.isdigit():
                for path in sorted((folder / "takes").glob("*")):
                    relative = path.relative_to(self.files.root).as_posix()
                    if path.name.startswith(TRASH_PREFIX):
                        _remove_quietly(path)
                        counts["deleting"] += 1
                    elif relative not in take_paths and path.is_file() and _older(path, cutoff):
                        _remove_quietly(path)  # a take whose row was never written, or an atomic write's temp file
                        counts["orphan_takes"] += 1
        if self.voices_dir.is_dir():
            for folder in self.voices_dir.glob(f"{TRASH_PREFIX}*-studio-*"):
                _remove_quietly(folder)
                counts["deleting"] += 1


# --- helpers -----------------------------------------------------------------------------------


def default_data_dir(database: Database) -> Path:
    """``studio/`` beside a SQLite database file, a fresh temporary folder for an in-memory
    database (its takes could not outlive it anyway), ``./studio`` for any other database."""
    url = database.url
    if url.get_backend_name() != "sqlite":
        return Path("studio")
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return Path(tempfile.mkdtemp(prefix="moksori-studio-"))
    return Path(url.database).expanduser().resolve().parent / "studio"


def voice_folder(voice_id: int) -> str:
    return f"voices/{voice_id}"


def bundle_name(voice_id: int) -> str:
    return f"studio-{voice_id}"


def take_path(voice_id: int, prompt_id: int) -> str:
    """A fresh file name for a take; the random part keeps a trimmed or redone take from ever
    overwriting a file a row still points at."""
    return f"{voice_folder(voice_id)}/takes/{prompt_id}_{secrets.token_hex(6)}.wav"


def original_path(relative: str) -> str:
    """Where the untrimmed upload of an automatically trimmed take is kept."""
    return relative.removesuffix(".wav") + ".untrimmed.wav"


def _take_files(recording: Recording) -> list[str]:
    original = ((recording.quality or {}).get("trim") or {}).get("original")
    return [recording.path, *([original] if original and original != recording.path else [])]


def utterance_id(recording: Recording) -> str:
    return f"v{recording.voice_id}_p{recording.prompt_id:06d}_t{recording.take}"


def _take_script(session: Session, recording: Recording) -> tuple[str, str]:
    """The text the take reads and its language (what its judges check it against)."""
    prompt = session.get(Prompt, recording.prompt_id)
    return prompt.text, prompt.prompt_set.language


def _verdict(problems: list[Problem]) -> str:
    return ",".join(p.code for p in problems)[:200] if problems else "ok"


def _keep_only(session: Session, recording: Recording) -> None:
    """Make ``recording`` the one kept take of its prompt."""
    others = session.scalars(
        select(Recording).where(
            Recording.voice_id == recording.voice_id,
            Recording.prompt_id == recording.prompt_id,
            Recording.id != recording.id,
            Recording.kept.is_(True),
        )
    )
    for other in others:
        other.kept = False
    recording.kept = True


def _prompt_status(prompt: Prompt, takes: list[Recording]) -> PromptStatus:
    kept = next((take for take in reversed(takes) if take.kept), None)
    return PromptStatus(prompt, len(takes), kept, takes[-1] if takes else None)


def _same_name(name: str, owner_id: int | None) -> Any:
    owner = Voice.owner_id.is_(None) if owner_id is None else Voice.owner_id == owner_id
    return select(Voice.id).where(Voice.name == name, owner)


def _builtin_query(language: str) -> Any:
    return (
        select(PromptSet)
        .where(PromptSet.source == "builtin", PromptSet.language == language, PromptSet.owner_id.is_(None))
        .order_by(PromptSet.id)
        .limit(1)
    )


def _clean_name(value: str, what: str) -> str:
    name = unicodedata.normalize("NFC", value or "").strip()
    if not name:
        raise InvalidInputError(f"the {what} is empty")
    if len(name) > 100:
        raise InvalidInputError(f"the {what} is {len(name)} characters long; at most 100")
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in name):
        raise InvalidInputError(f"the {what} contains control characters or lone surrogates")
    return name


def _parse_prompt_upload(data: bytes, name: str, language: str = "ko") -> tuple[list[str], list[str]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InvalidInputError(f"{name}: not UTF-8 text at line {line} (byte {error.start}); save it as UTF-8") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PromptFileWarning)
        try:
            prompts = parse_prompts(text, name)
        except ValueError as error:
            raise InvalidInputError(str(error)) from None
    if len(prompts) > MAX_PROMPTS_PER_SET:
        raise TooLargeError(f"{name}: {len(prompts)} sentences; a prompt set holds at most {MAX_PROMPTS_PER_SET}")
    for prompt in prompts:
        if len(prompt.text) > MAX_PROMPT_CHARS:
            raise InvalidInputError(
                f"{prompt.where}: sentence of {len(prompt.text)} characters; at most {MAX_PROMPT_CHARS} (split it)"
            )
    notes = [str(item.message) for item in caught if issubclass(item.category, PromptFileWarning)]
    kept: list[str] = []
    for prompt in prompts:
        controls = sorted({f"U+{ord(c):04X}" for c in prompt.text if _unspeakable_control(c)})
        if controls:  # NUL and friends cannot be read aloud, and some databases refuse them
            notes.append(f"{prompt.where}: control characters ({', '.join(controls)}); line skipped")
            continue
        kept.append(prompt.text)
    if not kept:
        raise InvalidInputError(f"{name}: no usable sentences (every line holds control characters)")
    notes.extend(_unreadable_notes(prompts, language))
    return kept, notes


# Lines made only of these need no check by the text front end (the fast path for big files).
_PLAIN_KO = re.compile(r"[\uAC00-\uD7A3 .,?!]+")
_PLAIN_EN = re.compile(r"[A-Za-z' .,?!]+")
MAX_CHECKED_PROMPTS = 2000


def _unspeakable_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs") and char != "\t"


def _unreadable_notes(prompts: list[Any], language: str) -> list[str]:
    """Warnings for sentences with characters the language's text front end cannot read aloud
    (emoji, Chinese characters in a Korean set, ...): they can be recorded, but training drops them."""
    from moksori.text import TextFrontend, UnreadableTextError

    plain = _PLAIN_KO if language == "ko" else _PLAIN_EN
    frontend: Any = None
    notes: list[str] = []
    checked = 0
    for prompt in prompts:
        if plain.fullmatch(prompt.text) or any(_unspeakable_control(c) for c in prompt.text):
            continue
        if checked == MAX_CHECKED_PROMPTS:
            notes.append(f"only the first {MAX_CHECKED_PROMPTS} sentences with digits or symbols were checked for "
                         "characters the voice cannot read")
            break
        checked += 1
        frontend = frontend or TextFrontend(language)
        try:
            frontend.process(prompt.text)
        except UnreadableTextError as error:
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in error.characters[:8])
            notes.append(f"{prompt.where}: a {language} voice cannot read {shown}; training will skip this sentence")
        except Exception as error:  # noqa: BLE001 - any front-end failure is worth a warning, not a failed upload
            notes.append(f"{prompt.where}: the {language} text front end cannot read this sentence ({error})"[:300])
    return notes


def _metadata_text(text: str) -> str:
    return " ".join(text.replace("|", " ").split())


def _metadata(entries: list[tuple[str, str, Path]]) -> str:
    return "".join(f"{utt_id}|{text}|{text}\n" for utt_id, text, _ in entries)


def _move_aside(path: Path) -> Path | None:
    """Rename ``path`` to a ``.deleting-`` name beside it (None when it does not exist); raises
    the OSError of a folder that cannot be written."""
    if not path.exists():
        return None
    target = path.with_name(f"{TRASH_PREFIX}{secrets.token_hex(4)}-{path.name}")
    os.rename(path, target)
    return target


def _put_back(moved: list[tuple[Path, Path]]) -> None:
    for original, aside in reversed(moved):
        try:
            os.rename(aside, original)
        except OSError as error:
            log.error("could not put %s back to %s: %s", aside, original, error)


def _remove_quietly(path: Path) -> None:
    """Remove a file or folder; a failure is logged (the next start-up's reconcile retries)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("could not remove %s (the next start-up retries): %s", path, error)


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except OSError:
        return False


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", unicodedata.normalize("NFKD", name)).strip("-").lower()
    return slug[:40] or "voice"
