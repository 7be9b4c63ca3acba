"""Speech recognition for the character error rate: a local faster-whisper model, if the user has one.

Nothing is ever downloaded: the model must be a folder on disk (a CTranslate2 conversion
of Whisper, as faster-whisper uses: ``model.bin``, ``config.json``, ``tokenizer.json``,
``vocabulary.*``), and ``faster_whisper`` must be installed. Without either, CER is not
computed and the reason is reported.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from moksori.audio import resample

__all__ = ["WHISPER_SAMPLE_RATE", "Transcriber", "asr_unavailable_reason", "load_asr", "try_load_asr"]

log = logging.getLogger(__name__)

# faster-whisper takes raw arrays only at Whisper's own rate.
WHISPER_SAMPLE_RATE = 16000
MODEL_FILE = "model.bin"
# Whisper decodes at most 448 tokens per 30-s window; fast Korean speech is under ~10 tokens a second.
MAX_TOKENS = 440
TOKENS_PER_SECOND = 15


class Transcriber:
    """Turns a waveform into text with a loaded faster-whisper model (greedy decoding, fixed language)."""

    def __init__(self, model: Any, model_dir: Path) -> None:
        self.model = model
        self.model_dir = model_dir

    def transcribe(self, wave: np.ndarray, sample_rate: int, language: str) -> str:
        """The text spoken in ``wave`` (float32 mono at ``sample_rate``), in ``language`` ("ko", "en")."""
        audio = resample(np.asarray(wave, dtype=np.float32), sample_rate, WHISPER_SAMPLE_RATE)
        segments, _info = self.model.transcribe(
            audio,
            language=language,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            # Babble (an untrained voice) can send Whisper into a loop of repeats; no speech needs more.
            max_new_tokens=min(MAX_TOKENS, 16 + int(TOKENS_PER_SECOND * audio.size / WHISPER_SAMPLE_RATE)),
        )
        return " ".join(segment.text.strip() for segment in segments).strip()


def asr_unavailable_reason(model_dir: str | Path | None) -> str | None:
    """Why ASR cannot be used with ``model_dir`` (a sentence), or None when it can."""
    if model_dir is None:
        return "no ASR model given (--asr-model DIR, a local faster-whisper model folder)"
    folder = Path(model_dir)
    if not folder.is_dir():
        return f"ASR model folder {folder} not found"
    if not (folder / MODEL_FILE).is_file():
        return f"{folder} is not a faster-whisper model folder (it has no {MODEL_FILE})"
    try:
        import faster_whisper  # noqa: F401
    except ImportError as error:
        return f"the faster_whisper package cannot be imported ({error}; pip install faster-whisper)"
    return None


def load_asr(model_dir: str | Path | None, *, device: str = "cpu") -> Transcriber | None:
    """A Transcriber over the local faster-whisper model in ``model_dir``, or None (reason logged as a warning)."""
    transcriber, reason = try_load_asr(model_dir, device=device)
    if reason is not None:
        log.warning("CER not computed: %s", reason)
    return transcriber


def try_load_asr(model_dir: str | Path | None, *, device: str = "cpu") -> tuple[Transcriber | None, str | None]:
    """(Transcriber, None), or (None, why not): :func:`asr_unavailable_reason` or the loading error."""
    reason = asr_unavailable_reason(model_dir)
    if reason is not None:
        return None, reason
    from faster_whisper import WhisperModel

    folder = Path(model_dir)  # type: ignore[arg-type]  # not None: checked above
    try:
        # local_files_only: a folder path is loaded as it is; never fall back to the model hub.
        model = WhisperModel(str(folder), device=device, compute_type="int8", local_files_only=True)
    except Exception as error:  # noqa: BLE001 - CTranslate2 raises RuntimeError, ValueError, OSError … for a bad folder
        return None, f"cannot load the ASR model in {folder} ({error})"
    return Transcriber(model, folder), None
