"""Waveform → bytes in the formats the API offers (all through soundfile/libsndfile)."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import soundfile

from moksori.audio import resample


@dataclass(frozen=True)
class AudioFormat:
    name: str
    media_type: str
    container: str | None  # soundfile format; None for raw PCM
    subtype: str | None
    sample_rates: tuple[int, ...] = ()  # empty: any rate; otherwise resampled to the nearest above


FORMATS: dict[str, AudioFormat] = {
    "wav": AudioFormat("wav", "audio/wav", "WAV", "PCM_16"),
    "pcm": AudioFormat("pcm", "audio/pcm", None, None),
    "mp3": AudioFormat("mp3", "audio/mpeg", "MP3", "MPEG_LAYER_III"),
    "ogg": AudioFormat("ogg", "audio/ogg", "OGG", "VORBIS"),
    # libsndfile's Opus encoder takes only these rates; 22,050 Hz voices are resampled to 24 kHz.
    "opus": AudioFormat("opus", "audio/ogg; codecs=opus", "OGG", "OPUS", (8000, 12000, 16000, 24000, 48000)),
    "flac": AudioFormat("flac", "audio/flac", "FLAC", "PCM_16"),
    # AAC in ADTS frames (what OpenAI's API answers for "aac"), through PyAV (FFmpeg's encoder).
    "aac": AudioFormat("aac", "audio/aac", "ADTS", None),
}
STREAM_FORMATS = ("wav", "pcm")


def audio_format(name: str) -> AudioFormat:
    """The format called ``name``; ValueError naming the supported ones otherwise."""
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise ValueError(f"unsupported audio format {name!r}; supported: {', '.join(FORMATS)}") from None


def pcm16(wave: np.ndarray) -> bytes:
    """Little-endian signed 16-bit samples of a float waveform (clipped to [-1, 1])."""
    clipped = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def encode(wave: np.ndarray, sample_rate: int, name: str) -> tuple[bytes, int]:
    """The bytes of ``wave`` in format ``name`` and the sample rate they are at."""
    fmt = audio_format(name)
    if fmt.sample_rates and sample_rate not in fmt.sample_rates:
        target = min((rate for rate in fmt.sample_rates if rate >= sample_rate), default=max(fmt.sample_rates))
        wave, sample_rate = resample(wave, sample_rate, target), target
    if fmt.container is None:
        return pcm16(wave), sample_rate
    if fmt.name == "aac":
        return encode_aac(wave, sample_rate), sample_rate
    buffer = io.BytesIO()
    samples = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)
    soundfile.write(buffer, samples, sample_rate, format=fmt.container, subtype=fmt.subtype)
    return buffer.getvalue(), sample_rate


# A streamed WAV cannot know its length up front; the size fields hold the largest value, which
# players treat as "read to the end of the stream".
_UNKNOWN_SIZE = 0xFFFFFFFF


def streaming_wav_header(sample_rate: int) -> bytes:
    """A 44-byte mono 16-bit PCM WAV header with unknown (maximum) length."""
    return (
        b"RIFF"
        + struct.pack("<I", _UNKNOWN_SIZE)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", _UNKNOWN_SIZE)
    )


def encode_aac(wave: np.ndarray, sample_rate: int) -> bytes:
    """AAC-LC in an ADTS stream (PyAV; FFmpeg's native encoder)."""
    import av

    samples = np.clip(np.asarray(wave, dtype=np.float32).reshape(1, -1), -1.0, 1.0)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="adts") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()
