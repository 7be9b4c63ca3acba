"""Objective voice-quality metrics on waveforms: MCD, F0 error, duration ratio, CER.

Every metric is a pure function of float32 waveforms (and a sample rate) or of strings.

Why we compute mel-cepstral distortion ourselves: no maintained package for it installs
here as a wheel (the usual ones build on WORLD via pyworld, which has no binary wheel, or
on SPTK via pysptk), and MCD itself is a few lines once a cepstrum and a DTW path exist. The cepstrum is
an approximation of mel-cepstral analysis (see :func:`mel_cepstrum`), so absolute values
are comparable between moksori voices, and only roughly with numbers published elsewhere.

Frames: all analyses use 25 ms Hann windows every 10 ms, centred (frame ``i`` is at
``i * hop``), so the cepstra and the F0 track of one clip have the same frame count and
one DTW path serves both.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import librosa
import numpy as np
import scipy.fft

from moksori.audio import trim_silence

__all__ = [
    "F0_MAX_HZ",
    "F0_MIN_HZ",
    "N_COEFFS",
    "Alignment",
    "align",
    "analysis_frames",
    "character_error_rate",
    "duration_ratio",
    "edit_distance",
    "f0_metrics",
    "f0_metrics_of_alignment",
    "mcd_dtw",
    "mcd_of_alignment",
    "mel_cepstrum",
    "pitch_track",
    "text_characters",
]

WINDOW_SECONDS = 0.025
HOP_SECONDS = 0.010
N_MEL_BANDS = 80
N_COEFFS = 25  # c0 (energy) + 24 coefficients, the usual order-24 mel-cepstrum
# Mel-band power floor (about -100 dB below full scale): keeps log(0) out of the cepstrum.
POWER_FLOOR = 1e-10
# Edge silence: frames more than this below the loudest one are cut before comparing.
TRIM_TOP_DB = 40.0
F0_MIN_HZ = 65.0
F0_MAX_HZ = 600.0
# 10 / ln 10 · sqrt(2): turns a Euclidean distance of natural-log cepstra into dB.
MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)


def analysis_frames(sample_rate: int) -> tuple[int, int, int]:
    """(n_fft, win_length, hop_length) in samples for this sample rate."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    win_length = round(WINDOW_SECONDS * sample_rate)
    # The F0 tracker needs a frame of two periods of the lowest F0 (65 Hz → ~31 ms).
    min_frame = math.ceil(2.0 * sample_rate / F0_MIN_HZ)
    n_fft = 1 << math.ceil(math.log2(max(win_length, min_frame)))
    return n_fft, win_length, round(HOP_SECONDS * sample_rate)


def mel_cepstrum(wave: np.ndarray, sample_rate: int, n_coeffs: int = N_COEFFS) -> np.ndarray:
    """Mel-cepstral coefficients ``[frames, n_coeffs]`` (c0 first), an approximation of mel-cepstral analysis.

    Power STFT (25 ms Hann, 10 ms hop) → 80 Slaney mel bands over the whole band
    (0 to sample_rate / 2) → natural log of the band *amplitude* (half the log power) →
    orthonormal DCT-II, rescaled (c0 by ``1 / sqrt(bands)``, the others by
    ``1 / sqrt(2 · bands)``) to the coefficients of a cosine series
    ``log|X(w)| ≈ c0 + 2 Σ c_m cos(m w)`` on the mel-warped axis: c0 is the mean log
    amplitude, and c1.. have the scale of SPTK's ``mcep``, which the standard MCD constant
    assumes. ``mcep`` instead fits the cepstrum to the spectrum on an all-pass-warped
    frequency axis; a mel filter bank only samples a similar warped axis, so values are
    close to, not equal to, a ``mcep``-based MCD. The project's 80-band log-mel is not
    used because it stops at 8 kHz and averages magnitudes rather than powers.
    """
    wave = _as_wave(wave)
    n_fft, win_length, hop_length = analysis_frames(sample_rate)
    if n_coeffs < 1 or n_coeffs > N_MEL_BANDS:
        raise ValueError(f"n_coeffs must be in 1..{N_MEL_BANDS}, got {n_coeffs}")
    spectrum = librosa.stft(wave, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window="hann")
    power = np.abs(spectrum) ** 2
    bands = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=N_MEL_BANDS, fmin=0.0, fmax=sample_rate / 2)
    log_amplitude = 0.5 * np.log(np.maximum(bands @ power, POWER_FLOOR))
    cepstrum = scipy.fft.dct(log_amplitude, type=2, norm="ortho", axis=0)[:n_coeffs] / math.sqrt(2.0 * N_MEL_BANDS)
    cepstrum[0] *= math.sqrt(2.0)  # the orthonormal DCT weights c0 by 1/sqrt(2) against the others
    return cepstrum.T.astype(np.float64)


@dataclass(frozen=True)
class Alignment:
    """Two edge-trimmed clips, their cepstra and the DTW path between them (pairs of frame indices)."""

    reference: np.ndarray
    synthesized: np.ndarray
    reference_cepstrum: np.ndarray
    synthesized_cepstrum: np.ndarray
    path: np.ndarray  # [steps, 2]: (reference frame, synthesized frame), in time order


def align(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int) -> Alignment:
    """Trim edge silence from both clips and align their cepstra (c1..c24) with DTW."""
    reference = _trimmed(reference, sample_rate, "reference")
    synthesized = _trimmed(synthesized, sample_rate, "synthesized")
    reference_cepstrum = mel_cepstrum(reference, sample_rate)
    synthesized_cepstrum = mel_cepstrum(synthesized, sample_rate)
    _, path = librosa.sequence.dtw(
        X=reference_cepstrum[:, 1:].T, Y=synthesized_cepstrum[:, 1:].T, metric="euclidean", backtrack=True
    )
    return Alignment(reference, synthesized, reference_cepstrum, synthesized_cepstrum, path[::-1])


def mcd_dtw(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int) -> float:
    """Mel-cepstral distortion in dB between two clips of the same text, after DTW alignment.

    ``10 / ln 10 · sqrt(2 · Σ_{m=1..24} (c_m − c'_m)²)`` averaged over the DTW path; c0
    (energy) is left out, and edge silence is trimmed from both clips first. A clip
    against itself gives exactly 0.
    """
    return mcd_of_alignment(align(reference, synthesized, sample_rate))


def mcd_of_alignment(alignment: Alignment) -> float:
    """MCD (dB) over the path of an existing alignment."""
    reference_frames = alignment.reference_cepstrum[alignment.path[:, 0], 1:]
    synthesized_frames = alignment.synthesized_cepstrum[alignment.path[:, 1], 1:]
    distances = np.sqrt(np.sum((reference_frames - synthesized_frames) ** 2, axis=1))
    return float(MCD_SCALE * distances.mean())


def f0_metrics(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int) -> dict[str, float]:
    """F0 error of ``synthesized`` against ``reference`` over the cepstral DTW path.

    F0 comes from ``librosa.pyin`` (65–600 Hz). Returns:

    * ``f0_rmse_cents``: RMS of ``1200 · log2(F0_syn / F0_ref)`` over path steps voiced in
      both clips (cents: 100 = one semitone); NaN when no step is voiced in both.
    * ``vuv_error``: share of path steps where one clip is voiced and the other is not.
    * ``voiced_both``: the number of path steps voiced in both (what the RMSE averages).
    """
    return f0_metrics_of_alignment(align(reference, synthesized, sample_rate), sample_rate)


def f0_metrics_of_alignment(alignment: Alignment, sample_rate: int) -> dict[str, float]:
    """:func:`f0_metrics` over the path of an existing alignment."""
    reference_f0, reference_voiced = pitch_track(alignment.reference, sample_rate)
    synthesized_f0, synthesized_voiced = pitch_track(alignment.synthesized, sample_rate)
    # The tracks have the cepstra's frame count; clip in case of an off-by-one at the end.
    reference_steps = np.minimum(alignment.path[:, 0], reference_f0.size - 1)
    synthesized_steps = np.minimum(alignment.path[:, 1], synthesized_f0.size - 1)
    voiced_ref = reference_voiced[reference_steps]
    voiced_syn = synthesized_voiced[synthesized_steps]
    both = voiced_ref & voiced_syn
    if both.any():
        cents = 1200.0 * np.log2(synthesized_f0[synthesized_steps][both] / reference_f0[reference_steps][both])
        rmse = float(np.sqrt(np.mean(cents**2)))
    else:
        rmse = math.nan
    return {
        "f0_rmse_cents": rmse,
        "vuv_error": float(np.mean(voiced_ref != voiced_syn)),
        "voiced_both": int(both.sum()),
    }


def pitch_track(wave: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(F0 in Hz with NaN where unvoiced, voiced flags) per analysis frame, from pyin."""
    n_fft, _, hop_length = analysis_frames(sample_rate)
    f0, voiced, _ = librosa.pyin(
        _as_wave(wave), fmin=F0_MIN_HZ, fmax=F0_MAX_HZ, sr=sample_rate, frame_length=n_fft, hop_length=hop_length
    )
    return f0, voiced & np.isfinite(f0)


def duration_ratio(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int) -> float:
    """Speech duration of ``synthesized`` over that of ``reference``, edge silence trimmed from both."""
    reference = _trimmed(reference, sample_rate, "reference")
    synthesized = _trimmed(synthesized, sample_rate, "synthesized")
    return synthesized.size / reference.size


def text_characters(text: str) -> list[str]:
    """The characters CER compares: NFC (so a Hangul syllable is one character), case-folded,
    without whitespace, punctuation, symbols or control characters."""
    kept_categories = ("L", "N", "M")  # letters, numbers, combining marks
    return [char for char in unicodedata.normalize("NFC", text).casefold() if unicodedata.category(char)[0] in kept_categories]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance (substitutions, insertions and deletions cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_item in enumerate(reference, start=1):
        current = [i]
        for j, hyp_item in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_item != hyp_item)))
        previous = current
    return previous[-1]


def character_error_rate(reference_text: str, hypothesis_text: str) -> float:
    """Character error rate: edit distance / reference length, over :func:`text_characters`.

    Korean is compared on syllables. A small function of our own instead of ``jiwer``:
    the whole metric is twenty lines, and we need our own character filter anyway.
    Raises ValueError when the reference has no characters to compare.
    """
    reference = text_characters(reference_text)
    if not reference:
        raise ValueError(f"reference text {reference_text!r} has no characters to compare")
    return edit_distance(reference, text_characters(hypothesis_text)) / len(reference)


def _as_wave(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {wave.shape}")
    return wave


def _trimmed(wave: np.ndarray, sample_rate: int, name: str) -> np.ndarray:
    trimmed, _ = trim_silence(_as_wave(wave), sample_rate, top_db=TRIM_TOP_DB, margin_s=0.0)
    n_fft, _, _ = analysis_frames(sample_rate)
    if trimmed.size < n_fft:
        raise ValueError(f"the {name} audio has no sound to compare (silent or shorter than {n_fft} samples)")
    return trimmed
