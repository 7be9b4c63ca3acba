"""Reading and writing audio files.

Every waveform inside moksori is a 1-D float32 numpy array in [-1, 1]. Files are read
with soundfile (libsndfile reads wav, flac, ogg/vorbis, opus and mp3), and what it cannot
read (AAC in .m4a, a phone's voice memo; .aac, .wma, a video's sound) with PyAV's FFmpeg;
they are written as 16-bit PCM WAV.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile
import soxr

if TYPE_CHECKING:
    import torch

from moksori.atomic import atomic_path


class AudioError(ValueError):
    """A file could not be used as audio; the message names the file and the problem."""


def load_audio(path: str | Path, sample_rate: int | None = 22050) -> np.ndarray:
    """Read an audio file as float32 mono in [-1, 1], resampled to `sample_rate`.

    Stereo (or more channels) is averaged to mono. `sample_rate=None` keeps the
    file's own rate. Raises AudioError for a missing, empty or unreadable file.
    """
    wave, file_rate = load_audio_with_rate(path)
    if sample_rate is not None and sample_rate != file_rate:
        wave = resample(wave, file_rate, sample_rate)
    return wave


def load_audio_with_rate(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file at its own rate: (float32 mono wave in [-1, 1], sample_rate)."""
    path = Path(path)
    _check_file(path)
    try:
        data, file_rate = soundfile.read(_source(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        wave, file_rate = _decode_with_ffmpeg(path, error)
        return _checked_mono(path, wave), file_rate
    return _checked_mono(path, data.mean(axis=1, dtype=np.float32)), int(file_rate)


def _checked_mono(path: Path, wave: np.ndarray) -> np.ndarray:
    """A decoded mono wave, refused when empty or not finite, brought into [-1, 1].

    A float file (or a lossy codec's overshoot) may go past full scale without having clipped:
    such a wave is scaled down to peak at 1 instead of clipped, which would have cut its peaks
    flat and then had the clip rejected as clipped.
    """
    if wave.size == 0:
        raise AudioError(f"{path}: audio file contains no samples (zero length)")
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    peak = float(np.max(np.abs(wave)))
    if peak > 1.0:
        wave = wave / np.float32(peak)
    return wave.astype(np.float32, copy=False)


# libsndfile's frame count for a stream that does not state its length (e.g. a FLAC header with
# total samples 0): such files are checked while they are decoded.
UNKNOWN_FRAMES = 2**62


class AudioLimitError(AudioError):
    """The audio is over a limit (length, channels, sample rate); ``code`` names which one.
    Raised from the file's header, before its samples are decoded, whenever the header tells."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AudioLimits:
    """What :func:`load_audio_bounded` accepts. Memory used is at most about
    ``max_seconds * max_sample_rate * 4`` bytes plus one block, whatever the file claims."""

    max_seconds: float
    max_channels: int = 2
    max_sample_rate: int = 192_000
    block_frames: int = 65_536
    what: str = "take"  # what the messages call the recording (the studio's takes, a style reference)


def load_audio_bounded(path: str | Path, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """Like :func:`load_audio_with_rate`, for untrusted files (uploads): the header (length,
    channels, rate) is checked before anything is decoded, and samples are decoded block by
    block, mixed to mono, and abandoned as soon as they pass ``max_seconds`` (a header may lie).
    AudioLimitError for audio over a limit, AudioError for unreadable audio."""
    path = Path(path)
    _check_file(path)
    try:
        # 8 bytes a sample at most (64-bit float WAV): a bigger file cannot fit the limits anyway.
        max_bytes = int(limits.max_seconds * limits.max_sample_rate * limits.max_channels * 8) + 2**20
        with soundfile.SoundFile(_source(path, max_bytes)) as handle:
            _check_header(handle.frames, handle.channels, handle.samplerate, limits)
            max_frames = int(limits.max_seconds * handle.samplerate)
            wave = _read_blocks(handle, max_frames, limits)
            rate = int(handle.samplerate)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        wave, rate = _decode_with_ffmpeg(path, error, limits)
    return _checked_mono(path, wave), rate


# What FFmpeg may read: audio containers and codecs that recorders and phones write. FFmpeg's other
# demuxers include ones that open further files or URLs named inside the file (concat, hls, dash,
# sdp, image2...); an upload must reach none of them, nor any video or subtitle decoder (the
# stream probe would otherwise run one on a video stream it finds).
# WAV is left to libsndfile: FFmpeg's walk over a hostile one's chunks took 2.1 s for 20 MB.
_FFMPEG_DEMUXERS = ("mov", "aac", "asf", "matroska", "ogg", "mp3", "flac", "amr", "caf", "aiff")
_FFMPEG_DECODERS = frozenset((
    "aac", "aac_fixed", "aac_latm", "alac", "mp1", "mp1float", "mp2", "mp2float", "mp3", "mp3float",
    "wmav1", "wmav2", "wmapro", "wmalossless", "wmavoice", "opus", "libopus", "vorbis", "flac",
    "amrnb", "amrwb", "libopencore_amrnb", "libopencore_amrwb", "ac3", "ac3_fixed", "eac3",
    "adpcm_ima_wav", "adpcm_ms", "pcm_alaw", "pcm_mulaw", "pcm_u8", "pcm_s8",
    *(f"pcm_{kind}{bits}{order}" for kind in "su" for bits in (16, 24, 32) for order in ("le", "be")),
    *(f"pcm_f{bits}{order}" for bits in (32, 64) for order in ("le", "be")),
))
_FFMPEG_INPUT_OPTIONS = {
    "format_whitelist": ",".join(_FFMPEG_DEMUXERS),
    "protocol_whitelist": "file",
    "codec_whitelist": ",".join(sorted(_FFMPEG_DECODERS)),
}


def _decode_with_ffmpeg(path: Path, soundfile_error: Exception,
                        limits: AudioLimits | None = None) -> tuple[np.ndarray, int]:
    """(mono wave, rate) of a file libsndfile cannot read, decoded by PyAV; with ``limits``,
    checked as :func:`load_audio_bounded` checks. AudioError with libsndfile's reason when
    FFmpeg cannot read it either."""
    import av  # only for formats libsndfile lacks

    unreadable = AudioError(f"{path}: not a readable audio file ({soundfile_error})")
    try:
        # "file:" so that a path such as "concat:a|b" is a file name, not another protocol.
        # Tags need not be UTF-8 (PyAV decodes them on opening; strict, that was a 500).
        with av.open(f"file:{path}", container_options=dict(_FFMPEG_INPUT_OPTIONS),
                     metadata_errors="replace") as container:
            if not container.streams.audio:
                raise unreadable
            stream = container.streams.audio[0]
            if stream.codec_context is None:  # a codec FFmpeg has no decoder for
                raise unreadable
            if stream.codec_context.codec.name not in _FFMPEG_DECODERS:
                raise AudioError(f"{path}: audio coded as {stream.codec_context.codec.name} is not accepted")
            rate, channels = int(stream.rate), int(stream.channels)
            max_frames = None
            if limits is not None:
                known = stream.duration is not None and stream.time_base is not None
                frames = round(stream.duration * stream.time_base * rate) if known else UNKNOWN_FRAMES
                _check_header(frames, channels, rate, limits)
                max_frames = int(limits.max_seconds * rate)
            wave = _decode_stream(container, stream, max_frames, limits)
    except av.FFmpegError as error:
        raise unreadable from error
    return wave, rate


def _decode_stream(container, stream, max_frames: int | None, limits: AudioLimits | None) -> np.ndarray:
    import av

    planar = av.AudioResampler(format="fltp")  # keeps the rate and channels; (channels, samples)
    blocks: list[np.ndarray] = []
    total = 0
    for frame in container.decode(stream):
        for converted in planar.resample(frame):
            block = converted.to_ndarray().mean(axis=0, dtype=np.float32)
            total += block.size
            if max_frames is not None and total > max_frames:  # the header understated the length
                raise _too_long(total / stream.rate, limits, at_least=True)
            blocks.append(block)
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def _check_header(frames: int, channels: int, sample_rate: int, limits: AudioLimits) -> None:
    if channels < 1 or channels > limits.max_channels:
        raise AudioLimitError(
            f"the audio has {channels} channels; at most {limits.max_channels} are accepted (record in mono)",
            "too_many_channels",
        )
    if sample_rate < 1 or sample_rate > limits.max_sample_rate:
        raise AudioLimitError(
            f"the audio's sample rate is {sample_rate} Hz; at most {limits.max_sample_rate} Hz is accepted",
            "unsupported_sample_rate",
        )
    if frames < UNKNOWN_FRAMES and frames > limits.max_seconds * sample_rate:
        raise _too_long(frames / sample_rate, limits)


def _read_blocks(handle: soundfile.SoundFile, max_frames: int, limits: AudioLimits) -> np.ndarray:
    blocks: list[np.ndarray] = []
    total = 0
    while True:
        block = handle.read(limits.block_frames, dtype="float32", always_2d=True)
        if block.shape[0] == 0:
            break
        total += block.shape[0]
        if total > max_frames:  # the header understated the length
            raise _too_long(total / handle.samplerate, limits, at_least=True)
        blocks.append(block.mean(axis=1, dtype=np.float32))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def _too_long(seconds: float, limits: AudioLimits, *, at_least: bool = False) -> AudioLimitError:
    length = f"{'over ' if at_least else ''}{seconds:.1f} s"
    return AudioLimitError(f"the {limits.what} is {length} long; a {limits.what} may be at most {limits.max_seconds:.0f} s",
                           "take_too_long")


# WAV sizes are 32-bit; a longer unfinished file is not repaired (it reads as empty).
_MAX_WAV_BYTES = 0xFFFF_FFFF
# Recorders write a handful of chunks before the samples; a file of millions of empty chunks
# (20 MB of 8-byte headers took 1.1 s to walk) is not looked through for a data chunk to repair.
_MAX_WAV_CHUNKS = 64


def _source(path: Path, max_bytes: int = _MAX_WAV_BYTES) -> str | io.BytesIO:
    """What soundfile should read: the path, or a repaired copy of an unfinished WAV (held in
    memory, so only when the file is at most ``max_bytes`` long)."""
    repaired = _finished_wav(path) if path.stat().st_size <= min(max_bytes, _MAX_WAV_BYTES) else None
    return str(path) if repaired is None else io.BytesIO(repaired)


def _finished_wav(path: Path) -> bytes | None:
    """A WAV whose recorder stopped before writing its sizes (data chunk size 0, samples after
    it) with the sizes filled in from the file's length; None for any other file.

    libsndfile trusts the size and reads such a file as empty; sox and ffmpeg read on to the
    end of the file, and so do we.
    """
    with path.open("rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        for _ in range(_MAX_WAV_CHUNKS):
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                break
            handle.seek(size + size % 2, io.SEEK_CUR)  # chunks are padded to an even length
        else:
            return None
        data_start = handle.tell()
        if size != 0:
            return None
        handle.seek(0)
        repaired = bytearray(handle.read())
    if len(repaired) == data_start:
        return None  # nothing recorded: the file is reported as holding no samples
    repaired[4:8] = (len(repaired) - 8).to_bytes(4, "little")
    repaired[data_start - 4 : data_start] = (len(repaired) - data_start).to_bytes(4, "little")
    return bytes(repaired)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D waveform with soxr (high quality). Returns float32."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    wave = np.asarray(wave, dtype=np.float32)
    if orig_sr == target_sr or wave.size == 0:
        return wave.copy()
    return soxr.resample(wave, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def save_wav(path: str | Path, wave: np.ndarray | torch.Tensor, sample_rate: int) -> None:
    """Write a mono 16-bit PCM WAV atomically (temp file in the same folder, then rename).

    Samples are clipped to [-1, 1]; the parent folder is created if needed. A reader
    never sees a half-written file, and an existing file is only replaced on success.
    """
    path = Path(path)
    pcm = _to_pcm16(wave, sample_rate)
    with atomic_path(path) as temp:
        soundfile.write(temp, pcm, sample_rate, format="WAV", subtype="PCM_16")


def wav_bytes(wave: np.ndarray | torch.Tensor, sample_rate: int) -> bytes:
    """The bytes of a mono 16-bit PCM WAV file holding `wave` (clipped to [-1, 1])."""
    pcm = _to_pcm16(wave, sample_rate)
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def pcm16_round_trip(wave: np.ndarray | torch.Tensor) -> np.ndarray:
    """What `load_audio` returns for `wave` after `save_wav`: 16-bit quantised, float32 in [-1, 1).

    Lets a caller use the saved signal without reading the file back.
    """
    return (_to_pcm16(wave, 1).astype(np.float32) / 32768.0).astype(np.float32)


def _to_pcm16(wave: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray:
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if hasattr(wave, "detach"):  # a torch.Tensor (duck-typed: this module does not import torch)
        wave = wave.detach().cpu().numpy()
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2 and 1 in wave.shape:
        wave = wave.reshape(-1)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {wave.shape}")
    wave = np.clip(np.nan_to_num(wave), -1.0, 1.0)
    return np.round(wave * 32767.0).astype(np.int16)
