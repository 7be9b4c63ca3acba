"""Silence trimming and loudness normalisation on 1-D float waveforms."""

from __future__ import annotations

import numpy as np

# Short analysis frames: 20 ms windows every 5 ms give edge positions to within ~5 ms.
FRAME_SECONDS = 0.02
HOP_SECONDS = 0.005
# Levels are floored here so that digital silence has a finite dB value.
SILENCE_FLOOR_DB = -120.0


def frame_powers(wave: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Mean square of each frame (frames start at 0, hop apart; the tail is zero-padded)."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.size < frame_length:
        wave = np.pad(wave, (0, frame_length - wave.size))
    else:
        remainder = (wave.size - frame_length) % hop_length
        if remainder:
            wave = np.pad(wave, (0, hop_length - remainder))
    # Window sums from one running sum of squares: O(samples) instead of O(samples × overlap).
    running = np.concatenate(([0.0], np.cumsum(wave * wave)))
    starts = np.arange(0, wave.size - frame_length + 1, hop_length)
    return np.maximum(running[starts + frame_length] - running[starts], 0.0) / frame_length


def power_to_db(power: np.ndarray | float) -> np.ndarray:
    """10·log10(power), floored at SILENCE_FLOOR_DB."""
    floor = 10.0 ** (SILENCE_FLOOR_DB / 10.0)
    return 10.0 * np.log10(np.maximum(power, floor))


def analysis_frames(sample_rate: int) -> tuple[int, int]:
    """(frame_length, hop_length) in samples for the short-frame analyses of this module."""
    frame_length = max(1, round(FRAME_SECONDS * sample_rate))
    hop_length = max(1, round(HOP_SECONDS * sample_rate))
    return frame_length, hop_length


def analysis_powers(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Frame powers of the short-frame analyses; compute once and pass as `powers=` to reuse."""
    return frame_powers(wave, *analysis_frames(sample_rate))


def active_frames(
    wave: np.ndarray, sample_rate: int, top_db: float, *, powers: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(frame powers, mask of frames within `top_db` of the loudest frame).

    The mask is all False when the wave is digital silence.
    """
    if powers is None:
        powers = analysis_powers(wave, sample_rate)
    loudest = powers.max()
    if loudest <= 0.0:
        return powers, np.zeros(powers.shape, dtype=bool)
    return powers, power_to_db(powers) >= power_to_db(loudest) - top_db


def trim_silence(
    wave: np.ndarray,
    sample_rate: int,
    *,
    top_db: float = 40.0,
    margin_s: float = 0.05,
    powers: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Cut leading and trailing silence; pauses inside the clip are kept.

    Silence is any 20 ms frame more than `top_db` below the loudest frame; the edges
    are then placed on the first/last sample above that level. `margin_s` seconds of
    the original signal are kept on each side of the sound. Returns the
    trimmed wave and the kept sample range `(start, end)` of the input. A clip of
    digital silence trims to an empty wave with range (0, 0).
    """
    wave = np.asarray(wave, dtype=np.float32)
    first, last = _sound_edges(wave, sample_rate, top_db, powers)
    if last == 0:
        return wave[:0].copy(), (0, 0)
    margin = round(margin_s * sample_rate)
    start = max(0, first - margin)
    end = min(wave.size, last + margin)
    return wave[start:end].copy(), (start, end)


def _sound_edges(wave: np.ndarray, sample_rate: int, top_db: float, powers: np.ndarray | None) -> tuple[int, int]:
    """Sample range from the first to the last sound, (0, 0) for digital silence.

    Frames find the sound; inside the first and last sounding frame the edge is the
    first/last sample louder than the silence threshold. Such a sample always exists,
    since the frame's mean square passes the same threshold.
    """
    frame_length, hop_length = analysis_frames(sample_rate)
    powers, active = active_frames(wave, sample_rate, top_db, powers=powers)
    if not active.any():
        return 0, 0
    threshold = np.sqrt(powers.max()) * 10.0 ** (-top_db / 20.0)
    indices = np.flatnonzero(active)
    first_frame = int(indices[0]) * hop_length
    last_frame = int(indices[-1]) * hop_length
    first_chunk = np.abs(wave[first_frame : first_frame + frame_length])
    last_chunk = np.abs(wave[last_frame : last_frame + frame_length])
    quiet_before = _count_leading_false(first_chunk >= threshold)
    quiet_after = _count_leading_false((last_chunk >= threshold)[::-1])
    return first_frame + quiet_before, last_frame + last_chunk.size - quiet_after


def _count_leading_false(mask: np.ndarray) -> int:
    """Number of False values before the first True (0 if there is none, keeping the frame whole)."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else 0


def active_rms(
    wave: np.ndarray, sample_rate: int, top_db: float = 40.0, *, powers: np.ndarray | None = None
) -> float:
    """RMS of the voiced part: the frames within `top_db` of the loudest one (0.0 for silence)."""
    powers, active = active_frames(wave, sample_rate, top_db, powers=powers)
    if not active.any():
        return 0.0
    return float(np.sqrt(powers[active].mean()))


def normalize_loudness(
    wave: np.ndarray,
    *,
    target_dbfs: float = -20.0,
    peak_limit: float = 0.95,
    sample_rate: int = 22050,
) -> np.ndarray:
    """Scale so the voiced part's RMS is `target_dbfs`, then lower it if the peak would pass `peak_limit`.

    Silence inside and around the clip does not count towards the level (frames more
    than 40 dB below the loudest are left out). Digital silence (all zeros) is
    returned unchanged: there is no level to correct, and callers report silent clips
    on their own (see `moksori.audio.quality`). `sample_rate` only sets the analysis
    frame size, so the default is fine for any common rate.
    """
    wave = np.asarray(wave, dtype=np.float32)
    rms = active_rms(wave, sample_rate)
    if rms <= 0.0:
        return wave.copy()
    scaled = wave * np.float32(10.0 ** (target_dbfs / 20.0) / rms)
    peak = float(np.max(np.abs(scaled)))
    if peak > peak_limit:
        scaled *= np.float32(peak_limit / peak)
    return scaled.astype(np.float32, copy=False)
