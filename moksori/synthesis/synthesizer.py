"""Text → waveform for a loaded voice: sentences, speed, noise, speakers, silences, streaming.

text → paragraphs → sentences → symbol ids (strict) → acoustic model (length_scale = 1/speed)
→ vocoder → float32 waveform. The models are reached only through the acoustic and vocoder
interfaces (:mod:`moksori.models.interfaces`), in PyTorch or in ONNX Runtime.
Every sentence draws its noise from its own generator (seed, sentence index), so ``stream`` and
``synthesize`` give the same audio for the same seed, however sentences are batched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from moksori.audio import save_wav, wav_bytes
from moksori.errors import UserError
from moksori.lazy import LazyModule
from moksori.models.controls import Controls, NoiseSource, streams_natively
from moksori.synthesis.onnx_voice import OnnxVoice, load_onnx_voice, runs_without_torch
from moksori.synthesis.voice_files import VoiceError
from moksori.synthesis.inference import sentence_noise
from moksori.synthesis.onnx_runtime import (
    OnnxAcoustic,
    OnnxVocoder,
    onnxruntime_available,
)
from moksori.synthesis import precision as _precision
from moksori.text import UnreadableTextError, split_paragraphs, split_sentences

if TYPE_CHECKING:
    from moksori.synthesis.bundle import Voice

# torch loads on first use: a voice on ONNX Runtime alone never touches it (see onnx_voice).
torch = LazyModule("torch")

log = logging.getLogger(__name__)

MIN_SPEED, MAX_SPEED = 0.25, 4.0
SENTENCE_SILENCE_S, PARAGRAPH_SILENCE_S = 0.2, 0.6  # after a sentence, after a paragraph
# A sentence's last samples ramp down to the silence after it: the vocoder's output stops where it
# is (steps of 0.025-0.033 were measured on the shipped voice), and a step into silence clicks.
FADE_OUT_S = 0.005
# stream() sends the first sentence's audio as a head of HEAD_FRAMES (~0.19 s) and then the rest,
# so that the first audio leaves after a head's vocoding instead of a whole sentence's (and, for a
# model whose AcousticModel.stream makes pieces, after the head's mel: Glow-TTS decodes a head
# first, Tacotron2 yields as its decoder runs). Each span is vocoded with the vocoder's
# context_frames of mel on either side and trimmed, so the spans join exactly; a vocoder without
# one (context_frames None) gets whole sentences. 16 rather than 32: the shipped voice's first audio
# fell by ~0.01 s more on 1 thread (benchmarks/first_audio.py), and 0.19 s of audio still covers
# the rest of a sentence's synthesis at its RTF.
HEAD_FRAMES = 16
# A sentence longer than this many mel frames (~6 s at 22,050 Hz / 256) is vocoded in spans of
# this length, each with the vocoder's context_frames either side, so the vocoder's activations
# (which grow with the length: HiFi-GAN V1 holds ~1 GB for 20 s) stay bounded; the spans join
# exactly. A vocoder without context_frames vocodes whole sentences.
VOCODE_CHUNK_FRAMES = 512

# glibc serves each large tensor (over its mmap threshold) with a fresh mmap and unmaps it when
# freed, so every vocoder call pays page faults for the same buffers again: measured here, HiFi-GAN
# V1 on 20 s of audio ran at RTF 0.53 by default and 0.30 with mmap off and a high trim threshold.
# So large blocks stay on the heap and are reused; release_memory() (malloc_trim) hands free heap
# back when a server goes idle. Set ALLOCATOR_ENV in a process's environment (glibc reads it at
# start-up) or call configure_allocator() early.
ALLOCATOR_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") else None


def configure_allocator() -> bool:
    """Apply :data:`ALLOCATOR_ENV` at run time through glibc ``mallopt``; False where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    settings = {
        _M_ARENA_MAX: int(ALLOCATOR_ENV["MALLOC_ARENA_MAX"]),
        _M_MMAP_MAX: int(ALLOCATOR_ENV["MALLOC_MMAP_MAX_"]),
        _M_TRIM_THRESHOLD: int(ALLOCATOR_ENV["MALLOC_TRIM_THRESHOLD_"]),
    }
    return all(libc.mallopt(option, value) == 1 for option, value in settings.items())


def release_memory() -> bool:
    """Return free heap memory to the system (glibc ``malloc_trim``); False where unavailable."""
    libc = _libc()
    return bool(libc is not None and hasattr(libc, "malloc_trim") and libc.malloc_trim(0))


def _as_float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


@dataclass(frozen=True)
class _Sentence:
    index: int  # position in the request; selects the sentence's noise
    text: str
    ids: list[int]
    silence_after: int  # samples of silence that follow it


@dataclass(frozen=True)
class _Options:
    length_scale: float
    noise_scale: float
    speaker_id: int | None
    seed: int | None
    sigma: float | None = None
    denoise: float | None = None
    style: Mapping[str, Any] | None = None  # the acoustic model's style inputs (Flowtron)

    @property
    def controls(self) -> Controls:
        return Controls(self.length_scale, self.noise_scale, self.speaker_id, sigma=self.sigma, denoise=self.denoise,
                        seed=self.seed, style=dict(self.style or {}))


SILENT_REFERENCE_PEAK = 1e-3  # -60 dBFS: below it a style reference holds no speech


class SynthesisStopped(Exception):
    """``synthesize(stop=...)`` was told to stop before the text was done."""


class UnsupportedControl(ValueError):
    """A control this voice's models do not read (``field``: the request's name for it); the audio
    would come back unchanged, as if it had worked."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BrokenVoiceOutput(UserError, RuntimeError):
    """A voice produced NaN or infinite values: its weights are broken (typically a training run
    that diverged), so no audio is returned rather than noise or silence."""


def _finite(values: np.ndarray, stage: str, voice: str) -> np.ndarray:
    """``values`` unchanged when every value is finite, else :class:`BrokenVoiceOutput`."""
    if not np.isfinite(values).all():
        bad = int(values.size - np.isfinite(values).sum())
        raise BrokenVoiceOutput(
            f"voice {voice!r} produced {bad} non-finite {stage} values (NaN or infinity): its weights are broken, "
            "probably from a training run that diverged; train it again or use an earlier checkpoint")
    return values


def _check_stop(stop: Callable[[], bool] | None) -> None:
    if stop is not None and stop():
        raise SynthesisStopped("synthesis stopped before the text was done")


def _noise_source(seed: int | None, sentences: list[_Sentence], attempt: int = 0) -> NoiseSource:
    """Row ``i`` of a batch draws the noise of ``sentences[i]`` (seeded by its index in the request;
    ``attempt`` > 0: other noise, for a retry)."""

    def noise(row: int, frames: int, channels: int) -> np.ndarray:
        return sentence_noise(seed, sentences[row].index, frames, channels, attempt)

    return noise


@dataclass(frozen=True)
class AlignmentFailure:
    """A sentence whose attention alignment failed even after a retry with other noise."""

    index: int  # the sentence's position in the request
    text: str
    reasons: str  # the detector's summary, e.g. "not monotonic, hit max_decoder_steps"

    def __str__(self) -> str:
        hint = " (the decoder reached its step limit without stopping: the audio is cut off there)" \
            if "max_decoder_steps" in self.reasons else ""
        return f"sentence {self.index + 1} ({self.text[:40]!r}): {self.reasons}{hint}"


@dataclass(frozen=True)
class SynthesisResult:
    """A waveform and the sentences whose alignment failed (empty when all read correctly or the
    model has no attention to check)."""

    wave: np.ndarray
    alignment_failures: list[AlignmentFailure]
    # Sentences whose alignment was checked (0: the model has no attention to check).
    sentences_checked: int = 0

    @property
    def alignment_ok(self) -> bool:
        return not self.alignment_failures

    def alignment_summary(self) -> str:
        """``failed; <reasons>`` (the server's X-Moksori-Alignment header), or ``ok``."""
        if self.alignment_ok:
            return "ok"
        return "failed; " + "; ".join(str(failure) for failure in self.alignment_failures)


class SynthesisStream:
    """What :meth:`Synthesizer.stream` returns: an iterator of float32 audio chunks, and the
    sentences whose alignment failed, filled in as sentences finish (complete once the iteration
    has ended; a stream's first sentence is not retried, see :meth:`Synthesizer.stream`)."""

    def __init__(self, chunks: Callable[[list[AlignmentFailure]], Iterator[np.ndarray]]) -> None:
        self.alignment_failures: list[AlignmentFailure] = []
        self._chunks = chunks(self.alignment_failures)

    def __iter__(self) -> "SynthesisStream":
        return self

    def __next__(self) -> np.ndarray:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()

    @property
    def alignment_ok(self) -> bool:
        return not self.alignment_failures

    def alignment_summary(self) -> str:
        """As :meth:`SynthesisResult.alignment_summary`, for the sentences finished so far."""
        return SynthesisResult(np.zeros(0, np.float32), list(self.alignment_failures)).alignment_summary()


# An attention model whose alignment failed gets one more try with other noise (its prenet
# dropout or sampling then differs), which fixes most one-off failures.
ALIGNMENT_RETRIES = 1


def _load_voice(path: str | Path, use_onnx: bool | None, precision: str) -> Voice | OnnxVoice:
    """The voice folder for synthesis: without torch when it runs on ONNX Runtime alone and ONNX
    is not refused (``use_onnx`` False), else with its PyTorch models. ``"default"`` is the
    shipped voice, as on the command line."""
    from moksori.voices import resolve_voice

    path = resolve_voice(path)
    if use_onnx is not False and runs_without_torch(path, precision):
        return load_onnx_voice(path)
    from moksori.synthesis.bundle import load_voice

    return load_voice(path)


class Synthesizer:
    """Synthesises speech with one voice.

    ``use_onnx`` None picks ONNX Runtime when the voice has ONNX files and onnxruntime imports.
    ``num_threads`` sets ONNX Runtime's intra-op threads and PyTorch's (process-wide) thread count.
    ``batch_size`` sentences go through the PyTorch acoustic model together in ``synthesize``.
    ``precision`` (``fp32``, ``bf16``, ``int8``, or ``auto``: the one the voice's check recommends)
    runs the modules each family declares safe in reduced precision, on the PyTorch path (see
    :mod:`moksori.synthesis.precision`); ``precision_warning`` says when the voice was not checked
    for it (the warning is also logged). ``precision_fallback``: a precision that applies to no
    module of the voice runs fp32 (logged) instead of raising PrecisionError (a server-wide setting).
    A voice folder that can run on ONNX Runtime alone (:mod:`moksori.synthesis.onnx_voice`) is loaded
    without torch and without its PyTorch weights unless ``use_onnx`` is False (``torch_free``).
    """

    def __init__(
        self,
        voice: Voice | str | Path,
        *,
        use_onnx: bool | None = None,
        num_threads: int | None = None,
        batch_size: int = 8,
        precision: str = _precision.FP32,
        precision_fallback: bool = False,
    ) -> None:
        self.voice = _load_voice(voice, use_onnx, precision) if isinstance(voice, (str, Path)) else voice
        self.precision = _precision.check_precision(precision)
        if self.precision == _precision.AUTO:
            self.precision = _precision.recommended(self.voice.config)
        self._precision_fallback = precision_fallback
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.batch_size = batch_size
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f"num_threads must be at least 1, not {num_threads}")
            if not self.torch_free:
                torch.set_num_threads(num_threads)
        self.precision_modules: list[str] = []  # e.g. ["acoustic.model.decoder", "vocoder.model"]
        self._acoustic, self._vocoder = self._with_precision(self.voice.acoustic_model, self.voice.vocoder_model)
        if self.precision != _precision.FP32:
            if use_onnx:
                raise _precision.PrecisionError(f"precision {self.precision} runs on the PyTorch models; "
                                                "ONNX Runtime runs fp32 (leave out use_onnx or --onnx)")
            use_onnx = False
        self.precision_warning = _precision.unchecked_warning(self.voice.config, self.precision)
        if self.precision_warning:
            log.warning("%s", self.precision_warning)
        self._onnx_acoustic, self._onnx_vocoder = self._onnx_sessions(use_onnx, num_threads)
        self._context_frames = self._vocoder.context_frames

    @property
    def sample_rate(self) -> int:
        return self.voice.sample_rate

    @property
    def torch_free(self) -> bool:
        """Whether this voice runs on ONNX Runtime alone (torch not loaded for it, no PyTorch weights)."""
        return isinstance(self.voice, OnnxVoice)

    @property
    def uses_onnx(self) -> bool:
        return self._onnx_acoustic is not None

    @property
    def acoustic_knobs(self) -> tuple[str, ...]:
        """The controls this voice's acoustic model reads (``length_scale``, ``noise_scale``,
        ``speaker_id``, ``style``)."""
        return tuple(self._acoustic.knobs)

    @property
    def onnx_style_references(self) -> bool:
        """False when this synthesizer runs an ONNX export that cannot encode style references
        (Flowtron with ``use_cumm_attention``): load the voice with ``use_onnx=False`` for them."""
        onnx = self._onnx_acoustic
        return onnx is None or onnx.adapter.onnx_style_references(onnx.metadata)

    def _with_precision(self, acoustic: Any, vocoder: Any) -> tuple[Any, Any]:
        """The adapters with their precision-safe modules in ``self.precision``; PrecisionError
        when the precision applies to neither (the families declare no such module)."""
        if self.precision == _precision.FP32:
            return acoustic, vocoder
        applies = {role: _precision.supports(model, self.precision)
                   for role, model in (("acoustic", acoustic), ("vocoder", vocoder))}
        if not any(applies.values()) and self._precision_fallback:
            log.warning("voice %r: precision %s applies to none of its modules; it runs in fp32", self.voice.name,
                        self.precision)
            self.precision = _precision.FP32
            return acoustic, vocoder
        if not any(applies.values()):
            raise _precision.PrecisionError(
                f"precision {self.precision} applies to no module of voice {self.voice.name!r} (its model families "
                "declare no module safe for it" + (", or have no Linear layers to quantise" if self.precision == "int8" else "")
                + "); use fp32")
        self.precision_modules = [f"{role}.{path}" for role, model in (("acoustic", acoustic), ("vocoder", vocoder))
                                  if applies[role] for path in _precision.precision_modules(model)]
        return (_precision.with_precision(acoustic, self.precision) if applies["acoustic"] else acoustic,
                _precision.with_precision(vocoder, self.precision) if applies["vocoder"] else vocoder)

    def _onnx_sessions(
        self, use_onnx: bool | None, num_threads: int | None
    ) -> tuple[OnnxAcoustic | None, OnnxVocoder | None]:
        acoustic_file = self.voice.onnx_path("acoustic")
        vocoder_file = self.voice.onnx_path("vocoder")
        vocoder_done = self.voice.vocoder is None or vocoder_file is not None or not getattr(self._vocoder, "has_onnx_graph", True)
        complete = acoustic_file is not None and vocoder_done
        if use_onnx is None:
            use_onnx = complete and onnxruntime_available()
        if not use_onnx:
            return None, None
        if not complete:
            raise VoiceError(f"{self.voice.path}: use_onnx=True but the voice has no ONNX files; run export_onnx first")
        if not onnxruntime_available():
            raise RuntimeError("use_onnx=True needs the onnxruntime package")
        vocoder = OnnxVocoder(vocoder_file, num_threads, self._vocoder) if vocoder_file is not None else None
        return OnnxAcoustic(acoustic_file, type(self._acoustic), self.voice.mel_config.n_mels, num_threads), vocoder

    # --- public API --------------------------------------------------------------------------

    def synthesize(
        self,
        text: str,
        *,
        speed: float = 1.0,
        noise_scale: float = 0.667,
        speaker: str | int | None = None,
        sentence_silence_s: float = SENTENCE_SILENCE_S,
        paragraph_silence_s: float = PARAGRAPH_SILENCE_S,
        seed: int | None = None,
        sigma: float | None = None,
        denoise: float | None = None,
        style: Mapping[str, Any] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """The whole text as one float32 waveform at ``sample_rate``. ``sigma`` and ``denoise``
        reach the vocoder (a flow vocoder's sampling temperature, a denoiser's strength; None: the
        vocoder's default; vocoders without them ignore them). Failed alignments are logged; use
        :meth:`synthesize_report` to get them."""
        return self.synthesize_report(
            text, speed=speed, noise_scale=noise_scale, speaker=speaker, sentence_silence_s=sentence_silence_s,
            paragraph_silence_s=paragraph_silence_s, seed=seed, sigma=sigma, denoise=denoise, style=style, stop=stop,
        ).wave

    def synthesize_report(
        self,
        text: str,
        *,
        speed: float = 1.0,
        noise_scale: float = 0.667,
        speaker: str | int | None = None,
        sentence_silence_s: float = SENTENCE_SILENCE_S,
        paragraph_silence_s: float = PARAGRAPH_SILENCE_S,
        seed: int | None = None,
        sigma: float | None = None,
        denoise: float | None = None,
        style: Mapping[str, Any] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> SynthesisResult:
        """:meth:`synthesize`, also naming the sentences whose attention alignment failed (an
        attention model's sentence is retried once with other noise before it counts as failed).
        ``stop`` is asked before each batch and each sentence's vocoding; once it answers True,
        :class:`SynthesisStopped` is raised (the server's client went away)."""
        options = self._options(speed, noise_scale, speaker, seed, sigma, denoise, style)
        sentences = self._sentences(text, sentence_silence_s, paragraph_silence_s)
        step = 1 if self.uses_onnx else self.batch_size
        chunks, failures, checked = [], [], 0
        for start in range(0, len(sentences), step):
            batch = sentences[start : start + step]
            _check_stop(stop)
            mels, batch_failures, batch_checked = self._checked_mels(batch, options)
            failures += batch_failures
            checked += batch_checked
            for sentence, mel in zip(batch, mels):
                _check_stop(stop)
                chunks.append(self._with_silence(self._vocode(mel, options), sentence.silence_after))
        return SynthesisResult(np.concatenate(chunks), failures, checked)

    def stream(
        self,
        text: str,
        *,
        speed: float = 1.0,
        noise_scale: float = 0.667,
        speaker: str | int | None = None,
        sentence_silence_s: float = SENTENCE_SILENCE_S,
        paragraph_silence_s: float = PARAGRAPH_SILENCE_S,
        seed: int | None = None,
        sigma: float | None = None,
        denoise: float | None = None,
        style: Mapping[str, Any] | None = None,
    ) -> SynthesisStream:
        """Float32 chunks as soon as each is ready: one per sentence (with the silence that follows
        it), except the first sentence, which comes as a short head (HEAD_FRAMES of audio) and then
        its rest, so that audio starts early. A model that makes its mel in pieces
        (``AcousticModel.stream``: Tacotron2's decoder loop) streams the first sentence as its
        decoder runs, in spans vocoded with the vocoder's context, so the first audio leaves after
        the first decoder chunk; the chunks join into :meth:`synthesize`'s audio either way.

        Failed alignments: the first sentence's audio leaves before its alignment can be judged,
        so a streamed first sentence is not retried (its failure is reported); every later
        sentence is made whole while earlier audio plays, retried once like :meth:`synthesize`'s,
        then reported. The failures are in the returned stream's ``alignment_failures`` (complete
        once it is exhausted) and logged. The text is checked completely before the first chunk."""
        options = self._options(speed, noise_scale, speaker, seed, sigma, denoise, style)
        sentences = self._sentences(text, sentence_silence_s, paragraph_silence_s)
        return SynthesisStream(lambda failures: self._stream(sentences, options, failures))

    def sentence_durations(self, text: str, *, seed: int | None = 0) -> list[np.ndarray]:
        """Mel frames per input symbol of each sentence at speed 1 (from the acoustic model's
        alignment; where it gives none, the sentence's frame count alone). What a precision check
        compares: reduced precision must not move a single frame."""
        options = self._options(1.0, 0.667, None, seed)
        durations = []
        for sentence in self._sentences(text, 0.0, 0.0):
            if self._onnx_acoustic is not None:
                mel, _ = self._onnx_acoustic.infer_with_report(sentence.ids, options.controls,
                                                               _noise_source(seed, [sentence]))
                durations.append(np.asarray([mel.shape[1]]))
                continue
            ids = torch.tensor([sentence.ids], dtype=torch.long)
            with torch.inference_mode():
                out = self._acoustic.infer(ids, torch.tensor([len(sentence.ids)]), options.controls,
                                           _noise_source(seed, [sentence]))
            if out.alignment is None:
                durations.append(out.lengths.numpy().astype(np.int64))
            else:
                durations.append(out.alignment[0].sum(-1).round().numpy().astype(np.int64))
        return durations

    def to_wav_bytes(self, text: str, **options: Any) -> bytes:
        """A 16-bit PCM WAV file of the text, as bytes."""
        return wav_bytes(self.synthesize(text, **options), self.sample_rate)

    def to_wav_file(self, text: str, path: str | Path, **options: Any) -> Path:
        """Write a 16-bit PCM WAV file of the text (atomically); returns its path."""
        path = Path(path)
        save_wav(path, self.synthesize(text, **options), self.sample_rate)
        return path

    def style_reference(self, wave: np.ndarray, sample_rate: int) -> torch.Tensor:
        """The mel ``[n_mels, frames]`` of a style reference recording (mono float audio at
        ``sample_rate``, resampled to the voice's rate), as ``style={"ref_mel": ...}`` takes it."""
        from moksori.audio import mel_spectrogram, resample

        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        config = self.voice.mel_config
        if sample_rate != config.sample_rate:
            wave = resample(wave, sample_rate, config.sample_rate)
        if wave.size < 4 * config.hop_length:
            raise ValueError(f"the style reference is too short ({wave.size / config.sample_rate:.3f} s)")
        peak = float(np.abs(wave).max())
        if not peak > SILENT_REFERENCE_PEAK:  # its z would be the prior's silence, not a style
            raise ValueError(f"the style reference is silent (peak {peak:.1e}): it has no style to follow")
        return mel_spectrogram(wave, config.sample_rate, config=config)

    def style_controls(
        self,
        *,
        ref_wave: np.ndarray | None = None,
        ref_sample_rate: int | None = None,
        ref_text: str | None = None,
        strength: float | None = None,
        component: int | None = None,
        segments: int | None = None,
    ) -> dict[str, Any]:
        """The ``style`` of a request from its user-facing fields (a reference recording and its
        optional transcript, ``style_strength`` in [0, 1], ``style_component``,
        ``style_segments``); ValueError naming the field otherwise. Empty: no style."""
        given = (ref_wave, ref_text, strength, component, segments)
        if all(value is None for value in given):
            return {}
        if "style" not in self._acoustic.knobs:
            family = self.voice.config.get("acoustic", {}).get("model_name", "this family")
            raise ValueError(f"voice {self.voice.name!r} has no style controls (its acoustic model is {family}); "
                             "style needs a Flowtron voice")
        style: dict[str, Any] = {}
        if ref_wave is not None:
            style["ref_mel"] = self.style_reference(ref_wave, int(ref_sample_rate or self.sample_rate))
            if ref_text:
                style["ref_ids"] = self.voice.frontend.to_ids(ref_text, strict=True)
        elif ref_text or strength is not None or segments is not None:
            raise ValueError("style_strength, style_segments and style_ref_text need a style reference (style_ref)")
        if strength is not None:
            if not (math.isfinite(_as_float(strength, "style_strength")) and 0.0 <= float(strength) <= 1.0):
                raise ValueError(f"style_strength must be in [0, 1], got {strength!r}")
            style["strength"] = float(strength)
        if segments is not None:
            if isinstance(segments, bool) or int(segments) != segments or not 1 <= int(segments) <= 64:
                raise ValueError(f"style_segments must be an integer in 1..64, got {segments!r}")
            style["segments"] = int(segments)
        if component is not None:
            if isinstance(component, bool) or int(component) != component or int(component) < 0:
                raise ValueError(f"style_component must be an integer >= 0, got {component!r}")
            n_components = int(getattr(getattr(self._acoustic.model, "config", None), "n_components", 0) or 0)
            if n_components < 2:
                raise ValueError(f"style_component: voice {self.voice.name!r} has no mixture components")
            if int(component) >= n_components:
                raise ValueError(f"style_component must be in 0..{n_components - 1}, got {component!r}")
            style["component"] = int(component)
        return style

    def speaker_id(self, speaker: str | int | None) -> int | None:
        """The model's speaker index for a name or index (None: the first speaker of a
        multi-speaker voice, nothing for a single-speaker one)."""
        n_speakers = self._acoustic.n_speakers
        if n_speakers <= 1:
            if speaker is None or speaker == 0 or (self.voice.speakers and speaker == self.voice.speakers[0]):
                return None
            raise ValueError(f"voice {self.voice.name!r} has a single speaker; got speaker {speaker!r}")
        if speaker is None:
            return 0
        if isinstance(speaker, str):
            if speaker not in self.voice.speakers:
                raise ValueError(f"voice {self.voice.name!r} has no speaker {speaker!r}; speakers: {self.voice.speakers}")
            return self.voice.speakers.index(speaker)
        if not 0 <= int(speaker) < n_speakers:
            raise ValueError(f"speaker id {speaker} is out of range 0..{n_speakers - 1}")
        return int(speaker)

    # --- steps ---------------------------------------------------------------------------------

    def _stream(
        self, sentences: list[_Sentence], options: _Options, failures: list[AlignmentFailure]
    ) -> Iterator[np.ndarray]:
        for sentence in sentences:
            head = sentence.index == 0
            pieces = self._sentence_mels(sentence, options, failures, head)
            if self._context_frames is None or (self._onnx_vocoder is None and streams_natively(self._vocoder)):
                mel = np.concatenate([piece for piece, _ in pieces], axis=1)
                if self._onnx_vocoder is None and streams_natively(self._vocoder):
                    yield from self._vocode_stream(mel, sentence.silence_after, options)
                else:
                    yield self._with_silence(self._vocode(mel, options), sentence.silence_after)
                continue
            yield from self._vocode_pieces(pieces, head, sentence.silence_after, options)

    def _sentence_mels(
        self, sentence: _Sentence, options: _Options, failures: list[AlignmentFailure], head: bool
    ) -> Iterator[tuple[np.ndarray, bool]]:
        """One sentence's mel as ``(frames, last)`` pieces: from the acoustic model's ``stream`` for
        the first sentence of a stream (``head``) when the PyTorch model makes pieces as it runs and
        the vocoder takes spans; otherwise whole, a failed alignment retried (:meth:`_checked_mels`)."""
        if not (head and self._onnx_acoustic is None and self._context_frames is not None
                and _streams_mel(self._acoustic)):
            (mel,), found, _ = self._checked_mels([sentence], options)
            failures += found
            yield mel, True
            return
        ids = torch.tensor([sentence.ids], dtype=torch.long)
        pieces = self._acoustic.stream(ids, torch.tensor([len(sentence.ids)]), options.controls,
                                       _noise_source(options.seed, [sentence]), first_frames=HEAD_FRAMES + self._context_frames)
        while True:
            with torch.inference_mode():
                piece = next(pieces, None)
            if piece is None:
                return
            if piece.last and piece.report is not None and not piece.report.ok:
                failure = AlignmentFailure(sentence.index, sentence.text, piece.report.summary())
                log.warning("alignment failed (streamed, so not retried): %s", failure)
                failures.append(failure)
            yield _finite(piece.mel.numpy(), "mel", self.voice.name), piece.last
            if piece.last:
                return

    def _vocode_pieces(
        self, pieces: Iterator[tuple[np.ndarray, bool]], head: bool, silence_after: int, options: _Options
    ) -> Iterator[np.ndarray]:
        """The audio of one sentence whose mel arrives in pieces: a span is vocoded once the
        vocoder's ``context_frames`` after it have arrived, so the spans join exactly into the
        sentence's audio. With ``head`` the first span is HEAD_FRAMES long (audio starts early); a
        later one waits until it is as long as the audio already sent (few vocoder calls, and the
        audio sent stays ahead); what is left when the last piece arrives comes as one chunk."""
        context, done, parts = self._context_frames, 0, []
        for piece, last in pieces:
            parts.append(piece)
            if last:
                break
            mel = np.concatenate(parts, axis=1)
            parts = [mel]
            while True:
                size = HEAD_FRAMES if head and done == 0 else min(max(done, HEAD_FRAMES), VOCODE_CHUNK_FRAMES)
                ready = mel.shape[1] - context
                if ready - done < size:
                    break
                end = done + size if head and done == 0 else min(ready, done + VOCODE_CHUNK_FRAMES)
                yield self._vocode_span(mel, done, end, options)
                done = end
        mel = np.concatenate(parts, axis=1)
        frames = mel.shape[1]
        if head and done == 0 and HEAD_FRAMES < frames - context:
            yield self._vocode_span(mel, 0, HEAD_FRAMES, options)
            done = HEAD_FRAMES
        if done == 0:
            rest = self._vocode(mel, options)
        else:
            rest = np.concatenate([np.zeros(0, np.float32)] + [
                self._vocode_span(mel, start, min(start + VOCODE_CHUNK_FRAMES, frames), options)
                for start in range(done, frames, VOCODE_CHUNK_FRAMES)])
        if rest.size or silence_after > 0:
            yield self._with_silence(rest, silence_after)  # rest: at least the context frames, longer than the fade

    def _vocode_stream(self, mel: np.ndarray, silence_after: int, options: _Options) -> Iterator[np.ndarray]:
        """A vocoder that streams natively (autoregressive): its pieces as they are made (the last
        :data:`FADE_OUT_S` held back for the fade), the silence after them. The same audio as
        :meth:`_vocode` followed by :meth:`_with_silence`."""
        pieces = self._vocoder.stream(torch.from_numpy(np.ascontiguousarray(mel)), options.controls)
        held, pending = self._fade_samples, np.zeros(0, np.float32)  # the fade's samples wait for the end
        while True:
            with torch.inference_mode():
                following = next(pieces, None)
            if following is None:
                break
            pending = np.concatenate([pending, np.asarray(following.numpy(), dtype=np.float32).reshape(-1)])
            if pending.size > held:
                yield pending[: pending.size - held]
                pending = pending[pending.size - held :]
        yield self._with_silence(pending, silence_after)

    def _vocode_span(self, mel: np.ndarray, start: int, end: int, options: _Options) -> np.ndarray:
        """Audio of mel frames [start, end), vocoded with enough context on each side to be exact."""
        lo, hi = max(0, start - self._context_frames), min(mel.shape[1], end + self._context_frames)
        hop = self.voice.mel_config.hop_length
        wave = self._vocode_whole(mel[:, lo:hi], options)
        return wave[(start - lo) * hop : (end - lo) * hop]

    def _options(
        self, speed: float, noise_scale: float, speaker: str | int | None, seed: int | None,
        sigma: float | None = None, denoise: float | None = None, style: Mapping[str, Any] | None = None,
    ) -> _Options:
        if not MIN_SPEED <= _as_float(speed, "speed") <= MAX_SPEED:
            raise ValueError(f"speed must be in [{MIN_SPEED}, {MAX_SPEED}], got {speed!r}")
        if not (math.isfinite(_as_float(noise_scale, "noise_scale")) and noise_scale >= 0):
            raise ValueError(f"noise_scale must be a finite number >= 0, got {noise_scale!r}")
        for name, value in (("sigma", sigma), ("denoise", denoise)):
            if value is not None and not (math.isfinite(_as_float(value, name)) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            # numpy's seeding said only "expected non-negative integer", and a stream said it after its first chunk
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self._check_knobs(float(speed), sigma, denoise)
        if style:
            if "style" not in self._acoustic.knobs:
                family = self.voice.config.get("acoustic", {}).get("model_name", "this family")
                raise ValueError(f"voice {self.voice.name!r} has no style controls (its acoustic model is "
                                 f"{family}); style needs a Flowtron voice")
        return _Options(1.0 / float(speed), float(noise_scale), self.speaker_id(speaker), seed, sigma, denoise,
                        dict(style) if style else None)

    def _check_knobs(self, speed: float, sigma: float | None, denoise: float | None) -> None:
        """:class:`UnsupportedControl` for a control this voice's models do not read (the audio would come back
        unchanged): speed without the acoustic model's length_scale (Tacotron2 and Flowtron set their
        own pace), sigma/denoise without a vocoder that has them (WaveGlow)."""
        config = self.voice.config
        if speed != 1.0 and "length_scale" not in self._acoustic.knobs:
            family = config.get("acoustic", {}).get("model_name", "its acoustic model")
            raise UnsupportedControl("speed", f"speed: voice {self.voice.name!r} ({family}) has no speed control "
                                     "(its decoder sets its own pace); leave speed at 1.0")
        vocoder_knobs = getattr(self._vocoder, "knobs", ())
        for name, label, value in (("sigma", "vocoder_sigma", sigma), ("denoise", "denoise", denoise)):
            if value is not None and name not in vocoder_knobs:
                family = config.get("vocoder", {}).get("model_name", "griffin_lim")
                raise UnsupportedControl(label, f"{label}: voice {self.voice.name!r}'s vocoder ({family}) has no "
                                         f"{name} control (a WaveGlow vocoder has)")

    def _sentences(self, text: str, sentence_silence_s: float, paragraph_silence_s: float) -> list[_Sentence]:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the text is empty: nothing to say")
        for name, value in (("sentence_silence_s", sentence_silence_s), ("paragraph_silence_s", paragraph_silence_s)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
        sentence_gap = round(sentence_silence_s * self.sample_rate)
        paragraph_gap = round(paragraph_silence_s * self.sample_rate)
        sentences: list[_Sentence] = []
        for paragraph in split_paragraphs(text):
            pieces = [piece for sentence in paragraph for piece in self._within_limit(sentence)]
            for position, (sentence, ids) in enumerate(pieces):
                gap = paragraph_gap if position == len(pieces) - 1 else sentence_gap
                sentences.append(_Sentence(len(sentences), sentence, ids, gap))
        if not sentences:
            raise ValueError(f"the text has nothing to read aloud: {text[:80]!r}")
        last = sentences[-1]
        sentences[-1] = _Sentence(last.index, last.text, last.ids, 0)
        return sentences

    def _within_limit(self, sentence: str) -> list[tuple[str, list[int]]]:
        """The sentence with its ids, split at commas, then between words while it has more
        symbols than the acoustic model's ``max_symbols`` (an attention decoder's step limit)."""
        ids = self._ids(sentence)
        if ids is None:
            return []
        limit = self._acoustic.max_symbols
        if limit is None or len(ids) <= limit or len(sentence.split()) <= 1:
            return [(sentence, ids)]  # a single word is never cut (the decoder flags it if too long)
        max_chars = max(1, min(len(sentence) - 1, len(sentence) * limit // len(ids)))
        pieces = split_sentences(sentence, max_chars=max_chars)
        if len(pieces) <= 1:
            return [(sentence, ids)]
        return [item for piece in pieces for item in self._within_limit(piece)]

    def _checked_mels(
        self, sentences: list[_Sentence], options: _Options
    ) -> tuple[list[np.ndarray], list[AlignmentFailure], int]:
        """Mels of the sentences; a sentence whose alignment failed is tried again with other noise
        (up to ``ALIGNMENT_RETRIES`` times) and, failing still, named in the returned list; and how
        many sentences had their alignment checked."""
        mels, reports = self._mels_with_reports(sentences, options)
        failures = []
        for row, sentence in enumerate(sentences):
            attempt = 0
            while reports[row] is not None and not reports[row].ok and attempt < ALIGNMENT_RETRIES:
                attempt += 1
                (mel,), (report,) = self._mels_with_reports([sentence], options, attempt)
                if report is None or report.ok or not _worse(report, reports[row]):
                    mels[row], reports[row] = mel, report
            if reports[row] is not None and not reports[row].ok:
                failure = AlignmentFailure(sentence.index, sentence.text, reports[row].summary())
                log.warning("alignment failed: %s", failure)
                failures.append(failure)
        return mels, failures, sum(report is not None for report in reports)

    def _ids(self, sentence: str) -> list[int] | None:
        """Symbol ids, or None for a sentence that is only punctuation (skipped)."""
        try:
            return self.voice.frontend.to_ids(sentence, strict=True)
        except UnreadableTextError:
            raise
        except ValueError:
            return None

    def _mels_with_reports(
        self, sentences: list[_Sentence], options: _Options, attempt: int = 0
    ) -> tuple[list[np.ndarray], list[Any]]:
        """Mels and alignment reports (None where the model checks none)."""
        controls = options.controls
        if self._onnx_acoustic is not None:
            results = [
                self._onnx_acoustic.infer_with_report(sentence.ids, controls, _noise_source(options.seed, [sentence], attempt))
                for sentence in sentences
            ]
            return [_finite(mel, "mel", self.voice.name) for mel, _ in results], [report for _, report in results]
        lengths = [len(sentence.ids) for sentence in sentences]
        ids = torch.zeros(len(sentences), max(lengths), dtype=torch.long)
        for row, sentence in enumerate(sentences):
            ids[row, : len(sentence.ids)] = torch.tensor(sentence.ids, dtype=torch.long)
        with torch.inference_mode():
            out = self._acoustic.infer(ids, torch.tensor(lengths), controls, _noise_source(options.seed, sentences, attempt))
        frames = out.lengths.tolist()
        reports = list(out.reports) if out.reports else [None] * len(sentences)
        mels = [_finite(out.mel[row, :, :n_frames].numpy(), "mel", self.voice.name) for row, n_frames in enumerate(frames)]
        return mels, reports

    def _vocode(self, mel: np.ndarray, options: _Options) -> np.ndarray:
        if self._context_frames is not None and mel.shape[1] > VOCODE_CHUNK_FRAMES + self._context_frames:
            return np.concatenate([self._vocode_span(mel, start, min(start + VOCODE_CHUNK_FRAMES, mel.shape[1]), options)
                                   for start in range(0, mel.shape[1], VOCODE_CHUNK_FRAMES)])
        return self._vocode_whole(mel, options)

    def _vocode_whole(self, mel: np.ndarray, options: _Options) -> np.ndarray:
        if self._onnx_vocoder is not None:
            wave = self._onnx_vocoder(mel, options.controls)
        else:
            with torch.inference_mode():
                wave = self._vocoder.infer(torch.from_numpy(np.ascontiguousarray(mel)), options.controls).numpy()
        return _finite(np.asarray(wave, dtype=np.float32).reshape(-1), "audio", self.voice.name)

    @property
    def _fade_samples(self) -> int:
        return round(FADE_OUT_S * self.sample_rate)

    def _with_silence(self, wave: np.ndarray, samples: int) -> np.ndarray:
        """A sentence's last audio, faded out over :data:`FADE_OUT_S`, then ``samples`` of silence.
        Every path ends a sentence here, so streamed and whole audio agree."""
        n = min(self._fade_samples, wave.size)
        ramp = np.arange(n, 0, -1, dtype=np.float32) / np.float32(n + 1)
        silence = np.zeros(max(samples, 0), dtype=np.float32)
        return np.concatenate([wave[: wave.size - n], wave[wave.size - n :] * ramp, silence])


def _streams_mel(acoustic: Any) -> bool:
    """Whether a PyTorch acoustic adapter overrides ``AcousticModel.stream`` (makes its mel in
    pieces as it runs); the default is one piece from ``infer``, which gains nothing."""
    from moksori.models.interfaces import AcousticModel

    return isinstance(acoustic, AcousticModel) and type(acoustic).stream is not AcousticModel.stream


def _worse(new: Any, old: Any) -> bool:
    """A retry's report with more failure reasons than the first try's (keep the first then)."""
    return len(new.reasons) > len(old.reasons)


__all__ = [
    "ALLOCATOR_ENV",
    "AlignmentFailure",
    "BrokenVoiceOutput",
    "SynthesisResult",
    "SynthesisStream",
    "Synthesizer",
    "configure_allocator",
    "release_memory",
]
