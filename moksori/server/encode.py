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

    @property
    def key(self) -> str:
        """Tells formats of one name at different rates apart (in cache keys)."""
        return self.name if not self.sample_rates else f"{self.name}@{','.join(map(str, self.sample_rates))}"

    def output_rate(self, sample_rate: int) -> int:
        """The rate audio made at ``sample_rate`` is sent at in this format."""
        if not self.sample_rates or sample_rate in self.sample_rates:
            return sample_rate
        return min((rate for rate in self.sample_rates if rate >= sample_rate), default=max(self.sample_rates))


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
# OpenAI's API defines pcm as 24 kHz (its clients play it at that rate, told nothing else), so
# /v1/audio/speech resamples it; /infer and /synthesize send pcm at the voice's rate, named in
# the media type.
OPENAI_PCM = AudioFormat("pcm", "audio/pcm", None, None, (24000,))


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


def encode(wave: np.ndarray, sample_rate: int, fmt: AudioFormat | str) -> tuple[bytes, int]:
    """The bytes of ``wave`` in format ``fmt`` (or the format of that name) and their sample rate."""
    fmt = audio_format(fmt) if isinstance(fmt, str) else fmt
    target = fmt.output_rate(sample_rate)
    if target != sample_rate:
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
