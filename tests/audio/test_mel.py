import librosa
import numpy as np
import pytest
import torch

from moksori.audio import MelConfig, MelSpectrogram, griffin_lim, mel_spectrogram

RATE = 22050


def reference_log_mel(wave: np.ndarray, config: MelConfig = MelConfig()) -> np.ndarray:
    """HiFi-GAN's convention written with numpy/librosa, in float64."""
    wave = wave.astype(np.float64)
    padding = (config.n_fft - config.hop_length) // 2
    padded = np.pad(wave, (padding, padding), mode="reflect")
    spectrum = librosa.stft(
        padded,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window="hann",
        center=False,
    )
    magnitude = np.sqrt(np.abs(spectrum) ** 2 + 1e-9)
    basis = librosa.filters.mel(
        sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax,
        dtype=np.float64,
    )
    return np.log(np.maximum(basis @ magnitude, 1e-5))


def noise(samples: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, samples).astype(np.float32)


def chirp(samples: int) -> np.ndarray:
    return (0.5 * librosa.chirp(fmin=60, fmax=10000, sr=RATE, length=samples)).astype(np.float32)


def test_matches_reference_on_noise():
    wave = noise(256 * 100)
    mel = mel_spectrogram(wave)
    assert mel.dtype == torch.float32
    np.testing.assert_allclose(mel.numpy(), reference_log_mel(wave), rtol=0, atol=1e-4)


def test_matches_reference_on_chirp_in_float64():
    # A pure chirp leaves many bands near the 1e-5 clamp, where float32 FFT rounding
    # alone moves the log by ~1e-2; in float64 the convention must match exactly.
    wave = chirp(256 * 120)
    module = MelSpectrogram(dtype=torch.float64)
    mel = module(torch.from_numpy(wave.astype(np.float64)))
    np.testing.assert_allclose(mel.numpy(), reference_log_mel(wave), rtol=0, atol=1e-4)


def test_matches_reference_on_chirp_with_noise_floor_in_float32():
    wave = chirp(256 * 120) + 0.05 * noise(256 * 120, seed=1)
    mel = mel_spectrogram(wave)
    np.testing.assert_allclose(mel.numpy(), reference_log_mel(wave), rtol=0, atol=1e-4)


def test_frame_count_and_shape():
    for frames in (4, 37, 100):
        assert mel_spectrogram(noise(256 * frames)).shape == (80, frames)
    # Not a multiple of the hop: a partial last hop gives no extra frame.
    assert mel_spectrogram(noise(256 * 10 + 100)).shape == (80, 10)


def test_batch_equals_per_item():
    waves = np.stack([noise(256 * 50, seed=seed) for seed in range(3)])
    batched = mel_spectrogram(waves)
    assert batched.shape == (3, 80, 50)
    for index in range(3):
        torch.testing.assert_close(batched[index], mel_spectrogram(waves[index]), atol=1e-5, rtol=0)


def test_module_accepts_torch_and_is_differentiable():
    wave = torch.from_numpy(noise(256 * 20)).requires_grad_(True)
    mel = MelSpectrogram()(wave)
    mel.mean().backward()
    assert wave.grad is not None and torch.isfinite(wave.grad).all()


def test_silence_is_clamped():
    mel = mel_spectrogram(np.zeros(256 * 10, dtype=np.float32))
    # sqrt(1e-9) per bin keeps it just above the clamp; it must never go below log(1e-5).
    assert mel.min().item() >= np.log(1e-5) - 1e-6
    assert mel.max().item() < np.log(1e-3)


def test_buffers_move_with_module_and_are_not_saved():
    module = MelSpectrogram().to(torch.float64)
    assert module.window.dtype == torch.float64
    assert module.mel_basis.shape == (80, 513)
    assert module.state_dict() == {}


def test_other_sample_rate_is_refused_naming_both():
    with pytest.raises(ValueError, match="16000.*22050"):
        mel_spectrogram(noise(16000), sample_rate=16000)


def test_custom_config():
    config = MelConfig(sample_rate=16000, n_fft=512, hop_length=128, win_length=512, n_mels=40, fmax=7600.0)
    wave = noise(128 * 30)
    mel = mel_spectrogram(wave, 16000, config=config)
    assert mel.shape == (40, 30)
    np.testing.assert_allclose(mel.numpy(), reference_log_mel(wave, config), rtol=0, atol=1e-4)


def test_too_short_wave_is_a_clear_error():
    with pytest.raises(ValueError, match="too short"):
        mel_spectrogram(noise(100))


def test_config_dict_round_trip():
    config = MelConfig(n_mels=100, fmax=None)
    assert MelConfig.from_dict(config.to_dict()) == config
    assert MelConfig().to_dict()["hop_length"] == 256
    with pytest.raises(ValueError, match="hop_size"):
        MelConfig.from_dict({"hop_size": 256})


def test_griffin_lim_recovers_a_sine_frequency():
    time = np.arange(256 * 86) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 440 * time)).astype(np.float32)
    mel = mel_spectrogram(tone)

    wave = griffin_lim(mel, n_iter=16)

    assert wave.dtype == np.float32
    assert wave.shape == (256 * 86,)
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    assert np.argmax(spectrum) * RATE / wave.size == pytest.approx(440, abs=30)
    # Loudness in the same range as the original.
    assert 0.1 < np.sqrt(np.mean(wave**2)) / np.sqrt(np.mean(tone**2)) < 10


def test_griffin_lim_rejects_wrong_shape():
    with pytest.raises(ValueError, match="80"):
        griffin_lim(np.zeros((40, 10)))
