import os
import wave as wave_module
from io import BytesIO

import numpy as np
import pytest
import soundfile
import torch

from moksori.audio import (
    AudioError,
    load_audio,
    load_audio_with_rate,
    pcm16_round_trip,
    resample,
    save_wav,
    wav_bytes,
)

from moksori.audio.io import AudioLimitError, AudioLimits, load_audio_bounded

from support.pyav import write_with_pyav

RATE = 22050


def sine(frequency: float, seconds: float, sample_rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    time = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def dominant_frequency(wave: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.argmax(spectrum) * sample_rate / wave.size)


def test_save_wav_then_load_round_trips_16_bit(tmp_path):
    tone = sine(440, 0.5)
    path = tmp_path / "tone.wav"
    save_wav(path, tone, RATE)

    info = soundfile.info(str(path))
    assert info.subtype == "PCM_16" and info.samplerate == RATE and info.channels == 1
    loaded = load_audio(path, sample_rate=None)
    assert loaded.dtype == np.float32
    np.testing.assert_allclose(loaded, tone, atol=2 / 32768)


def test_save_wav_clips_to_full_scale_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "loud.wav"
    save_wav(path, np.array([2.0, -3.0, 0.25], dtype=np.float32), RATE)

    loaded = load_audio(path, sample_rate=None)
    np.testing.assert_allclose(loaded, [32767 / 32768, -32767 / 32768, 0.25], atol=1e-4)
    assert os.listdir(path.parent) == ["loud.wav"]


def test_save_wav_accepts_torch_tensor_and_replaces_existing_file(tmp_path):
    path = tmp_path / "take.wav"
    save_wav(path, np.zeros(100, dtype=np.float32), RATE)
    save_wav(path, torch.full((200,), 0.5), RATE)
    loaded = load_audio(path, sample_rate=None)
    assert loaded.size == 200
    assert loaded[0] == pytest.approx(0.5, abs=1e-4)


def test_save_wav_rejects_multichannel(tmp_path):
    with pytest.raises(ValueError, match="mono"):
        save_wav(tmp_path / "x.wav", np.zeros((2, 100), dtype=np.float32), RATE)
    assert not list(tmp_path.iterdir())


def test_wav_bytes_is_a_readable_16_bit_wav():
    tone = sine(300, 0.2)
    data = wav_bytes(tone, 16000)
    with wave_module.open(BytesIO(data)) as reader:
        assert reader.getframerate() == 16000
        assert reader.getsampwidth() == 2
        assert reader.getnchannels() == 1
        assert reader.getnframes() == tone.size
    decoded, rate = soundfile.read(BytesIO(data), dtype="float32")
    np.testing.assert_allclose(decoded, tone, atol=2 / 32768)


@pytest.mark.parametrize("suffix, tolerance", [(".flac", 2e-4), (".ogg", 0.05)])
def test_load_flac_and_ogg(tmp_path, suffix, tolerance):
    tone = sine(440, 1.0)
    path = tmp_path / f"tone{suffix}"
    soundfile.write(str(path), tone, RATE)

    loaded, rate = load_audio_with_rate(path)
    assert rate == RATE
    assert loaded.dtype == np.float32
    if suffix == ".flac":
        np.testing.assert_allclose(loaded, tone, atol=tolerance)
    else:
        # Lossy: compare length (within codec padding) and pitch.
        assert abs(loaded.size - tone.size) < 2048
        assert dominant_frequency(loaded, rate) == pytest.approx(440, abs=3)


def test_load_mp3(tmp_path):
    tone = sine(440, 1.0)
    path = tmp_path / "tone.mp3"
    try:
        soundfile.write(str(path), tone, RATE, format="MP3", subtype="MPEG_LAYER_III")
    except (soundfile.LibsndfileError, ValueError, TypeError) as error:
        pytest.skip(f"this libsndfile cannot write mp3 to make a test file: {error}")

    loaded, rate = load_audio_with_rate(path)
    assert rate == RATE
    assert abs(loaded.size - tone.size) < 4096
    assert dominant_frequency(loaded, rate) == pytest.approx(440, abs=3)


def test_stereo_is_averaged_to_mono(tmp_path):
    left = np.full(1000, 0.6, dtype=np.float32)
    right = np.full(1000, 0.2, dtype=np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), np.stack([left, right], axis=1), RATE, subtype="FLOAT")

    loaded = load_audio(path, sample_rate=None)
    assert loaded.shape == (1000,)
    np.testing.assert_allclose(loaded, 0.4, atol=1e-6)


def test_float_file_past_full_scale_is_scaled_down_not_clipped(tmp_path):
    path = tmp_path / "hot.wav"
    soundfile.write(str(path), np.array([1.5, -2.0, 0.5], dtype=np.float32), RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, sample_rate=None), [0.75, -1.0, 0.25])


def test_a_loud_float_recording_keeps_its_peaks(tmp_path):
    path = tmp_path / "loud.wav"
    loud = sine(220, 1.0, amplitude=1.5)
    soundfile.write(str(path), loud, RATE, subtype="FLOAT")
    loaded = load_audio(path, sample_rate=None)
    np.testing.assert_allclose(loaded, loud / np.abs(loud).max(), atol=1e-6)


def test_load_resamples_to_requested_rate(tmp_path):
    path = tmp_path / "tone44k.wav"
    soundfile.write(str(path), sine(1000, 1.0, sample_rate=44100), 44100)

    loaded = load_audio(path)  # default 22050
    assert abs(loaded.size - 22050) <= 1
    assert dominant_frequency(loaded, 22050) == pytest.approx(1000, abs=2)


@pytest.mark.parametrize("orig_sr, target_sr", [(44100, 22050), (16000, 22050), (48000, 16000)])
def test_resample_length_and_frequency(orig_sr, target_sr):
    tone = sine(440, 1.0, sample_rate=orig_sr)
    out = resample(tone, orig_sr, target_sr)
    assert out.dtype == np.float32
    assert abs(out.size - target_sr) <= 1
    assert dominant_frequency(out, target_sr) == pytest.approx(440, abs=2)
    # Amplitude is preserved away from the edges.
    assert np.max(np.abs(out[100:-100])) == pytest.approx(0.5, abs=0.01)


def test_resample_same_rate_is_a_copy():
    tone = sine(440, 0.1)
    out = resample(tone, RATE, RATE)
    np.testing.assert_array_equal(out, tone)
    assert out is not tone


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere.wav"
    with pytest.raises(AudioError, match="nowhere.wav.*not found"):
        load_audio(path)


def test_text_file_renamed_wav_is_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio at all\n" * 10)
    with pytest.raises(AudioError, match="notes.wav.*not a readable audio file"):
        load_audio(path)


def test_empty_file_is_reported(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioError, match="empty.wav.*empty"):
        load_audio(path)


def test_zero_length_audio_is_reported(tmp_path):
    path = tmp_path / "zero.wav"
    soundfile.write(str(path), np.zeros(0, dtype=np.float32), RATE)
    assert path.stat().st_size > 0
    with pytest.raises(AudioError, match="zero.wav.*no samples"):
        load_audio(path)


def test_directory_is_not_audio(tmp_path):
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)


def test_audio_error_is_a_value_error(tmp_path):
    """Callers that catch ValueError catch bad audio: real bad files, caught as ValueError."""
    nan = tmp_path / "nan.wav"
    samples = sine(440, 0.1)
    samples[100] = np.nan
    soundfile.write(str(nan), samples, RATE, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"nan\.wav: audio contains NaN or infinite samples") as caught:
        load_audio(nan)
    assert type(caught.value) is AudioError

    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav_bytes(sine(440, 0.1), RATE)[:30])  # a RIFF header cut short
    with pytest.raises(ValueError, match=r"cut\.wav: not a readable audio file \(.+\)") as caught:
        load_audio_with_rate(cut)
    assert type(caught.value) is AudioError


def test_pcm16_round_trip_equals_save_then_load(tmp_path):
    wave = np.random.default_rng(3).uniform(-1.2, 1.2, 4000).astype(np.float32)
    path = tmp_path / "q.wav"
    save_wav(path, wave, 22050)
    np.testing.assert_array_equal(pcm16_round_trip(wave), load_audio(path, 22050))


def _unfinished_wav(path, wave: np.ndarray) -> None:
    """A WAV as a recorder leaves it when stopped before it writes the sizes: both are 0."""
    buffer = BytesIO()
    soundfile.write(buffer, wave, RATE, subtype="PCM_16", format="WAV")
    data = bytearray(buffer.getvalue())
    data_start = data.find(b"data") + 8
    data[4:8] = bytes(4)
    data[data_start - 4 : data_start] = bytes(4)
    path.write_bytes(bytes(data))


def test_a_wav_whose_recorder_never_wrote_the_sizes_is_read_to_its_end(tmp_path):
    path = tmp_path / "unfinished.wav"
    tone = sine(440, 0.5)
    _unfinished_wav(path, tone)
    assert soundfile.info(str(path)).frames == 0  # what libsndfile alone makes of it
    np.testing.assert_allclose(load_audio(path, sample_rate=None), tone, atol=1 / 32768)
    wave, rate = load_audio_bounded(path, AudioLimits(max_seconds=2))
    assert rate == RATE and wave.size == tone.size
    with pytest.raises(AudioLimitError, match="at most 1 s"):
        _unfinished_wav(path, sine(440, 1.5))
        load_audio_bounded(path, AudioLimits(max_seconds=1))


def test_an_unfinished_wav_with_nothing_recorded_holds_no_samples(tmp_path):
    path = tmp_path / "nothing.wav"
    _unfinished_wav(path, np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError, match="no samples"):
        load_audio(path)


def test_an_unfinished_wav_behind_a_thousand_chunks_is_not_repaired(tmp_path):
    """The repair walks the chunks before the samples; a hostile file of 8-byte empty chunks (a
    20 MB upload holds 2.6 million) would cost seconds of walking, so only the first 64 are looked at."""
    path = tmp_path / "chunks.wav"
    _unfinished_wav(path, sine(440, 0.1))
    data = path.read_bytes()
    data_chunk = data.find(b"data")
    path.write_bytes(data[:data_chunk] + (b"JUNK" + bytes(4)) * 1000 + data[data_chunk:])
    with pytest.raises(AudioError, match="no samples"):  # read as libsndfile reads it: empty
        load_audio_bounded(path, AudioLimits(max_seconds=2))


def write_m4a(path, wave: np.ndarray, sample_rate: int) -> None:
    """An AAC .m4a (a phone's voice memo), stereo."""
    write_with_pyav(path, np.stack([wave, wave]).astype(np.float32), sample_rate, "mp4", "aac")


def test_load_m4a_which_libsndfile_cannot_read(tmp_path):
    tone = sine(440, 1.0, sample_rate=48000)
    path = tmp_path / "memo.m4a"
    write_m4a(path, tone, 48000)

    loaded, rate = load_audio_with_rate(path)
    assert rate == 48000
    assert abs(loaded.size - tone.size) < 4096  # the codec's priming and padding
    assert dominant_frequency(loaded, rate) == pytest.approx(440, abs=3)
    bounded, bounded_rate = load_audio_bounded(path, AudioLimits(max_seconds=5))
    assert bounded_rate == 48000 and bounded.size == loaded.size
    with pytest.raises(AudioLimitError) as error:
        load_audio_bounded(path, AudioLimits(max_seconds=0.5))
    assert error.value.code == "take_too_long"
    with pytest.raises(AudioLimitError) as error:
        load_audio_bounded(path, AudioLimits(max_seconds=5, max_channels=1))
    assert error.value.code == "too_many_channels"
