"""Preprocessing: a dataset on disk → a checked, trimmed, feature-cached training folder.

For every utterance: check the text (``empty_text``, ``unreadable_characters``), load
the audio (``missing``, ``unreadable``), measure it on the loaded clip (``silent``,
``clipped``, ``noisy``, ``too_quiet``), trim leading/trailing silence, check the trimmed
length (``too_long``, ``too_short``) and the speaking rate of the transcript over it
(``text_duration_mismatch``), normalise loudness, save the processed audio, and compute
the log-mel from that saved file with the one mel transform (so the cached mel is
exactly what ``mel_spectrogram(load_audio(wav))`` gives, which the vocoder also sees).

One bad clip never stops the run and is never dropped silently: each input item ends
up either in ``manifest.jsonl`` or in ``rejected.jsonl`` with a reason code and a
message. Unparseable transcript lines are rejected as ``malformed_line``, repeated ids
as ``duplicate_id``, and an unexpected error in one clip as ``error``.

The layout of the output folder is described in :mod:`moksori.data.manifest`. Mels are
stored as float32 by default (``mel_dtype="float16"`` halves the cache; the dataset
converts back to float32 when loading).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import multiprocessing
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from moksori import __version__
from moksori.audio import (
    AudioError,
    MelConfig,
    Problem,
    QualityThresholds,
    analyze_clip,
    check_clip,
    mel_spectrogram,
    normalize_loudness,
    pcm16_round_trip,
    save_wav,
    trim_silence,
)
from moksori.audio.io import AudioLimitError, AudioLimits, load_audio_bounded, resample
from moksori.data import manifest
from moksori.data.readers import Utterance, scan_dataset
from moksori.data.report import PreprocessReport, build_report, format_report
from moksori.text import TextFrontend, UnreadableTextError

__all__ = ["REASONS", "PreprocessConfig", "preprocess_dataset", "split_train_val"]

# Every reason code a rejected item can carry, in the order a clip is checked.
REASONS = (
    "malformed_line",
    "invalid_id",
    "duplicate_id",
    "empty_text",
    "unreadable_characters",
    "missing",
    "unreadable",
    "silent",
    "clipped",
    "too_long",
    "text_duration_mismatch",
    "too_short",
    "too_quiet",
    "noisy",
    "error",
)

# check_clip's codes → our reason codes; the first present in this order is the reason.
_QUALITY_REASONS = {
    "silent": "silent",
    "clipped": "clipped",
    "too_long": "too_long",
    "too_fast": "text_duration_mismatch",
    "too_slow": "text_duration_mismatch",
    "too_short": "too_short",
    "too_quiet": "too_quiet",
    "noisy": "noisy",
}


@dataclass
class PreprocessConfig:
    """Settings of a preprocessing run (saved to config.json).

    Duration limits (``quality.min_duration_s`` / ``max_duration_s``, 0.5–20 s, applied
    to the trimmed clip; a source file over 10 times ``max_duration_s`` is refused as
    ``too_long`` without being decoded) and the text–duration bounds (``quality.min_chars_per_second`` /
    ``max_chars_per_second``: letters and Hangul syllables of the normalised text per
    second of speech) live in ``quality`` with the other clip checks.
    ``allowed_problems`` lists check codes (e.g. "too_quiet", "noisy") to tolerate.
    """

    mel: MelConfig = field(default_factory=MelConfig)
    language: str = "ko"
    add_blank: bool = False
    use_pronunciation: bool = True
    trim_top_db: float = 40.0
    trim_margin_s: float = 0.05
    normalize_loudness: bool = True
    target_dbfs: float = -20.0
    peak_limit: float = 0.95
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    allowed_problems: tuple[str, ...] = ()
    val_fraction: float = 0.05
    min_val: int = 1
    max_val: int = 100
    seed: int = 1234
    mel_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.mel_dtype not in ("float32", "float16"):
            raise ValueError(f"mel_dtype must be 'float32' or 'float16', got {self.mel_dtype!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        self.allowed_problems = tuple(self.allowed_problems)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["mel"] = self.mel.to_dict()
        values["allowed_problems"] = list(self.allowed_problems)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PreprocessConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown PreprocessConfig field(s): {', '.join(unknown)}")
        values = dict(values)
        if "mel" in values:
            values["mel"] = MelConfig.from_dict(values["mel"])
        if "quality" in values:
            values["quality"] = QualityThresholds(**values["quality"])
        return cls(**values)


class _Rejection(Exception):
    """Raised inside the per-clip pipeline to reject the clip with a reason code."""

    def __init__(
        self, reason: str, message: str, problems: list[str] | None = None, duration_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.problems = problems or [reason]
        self.duration_s = duration_s  # of a clip refused before it was decoded


# --------------------------------------------------------------------------- public API


def preprocess_dataset(
    dataset: str | Path,
    out_dir: str | Path,
    config: PreprocessConfig | None = None,
    *,
    workers: int = 2,
    progress: bool = True,
    format: str = "auto",
) -> PreprocessReport:
    """Check, trim and feature-cache every clip of ``dataset`` into ``out_dir``; return the report.

    ``dataset`` is any folder or file :func:`moksori.data.readers.read_dataset` reads.
    ``workers`` processes share the clips (1 = in this process). Re-running into the
    same ``out_dir`` replaces its contents consistently: files of clips no longer kept
    are removed.
    """
    config = config or PreprocessConfig()
    out_dir = Path(out_dir)
    started = time.perf_counter()
    scan = scan_dataset(dataset, format)
    _check_out_dir(out_dir, scan.utterances)
    (out_dir / manifest.MEL_DIR).mkdir(parents=True, exist_ok=True)
    (out_dir / manifest.WAV_DIR).mkdir(parents=True, exist_ok=True)

    rejected = [_malformed_record(item) for item in scan.malformed]
    unique, duplicates = _split_duplicates(scan.utterances)
    rejected += duplicates
    kept, clip_rejections = _process_all(unique, out_dir, config, workers, progress)
    rejected += clip_rejections

    frontend = _make_frontend(config)
    speakers = sorted({record["speaker"] for record in kept})
    train, val = split_train_val(kept, config.val_fraction, config.min_val, config.max_val, config.seed)
    with _writing(out_dir):
        _write_outputs(out_dir, config, frontend, speakers, kept, train, val, rejected)
    _remove_stale_files(out_dir, {record["id"] for record in kept})

    report = build_report(
        kept=kept,
        rejected=rejected,
        n_train=len(train),
        n_val=len(val),
        frontend=frontend,
        dataset=str(dataset),
        dataset_format=scan.format,
        out_dir=str(out_dir),
        elapsed_s=time.perf_counter() - started,
    )
    manifest.write_json(out_dir / manifest.REPORT_FILE, report.to_dict())
    manifest.atomic_write_text(out_dir / manifest.REPORT_TEXT_FILE, format_report(report) + "\n")
    return report


def _check_out_dir(out_dir: Path, utterances: list[Utterance]) -> None:
    """Refuse an output folder whose wavs/ or mels/ we did not write: a re-run deletes stale files there."""
    ours = (out_dir / manifest.CONFIG_FILE).is_file()
    for name in (manifest.WAV_DIR, manifest.MEL_DIR):
        folder = out_dir / name
        if ours or not folder.is_dir():
            continue
        if any(folder.iterdir()):
            raise ValueError(
                f"{folder} already holds files and {out_dir} is not a moksori preprocess folder "
                "(no config.json); choose an empty or new output folder"
            )
    cache_folders = {(out_dir / name).resolve() for name in (manifest.WAV_DIR, manifest.MEL_DIR)}
    for utt in utterances:
        if Path(utt.audio_path).resolve().parent in cache_folders:
            raise ValueError(f"the output folder {out_dir} would overwrite the dataset's own audio ({utt.audio_path})")


def split_train_val(
    records: list[dict[str, Any]],
    val_fraction: float = 0.05,
    min_val: int = 1,
    max_val: int = 100,
    seed: int = 1234,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split records into (train, val), deterministically for a seed.

    A record goes to validation when its id ranks low in a seeded hash order, so the
    split does not depend on the input order and changes little when clips are added.

    The validation size is ``val_fraction`` of the records, clamped to
    [``min_val``, ``max_val``], but always leaves at least one training record. With
    several speakers the validation share is spread over speakers in proportion to
    their size (a speaker with one record keeps it for training). Both lists keep the
    input order; the result does not depend on that order.
    """
    if len(records) < 2:
        return list(records), []
    n_val = min(max(round(val_fraction * len(records)), min_val), max_val, len(records) - 1)
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for record in records:
        by_speaker[record["speaker"]].append(record["id"])
    quotas = _speaker_quotas({s: len(ids) for s, ids in by_speaker.items()}, n_val)
    val_ids: set[str] = set()
    for speaker, ids in by_speaker.items():
        ranked = sorted(ids, key=lambda utt_id: _split_rank(seed, utt_id))
        val_ids.update(ranked[: quotas[speaker]])
    train = [r for r in records if r["id"] not in val_ids]
    val = [r for r in records if r["id"] in val_ids]
    return train, val


def _split_rank(seed: int, utt_id: str) -> bytes:
    # A hash rank rather than a shuffle: adding clips to a dataset moves few others between splits.
    return hashlib.sha256(f"{seed}\0{utt_id}".encode()).digest()


def _speaker_quotas(sizes: dict[str, int], n_val: int) -> dict[str, int]:
    """Largest-remainder shares of n_val, each speaker keeping one record for training."""
    total = sum(sizes.values())
    capacity = {s: max(0, n - 1) for s, n in sizes.items()}
    n_val = min(n_val, sum(capacity.values()))
    exact = {s: n_val * n / total for s, n in sizes.items()}
    quotas = {s: min(int(exact[s]), capacity[s]) for s in sizes}
    by_remainder = sorted(sizes, key=lambda s: (-(exact[s] - int(exact[s])), s))
    while sum(quotas.values()) < n_val:
        for speaker in by_remainder:
            if sum(quotas.values()) == n_val:
                break
            if quotas[speaker] < capacity[speaker]:
                quotas[speaker] += 1
    return quotas


# --------------------------------------------------------------------------- input checks


def _malformed_record(item) -> dict[str, Any]:
    return {
        "id": f"{item.source.name}:{item.line_number}",
        "speaker": "",
        "audio": str(item.source),
        "reason": "malformed_line",
        "message": item.message,
        "problems": ["malformed_line"],
        "duration_s": None,
    }


def _split_duplicates(utterances: list[Utterance]) -> tuple[list[Utterance], list[dict[str, Any]]]:
    """Keep the first item of each id; reject repeats, and ids unusable as file names."""
    seen: dict[str, Utterance] = {}
    unique, rejected = [], []
    for utt in utterances:
        if not _usable_id(utt.id):
            message = f"id {utt.id!r} cannot be a file name (empty, starts with '.', or has a path separator)"
            rejected.append(_rejected_record(utt, _Rejection("invalid_id", message), None))
            continue
        first = seen.get(utt.id)
        if first is None:
            seen[utt.id] = utt
            unique.append(utt)
            continue
        message = f"id {utt.id!r} already used by an earlier item ({first.audio_path})"
        rejected.append(_rejected_record(utt, _Rejection("duplicate_id", message), None))
    return unique, rejected


def _usable_id(utt_id: str) -> bool:
    return bool(utt_id) and not utt_id.startswith(".") and "/" not in utt_id and "\\" not in utt_id


def _rejected_record(utt: Utterance, rejection: _Rejection, duration_s: float | None) -> dict[str, Any]:
    return {
        "id": utt.id,
        "speaker": utt.speaker,
        "audio": os.path.abspath(utt.audio_path),
        "text": utt.text,
        "reason": rejection.reason,
        "message": rejection.message,
        "problems": rejection.problems,
        "duration_s": duration_s,
    }


# --------------------------------------------------------------------------- workers

_worker: dict[str, Any] = {}


def _init_worker(config: PreprocessConfig, out_dir: Path) -> None:
    torch.set_num_threads(1)
    _worker["config"] = config
    _worker["out_dir"] = out_dir
    _worker["frontend"] = _make_frontend(config)


def _make_frontend(config: PreprocessConfig) -> TextFrontend:
    return TextFrontend(config.language, add_blank=config.add_blank, use_pronunciation=config.use_pronunciation)


def _process_all(
    utterances: list[Utterance], out_dir: Path, config: PreprocessConfig, workers: int, progress: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    kept, rejected = [], []
    bar = tqdm(total=len(utterances), desc="preprocess", unit="clip", disable=not progress)
    with bar:
        for kind, record in _map_clips(utterances, out_dir, config, workers):
            (kept if kind == "kept" else rejected).append(record)
            bar.update()
    return kept, rejected


def _map_clips(utterances: list[Utterance], out_dir: Path, config: PreprocessConfig, workers: int):
    """Yield (kind, record) for each utterance, in input order."""
    if workers <= 1 or len(utterances) < 2:
        previous_threads = torch.get_num_threads()
        _init_worker(config, out_dir)
        try:
            yield from map(_process_clip, utterances)
        finally:
            torch.set_num_threads(previous_threads)
        return
    chunk = max(1, min(16, len(utterances) // (workers * 8)))
    method = _start_method()
    if method == "fork":
        _warm_up(config)
    context = multiprocessing.get_context(method)
    yield from _map_in_pools(utterances, chunk, workers, context, (config, out_dir))


def _map_in_pools(utterances: list[Utterance], chunk: int, workers: int, context, initargs: tuple):
    """Yield (kind, record) for each utterance, in input order, from ``workers`` processes.

    A worker that dies (the kernel's out-of-memory killer, a crash in a codec) breaks the pool;
    multiprocessing.Pool waited for its clips for ever. Here the first unfinished chunk is then
    re-run one clip per process, so the clip that kills a worker is rejected by name, and a fresh
    pool goes on with the rest.
    """
    start = 0
    while start < len(utterances):
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=initargs)
        try:
            chunks = [utterances[i : i + chunk] for i in range(start, len(utterances), chunk)]
            futures = [pool.submit(_process_chunk, clips) for clips in chunks]
            for clips, future in zip(chunks, futures):
                try:
                    results = future.result()
                except BrokenProcessPool:
                    break
                yield from results
                start += len(clips)
            else:
                return
        finally:  # Ctrl-C: drop the clips not started instead of waiting for them all
            pool.shutdown(cancel_futures=True)
        for utt in utterances[start : start + chunk]:
            yield _process_clip_alone(utt, context, initargs)
        start += chunk


def _process_chunk(utterances: list[Utterance]) -> list[tuple[str, dict[str, Any]]]:
    return [_process_clip(utt) for utt in utterances]


def _process_clip_alone(utt: Utterance, context, initargs: tuple) -> tuple[str, dict[str, Any]]:
    with ProcessPoolExecutor(1, mp_context=context, initializer=_init_worker, initargs=initargs) as pool:
        try:
            return pool.submit(_process_clip, utt).result()
        except BrokenProcessPool:
            message = "the process reading this clip died (killed by the system, e.g. out of memory, or crashed)"
            return "rejected", _rejected_record(utt, _Rejection("error", message), None)


def _start_method() -> str:
    # fork starts in milliseconds; spawn would re-import torch in every worker.
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _warm_up(config: PreprocessConfig) -> None:
    """Do the slow first-call work (lazy imports, G2P dictionary, mel filters) once, before forking.

    Forked workers inherit it instead of each paying for it at the same time.
    """
    frontend = _make_frontend(config)
    try:
        frontend.process(_WARM_UP_TEXT.get(config.language, "a"), strict=False)
    except ValueError:
        pass
    mel_spectrogram(np.zeros(config.mel.n_fft * 2, dtype=np.float32), config.mel.sample_rate, config=config.mel)


_WARM_UP_TEXT = {"ko": "오늘 3시에 만나요.", "en": "See you at 3 pm."}


def _process_clip(utt: Utterance) -> tuple[str, dict[str, Any]]:
    duration_s = None
    try:
        text_result = _check_text(utt)
        wave, duration_s = _load(utt)
        return "kept", _process_audio(utt, wave, text_result)
    except _Rejection as rejection:
        return "rejected", _rejected_record(utt, rejection, duration_s if duration_s is not None else rejection.duration_s)
    except OutputWriteError:
        raise
    except Exception as error:  # one bad clip never stops the run
        rejection = _Rejection("error", f"{type(error).__name__}: {error}")
        return "rejected", _rejected_record(utt, rejection, duration_s)


def _check_text(utt: Utterance):
    if not utt.text.strip():
        raise _Rejection("empty_text", "transcript is empty")
    try:
        result = _worker["frontend"].process(utt.text, strict=True)
    except UnreadableTextError as error:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in error.characters)
        raise _Rejection("unreadable_characters", f"transcript has characters the front end cannot read: {shown}")
    except ValueError as error:
        raise _Rejection("empty_text", f"transcript has nothing to read aloud ({error})")
    if not result.ids:
        raise _Rejection("empty_text", "transcript has nothing to read aloud")
    return result


# A source file may hold this many times quality.max_duration_s (the limit is on the trimmed clip);
# a longer one (an hour-long session file: 2.5 GB decoded) is refused before it is decoded.
MAX_SOURCE_DURATION_FACTOR = 10


def _load(utt: Utterance) -> tuple[np.ndarray, float]:
    path = Path(utt.audio_path)
    if not path.is_file():
        raise _Rejection("missing", f"audio file not found: {path}")
    config: PreprocessConfig = _worker["config"]
    sample_rate = config.mel.sample_rate
    limits = AudioLimits(max_seconds=MAX_SOURCE_DURATION_FACTOR * config.quality.max_duration_s,
                         max_channels=16, what="source file")
    try:
        wave, file_rate = load_audio_bounded(path, limits)
        wave = resample(wave, file_rate, sample_rate)
    except AudioLimitError as error:
        if error.code == "take_too_long":
            raise _Rejection("too_long", f"{path}: {error}", duration_s=_header_duration_s(path))
        raise _Rejection("unreadable", f"{path}: {error}")
    except AudioError as error:
        raise _Rejection("unreadable", str(error))
    except Exception as error:
        raise _Rejection("unreadable", f"{path}: {type(error).__name__}: {error}")
    return wave, wave.size / sample_rate


def _header_duration_s(path: Path) -> float | None:
    try:
        return float(soundfile.info(str(path)).duration)
    except (soundfile.LibsndfileError, RuntimeError):
        return None


def _process_audio(utt: Utterance, wave: np.ndarray, text_result) -> dict[str, Any]:
    config: PreprocessConfig = _worker["config"]
    out_dir: Path = _worker["out_dir"]
    sample_rate = config.mel.sample_rate
    report = analyze_clip(wave, sample_rate, text_result.normalized)
    trimmed, (start, end) = trim_silence(
        wave, sample_rate, top_db=config.trim_top_db, margin_s=config.trim_margin_s
    )
    _check_quality(report, trimmed.size / sample_rate, config)
    if config.normalize_loudness:
        trimmed = normalize_loudness(
            trimmed, target_dbfs=config.target_dbfs, peak_limit=config.peak_limit, sample_rate=sample_rate
        )
    wav_path = out_dir / manifest.WAV_DIR / f"{utt.id}.wav"
    with _writing(wav_path):
        save_wav(wav_path, trimmed, sample_rate)
    # The mel comes from the saved 16-bit signal, so it matches what a vocoder trains on.
    saved = pcm16_round_trip(trimmed)
    mel = mel_spectrogram(saved, sample_rate, config=config.mel).numpy()
    mel_path = out_dir / manifest.MEL_DIR / f"{utt.id}.npy"
    with _writing(mel_path):
        manifest.save_mel(mel_path, mel.astype(config.mel_dtype))
    return _manifest_record(utt, text_result, saved, mel, report, (start, end), sample_rate)


class OutputWriteError(OSError):
    """The output folder cannot be written (a full disk): the run stops, for no clip is to blame."""


@contextlib.contextmanager
def _writing(path: Path):
    # A full disk failed every later clip as "error: LibsndfileError: System error." and the run
    # went on to report a dataset of rejected clips.
    try:
        yield
    except Exception as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error) or type(error).__name__
        errno = error.errno if isinstance(error, OSError) else None
        raise OutputWriteError(errno, f"cannot write the preprocessed output ({reason})", str(path)) from error


def _check_quality(report, trimmed_duration_s: float, config: PreprocessConfig) -> None:
    # Judge the clip as it will be used: trimmed, so edge silence is no longer a problem.
    margin = config.trim_margin_s
    as_used = dataclasses.replace(
        report,
        duration_s=trimmed_duration_s,
        leading_silence_s=min(report.leading_silence_s, margin),
        trailing_silence_s=min(report.trailing_silence_s, margin),
    )
    problems = [p for p in check_clip(as_used, config.quality) if p.code not in config.allowed_problems]
    problems = [p for p in problems if p.code in _QUALITY_REASONS]
    if problems:
        raise _quality_rejection(problems)


def _quality_rejection(problems: list[Problem]) -> _Rejection:
    order = list(_QUALITY_REASONS)
    problems = sorted(problems, key=lambda p: order.index(p.code))
    reason = _QUALITY_REASONS[problems[0].code]
    message = "; ".join(p.message for p in problems)
    return _Rejection(reason, message, [_QUALITY_REASONS[p.code] for p in problems])


def _manifest_record(utt, text_result, wave, mel, report, trim_range, sample_rate) -> dict[str, Any]:
    return {
        "id": utt.id,
        "speaker": utt.speaker,
        "text": utt.text,
        "normalized": text_result.normalized,
        "pronounced": text_result.pronounced,
        "ids": list(text_result.ids),
        "n_frames": int(mel.shape[-1]),
        "n_samples": int(wave.size),
        "duration_s": round(wave.size / sample_rate, 4),
        "audio": f"{manifest.WAV_DIR}/{utt.id}.wav",
        "mel": f"{manifest.MEL_DIR}/{utt.id}.npy",
        "source_audio": os.path.abspath(utt.audio_path),
        "quality": {
            "source_duration_s": round(report.duration_s, 4),
            "trim_start_s": round(trim_range[0] / sample_rate, 4),
            "trim_end_s": round(trim_range[1] / sample_rate, 4),
            "peak": round(report.peak, 4),
            "rms_dbfs": round(report.rms_dbfs, 2),
            "snr_db": round(report.snr_db, 2),
            "speech_duration_s": round(report.speech_duration_s, 4),
            "chars_per_second": None if report.chars_per_second is None else round(report.chars_per_second, 2),
        },
    }


# --------------------------------------------------------------------------- outputs


def _write_outputs(out_dir, config, frontend, speakers, kept, train, val, rejected) -> None:
    manifest.write_json(
        out_dir / manifest.CONFIG_FILE,
        {
            "format_version": 1,
            "moksori_version": __version__,
            "preprocess": config.to_dict(),
            "mel": config.mel.to_dict(),
            "text": frontend.settings(),
            "symbols_version": frontend.symbols.version,
            "speakers": speakers,
            "mel_dtype": config.mel_dtype,
        },
    )
    manifest.write_jsonl(out_dir / manifest.MANIFEST_FILE, kept)
    manifest.write_jsonl(out_dir / manifest.SPLIT_FILES["train"], train)
    manifest.write_jsonl(out_dir / manifest.SPLIT_FILES["val"], val)
    manifest.write_jsonl(out_dir / manifest.REJECTED_FILE, rejected)


def _remove_stale_files(out_dir: Path, kept_ids: set[str]) -> None:
    """Delete cache files of clips not kept this run, and temp files of interrupted writes."""
    for folder, suffix in ((manifest.MEL_DIR, ".npy"), (manifest.WAV_DIR, ".wav")):
        for path in (out_dir / folder).iterdir():
            stale = path.name.endswith(suffix) and path.name[: -len(suffix)] not in kept_ids
            interrupted = path.name.startswith(".") and path.name.endswith(".tmp")
            if path.is_file() and (stale or interrupted):
                os.remove(path)
