"""WaveGlow: invertibility, log-determinant against a numerical Jacobian, NVIDIA's names, the
denoiser, the adapter's controls and noise, half precision, ONNX, and the pickled-checkpoint importer."""

from __future__ import annotations

import math
import pickle
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from moksori.checkpoint import CheckpointError, read_pickled_module, to_legacy_weight_norm_names
from moksori.models import onnx_runners
from moksori.models.interfaces import Controls
from moksori.models.onnx_runners import SpectralDenoiser, hann_window, istft, stft
from moksori.models.waveglow import (
    DEFAULT_SIGMA,
    Denoiser,
    WaveGlow,
    WaveGlowConfig,
    WaveGlowLoss,
    WaveGlowVocoder,
    import_reference,
    load_reference_waveglow,
    reference_config,
    reference_state_dict,
)

HOP = 256


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0, dtype: torch.dtype = torch.float32, **changes) -> WaveGlow:
    """A tiny WaveGlow whose couplings are not the identity (its zero ``end`` layers get weights)."""
    torch.manual_seed(seed)
    model = WaveGlow(WaveGlowConfig(**{**WaveGlowConfig.preset("tiny").to_dict(), **changes}))
    with torch.no_grad():
        for wn in model.WN:
            wn.end.weight.normal_(0.0, 0.1)
            wn.end.bias.normal_(0.0, 0.1)
    return model.to(dtype)


# --- the flow ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_audio_to_z_to_audio_is_the_identity(dtype, atol):
    model = tiny_model(dtype=dtype)
    generator = torch.Generator().manual_seed(1)
    mel = torch.randn(2, 80, 6, generator=generator).to(dtype)
    audio = (0.3 * torch.randn(2, 6 * HOP, generator=generator)).to(dtype)
    z, log_s, log_det_w = model(mel, audio)
    assert z.shape == (2, 8, 6 * HOP // 8) and len(log_s) == len(log_det_w) == 4
    assert not torch.allclose(z, audio.reshape(2, -1, 8).transpose(1, 2), atol=1e-2)  # the flow does something
    torch.testing.assert_close(model.reverse(mel, z), audio, atol=atol, rtol=0)


def test_early_outputs_come_first_in_z_and_reverse_takes_them_back():
    # 6 flows, early every 2: flows 2 and 4 each output 2 channels; 4 remain.
    model = tiny_model(n_flows=6, n_early_every=2, n_early_size=2).double()
    assert [c.conv.weight.shape[0] for c in model.convinv] == [8, 8, 6, 6, 4, 4]
    assert model.n_remaining_channels == model.config.n_remaining_channels == 4
    mel, audio = torch.randn(1, 80, 2, dtype=torch.double), torch.randn(1, 2 * HOP, dtype=torch.double)
    z, _, _ = model(mel, audio)
    torch.testing.assert_close(model.reverse(mel, z), audio, atol=1e-12, rtol=0)


def test_log_determinant_equals_a_numerical_one():
    model = tiny_model(dtype=torch.float64)
    generator = torch.Generator().manual_seed(2)
    mel = torch.randn(1, 80, 1, generator=generator, dtype=torch.float64)
    audio = 0.3 * torch.randn(1, 64, generator=generator, dtype=torch.float64)

    def flow(x: torch.Tensor) -> torch.Tensor:
        return model(mel, x.view(1, -1))[0].reshape(-1)

    jacobian = torch.autograd.functional.jacobian(flow, audio.view(-1))
    numerical = torch.linalg.slogdet(jacobian)[1]
    _, log_s, log_det_w = model(mel, audio)
    analytic = sum(s.sum() for s in log_s) + sum(log_det_w)
    assert abs(float(numerical)) > 0.1  # a non-trivial volume change
    torch.testing.assert_close(analytic, numerical, atol=1e-9, rtol=0)


def test_loss_is_the_per_sample_negative_log_likelihood():
    model = tiny_model(dtype=torch.float64)
    mel, audio = torch.randn(2, 80, 1, dtype=torch.float64), torch.randn(2, 128, dtype=torch.float64)
    out = model(mel, audio)
    z, log_s, log_det_w = out
    sigma = 0.7
    expected = ((z**2).sum() / (2 * sigma**2) - sum(s.sum() for s in log_s) - sum(log_det_w)) / z.numel()
    torch.testing.assert_close(WaveGlowLoss(sigma)(out), expected)


def test_inputs_that_do_not_fit_are_refused():
    model = tiny_model()
    with pytest.raises(ValueError, match="multiple of n_group 8"):
        model(torch.zeros(1, 80, 4), torch.zeros(1, 1001))
    with pytest.raises(ValueError, match="2 mel frames cover at most 768 samples"):
        model(torch.zeros(1, 80, 2), torch.zeros(1, 1024))
    with pytest.raises(ValueError, match="WaveGlowConfig.n_early_size: outputs 8 of 8 channels"):
        WaveGlowConfig(n_group=8, n_flows=12, n_early_every=4, n_early_size=4)
    with pytest.raises(ValueError, match="WaveGlowConfig.WN_config: kernel_size must be odd"):
        WaveGlowConfig(WN_config={"n_layers": 2, "n_channels": 8, "kernel_size": 2})
    with pytest.raises(ValueError, match=r"unknown key\(s\) colour"):
        WaveGlowConfig.from_dict({"colour": 1})


def test_a_frames_audio_depends_only_on_mel_within_the_declared_receptive_field():
    model = tiny_model().eval()
    reach = model.receptive_field_frames()
    frames, probe = 4 * reach + 8, 2 * reach + 4
    mel = torch.randn(1, 80, frames)
    z = torch.randn(1, 8, model.groups(frames))
    changed = mel.clone()
    changed[:, :, probe] += 1.0
    with torch.no_grad():
        diff = (model.reverse(changed, z) - model.reverse(mel, z)).abs()[0].view(frames, HOP).amax(dim=1)
    touched = torch.nonzero(diff > 0).flatten()
    assert touched.numel() > 0
    assert probe - reach <= int(touched.min()) and int(touched.max()) <= probe + reach
    # The published config reaches ~100 frames each way: streaming vocodes whole sentences.
    assert WaveGlow(WaveGlowConfig.preset("base")).receptive_field_frames() == 100
    assert WaveGlowVocoder.context_frames is None


def test_parameter_names_are_nvidias():
    model = WaveGlow(WaveGlowConfig.preset("base"))
    keys = set(to_legacy_weight_norm_names(model.state_dict()))
    expected = {"upsample.weight", "upsample.bias"}
    sizes = [8, 8, 8, 8, 6, 6, 6, 6, 4, 4, 4, 4]
    for k, size in enumerate(sizes):
        expected.add(f"convinv.{k}.conv.weight")
        assert model.convinv[k].conv.weight.shape == (size, size, 1)
        wn = f"WN.{k}."
        expected |= {f"{wn}start.weight_g", f"{wn}start.weight_v", f"{wn}start.bias", f"{wn}end.weight", f"{wn}end.bias",
                     f"{wn}cond_layer.weight_g", f"{wn}cond_layer.weight_v", f"{wn}cond_layer.bias"}
        for i in range(8):
            for layer in ("in_layers", "res_skip_layers"):
                expected |= {f"{wn}{layer}.{i}.weight_g", f"{wn}{layer}.{i}.weight_v", f"{wn}{layer}.{i}.bias"}
    assert keys == expected
    assert model.WN[0].cond_layer.weight.shape == (2 * 256 * 8, 640, 1)
    assert model.WN[11].end.weight.shape == (4, 256, 1)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 87.9  # the published model's size


# --- denoiser ------------------------------------------------------------------------------


def _tone(freq: float, samples: int, amplitude: float) -> torch.Tensor:
    t = torch.arange(samples, dtype=torch.float64) / 22050
    return (amplitude * torch.sin(2 * math.pi * freq * t)).float()


def _band_energy(audio: torch.Tensor, freq: float) -> float:
    spectrum = torch.fft.rfft(audio.double()).abs()
    bin_ = round(freq * audio.numel() / 22050)
    return float(spectrum[bin_ - 3 : bin_ + 4].pow(2).sum())


def test_denoiser_removes_a_tone_added_to_its_bias():
    samples = 22050
    hiss = _tone(5000.0, samples, 0.05)
    speech = _tone(440.0, samples, 0.5)
    denoiser = Denoiser(hiss, n_fft=1024, hop=256, win=1024)
    noisy = speech + hiss
    out = denoiser(noisy, strength=1.0)
    assert out.shape == noisy.shape and out.dtype == noisy.dtype
    inner = slice(2048, samples - 2048)  # away from the edges, where the zero padding changes the spectrum
    assert _band_energy(out[inner], 5000.0) < 0.01 * _band_energy(noisy[inner], 5000.0)
    assert _band_energy(out[inner], 440.0) == pytest.approx(_band_energy(speech[inner], 440.0), rel=0.02)
    # Strength 0 changes nothing but the STFT round trip; a batch is denoised row by row.
    torch.testing.assert_close(denoiser(noisy, strength=0.0), noisy, atol=1e-5, rtol=0)
    batch = torch.stack([noisy, speech])
    torch.testing.assert_close(denoiser(batch, 1.0)[0], out, atol=1e-6, rtol=0)
    assert denoiser(torch.zeros(100), 0.5).shape == (100,)  # shorter than half a window


def test_numpy_denoiser_removes_a_tone_added_to_its_bias():
    samples = 22050
    hiss = _tone(5000.0, samples, 0.05).numpy()
    speech = _tone(440.0, samples, 0.5).numpy()
    denoiser = SpectralDenoiser(hiss, n_fft=1024, hop=256, win=1024)
    noisy = speech + hiss
    out = denoiser.denoise(noisy, strength=1.0)
    assert out.shape == noisy.shape and out.dtype == np.float32
    inner = slice(2048, samples - 2048)
    energy = lambda audio, freq: _band_energy(torch.from_numpy(np.ascontiguousarray(audio[inner])), freq)  # noqa: E731
    assert energy(out, 5000.0) < 0.01 * energy(noisy, 5000.0)
    assert energy(out, 440.0) == pytest.approx(energy(speech, 440.0), rel=0.02)
    np.testing.assert_allclose(denoiser.denoise(noisy, strength=0.0), noisy, atol=1e-5)
    np.testing.assert_allclose(denoiser.denoise(np.stack([noisy, speech]), 1.0)[0], out, atol=1e-6)
    assert denoiser.denoise(np.zeros(100, np.float32), 0.5).shape == (100,)


@pytest.mark.parametrize("n_fft, hop, win, samples", [(1024, 256, 1024, 5000), (512, 256, 512, 100),
                                                      (1024, 300, 800, 3001)])
def test_numpy_stft_frames_as_torch_stft_and_inverts_as_torch_istft(n_fft, hop, win, samples):
    # The framing of NVIDIA's denoiser: centred frames, zero padding, a periodic Hann window.
    audio = np.random.default_rng(samples).standard_normal((2, samples)).astype(np.float32)
    window = hann_window(win, n_fft)
    spec = stft(audio, n_fft, hop, window)
    expected = torch.stft(torch.from_numpy(audio), n_fft, hop, win, torch.hann_window(win), center=True,
                          pad_mode="constant", return_complex=True).numpy()
    np.testing.assert_allclose(spec, expected, atol=2e-4)
    changed = spec * np.exp(1j * np.linspace(0, 1, spec.shape[1]))[None, :, None]  # not a plain round trip
    expected_wave = torch.istft(torch.from_numpy(changed), n_fft, hop, win, torch.hann_window(win, dtype=torch.float64),
                                center=True, length=samples).numpy()
    np.testing.assert_allclose(istft(changed, n_fft, hop, window, samples), expected_wave, atol=1e-9)


def test_denoiser_of_a_vocoder_is_its_zero_mel_output():
    model = tiny_model().eval()
    model.remove_weight_norm()
    denoiser = Denoiser.for_vocoder(model)
    with torch.no_grad():
        bias = model.reverse(torch.zeros(1, 80, 88), torch.zeros(1, 8, model.groups(88)))
    assert float(bias.abs().max()) > 0
    # Subtracting the full bias from the bias itself leaves (almost) nothing.
    with torch.no_grad():
        cleaned = denoiser(bias[0], strength=1.0)
    inner = slice(2048, -2048)
    assert float(cleaned[inner].pow(2).mean()) < 0.05 * float(bias[0, inner].pow(2).mean())


# --- the adapter ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vocoder() -> WaveGlowVocoder:
    model = tiny_model(seed=3).eval()
    model.remove_weight_norm()
    model.store_inverse()
    return WaveGlowVocoder(model).eval()


def test_vocoder_output_is_repeatable_and_follows_sigma_and_denoise(vocoder):
    mel = torch.randn(80, 20, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        plain = vocoder.infer(mel, Controls(denoise=0.0))
        assert plain.shape == (20 * HOP,) and torch.isfinite(plain).all()
        torch.testing.assert_close(vocoder.infer(mel, Controls(denoise=0.0)), plain, atol=0, rtol=0)
        # Defaults: sigma 0.666 and the denoiser at 0.01.
        torch.testing.assert_close(vocoder.infer(mel), vocoder.infer(mel, Controls(sigma=DEFAULT_SIGMA, denoise=0.01)))
        assert not torch.allclose(vocoder.infer(mel), plain)
        quiet = vocoder.infer(mel, Controls(sigma=0.0, denoise=0.0))
        loud = vocoder.infer(mel, Controls(sigma=1.0, denoise=0.0))
        assert not torch.allclose(quiet, plain) and not torch.allclose(loud, plain)
        # sigma 0: no noise at all, so the seed does not matter.
        torch.testing.assert_close(WaveGlowVocoder(vocoder.model, seed=9).infer(mel, Controls(sigma=0.0, denoise=0.0)),
                                   quiet, atol=0, rtol=0)
        assert not torch.allclose(WaveGlowVocoder(vocoder.model, seed=9).infer(mel, Controls(denoise=0.0)), plain)
        # A request's seed overrides the adapter's.
        torch.testing.assert_close(vocoder.infer(mel, Controls(denoise=0.0, seed=9)),
                                   WaveGlowVocoder(vocoder.model, seed=9).infer(mel, Controls(denoise=0.0)), atol=0, rtol=0)


def test_a_batch_row_sounds_as_it_does_alone(vocoder):
    generator = torch.Generator().manual_seed(5)
    mels = torch.randn(2, 80, 12, generator=generator)
    with torch.no_grad():
        batch = vocoder.infer(mels, Controls(denoise=0.0))
        for row in range(2):
            torch.testing.assert_close(batch[row], vocoder.infer(mels[row], Controls(denoise=0.0)), atol=1e-6, rtol=0)
        # A longer draw begins with a shorter one's noise: a frame's noise does not depend on the length.
        noise = vocoder.noise(1, 40, 1.0)
        torch.testing.assert_close(vocoder.noise(1, 25, 1.0), noise[:, :, :25], atol=0, rtol=0)


def test_half_precision_path_runs_the_flow_in_the_model_dtype(vocoder):
    # float16 convolutions are a GPU thing; bfloat16 runs the same dtype logic on the CPU.
    model = tiny_model(seed=3).eval()
    model.remove_weight_norm()
    model.store_inverse()
    low = WaveGlowVocoder(model.to(torch.bfloat16)).eval()
    mel = torch.randn(80, 10, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        reference = vocoder.infer(mel, Controls(denoise=0.01))
        out = low.infer(mel, Controls(denoise=0.01))
    assert out.dtype == torch.float32 and low.model.convinv[0].W_inverse.dtype == torch.bfloat16
    assert float((out - reference).abs().max()) < 0.1 * float(reference.abs().max()) + 1e-3


def test_onnx_graph_equals_pytorch(vocoder, tmp_path):
    pytest.importorskip("onnxruntime")
    from moksori.synthesis.onnx_export import _export
    from moksori.synthesis.onnx_runtime import make_session

    path = _export(vocoder, vocoder.onnx_graph(80), tmp_path / "vocoder.onnx", 17)
    session = make_session(path, num_threads=1)
    for frames in (7, 30):
        mel = np.random.default_rng(frames).standard_normal((80, frames)).astype(np.float32)
        controls = Controls(sigma=0.5, denoise=0.0)
        feeds = vocoder.onnx_feeds(mel, controls)
        assert feeds["z"].shape == (1, 8, frames * HOP // 8)
        wave = session.run(["wave"], feeds)[0][0]
        with torch.no_grad():
            expected = vocoder.infer(torch.from_numpy(mel), controls).numpy()
        np.testing.assert_allclose(wave, expected, atol=1e-4)
        denoised = vocoder.onnx_finish(wave, Controls(sigma=0.5))
        with torch.no_grad():
            np.testing.assert_allclose(denoised, vocoder.infer(torch.from_numpy(mel), Controls(sigma=0.5)).numpy(), atol=1e-4)


def test_torch_free_runner_gives_the_adapters_onnx_output(vocoder, tmp_path):
    pytest.importorskip("onnxruntime")
    from moksori.synthesis.onnx_export import _export
    from moksori.synthesis.onnx_runtime import OnnxVocoder

    path = _export(vocoder, vocoder.onnx_graph(80), tmp_path / "vocoder.onnx", 17)
    runner = onnx_runners.vocoder_runner("waveglow", vocoder.model.config.to_dict())
    assert isinstance(vocoder, type(runner)) and type(runner) is onnx_runners.WaveGlowOnnx
    lite, adapter = OnnxVocoder(path, 1, runner), OnnxVocoder(path, 1, vocoder)
    # The bias measured by the graph on zeros is the PyTorch model's.
    np.testing.assert_allclose(runner.denoiser(lite.run_graph).bias_spec, vocoder.denoiser().bias_spec,
                               rtol=1e-4, atol=1e-7)
    mel = np.random.default_rng(8).standard_normal((80, 23)).astype(np.float32)
    outputs = []
    for controls in (Controls(), Controls(seed=4, sigma=0.3), Controls(seed=4, sigma=0.3, denoise=0.0),
                     Controls(seed=5, sigma=1.0, denoise=0.2)):
        got, expected = lite(mel, controls), adapter(mel, controls)
        assert got.shape == (23 * HOP,) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        outputs.append(got)
    assert all(np.abs(a - b).max() > 1e-3 for a, b in zip(outputs, outputs[1:]))  # each control matters
    with torch.no_grad():
        pytorch = vocoder.infer(torch.from_numpy(mel), Controls(seed=5, sigma=1.0, denoise=0.2)).numpy()
    np.testing.assert_allclose(outputs[-1], pytorch, atol=1e-4)


# --- NVIDIA's pickled checkpoints ------------------------------------------------------------


def _nvidia_modules(old_cond_layers: bool = False) -> types.ModuleType:
    """Stand-ins for NVIDIA's ``glow`` module, built here with the same class names, module
    structure and (legacy) weight norm, so that torch.save pickles them as NVIDIA's files do."""
    glow = types.ModuleType("glow")
    wn = nn.utils.weight_norm

    class Invertible1x1Conv(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv1d(c, c, 1, bias=False)
            w = torch.linalg.qr(torch.randn(c, c))[0]
            self.conv.weight.data = w.unsqueeze(-1)

    class WN(nn.Module):
        def __init__(self, n_in, n_mel, n_layers, n_channels, kernel_size):
            super().__init__()
            self.n_layers, self.n_channels = n_layers, n_channels
            self.in_layers, self.res_skip_layers = nn.ModuleList(), nn.ModuleList()
            self.start = wn(nn.Conv1d(n_in, n_channels, 1))
            self.end = nn.Conv1d(n_channels, 2 * n_in, 1)
            if old_cond_layers:
                self.cond_layers = nn.ModuleList(wn(nn.Conv1d(n_mel, 2 * n_channels, 1)) for _ in range(n_layers))
            else:
                self.cond_layer = wn(nn.Conv1d(n_mel, 2 * n_channels * n_layers, 1))
            for i in range(n_layers):
                d = 2**i
                self.in_layers.append(wn(nn.Conv1d(n_channels, 2 * n_channels, kernel_size, dilation=d,
                                                   padding=(kernel_size * d - d) // 2)))
                self.res_skip_layers.append(wn(nn.Conv1d(n_channels, 2 * n_channels if i < n_layers - 1 else n_channels, 1)))

    class WaveGlow(nn.Module):
        def __init__(self, n_mel_channels, n_flows, n_group, n_early_every, n_early_size, WN_config):
            super().__init__()
            self.upsample = nn.ConvTranspose1d(n_mel_channels, n_mel_channels, 1024, stride=256)
            self.n_flows, self.n_group = n_flows, n_group
            self.n_early_every, self.n_early_size = n_early_every, n_early_size
            self.WN, self.convinv = nn.ModuleList(), nn.ModuleList()
            n_half, n_remaining = n_group // 2, n_group
            for k in range(n_flows):
                if k % n_early_every == 0 and k > 0:
                    n_half -= n_early_size // 2
                    n_remaining -= n_early_size
                self.convinv.append(Invertible1x1Conv(n_remaining))
                self.WN.append(WN(n_half, n_mel_channels * n_group, **WN_config))
            self.n_remaining_channels = n_remaining

    for cls in (Invertible1x1Conv, WN, WaveGlow):
        cls.__module__ = "glow"
        cls.__qualname__ = cls.__name__
        setattr(glow, cls.__name__, cls)
    return glow


def _save_nvidia_checkpoint(path, *, legacy: bool = False, old_cond_layers: bool = False, extra=None):
    glow = _nvidia_modules(old_cond_layers)
    sys.modules["glow"] = glow
    try:
        torch.manual_seed(7)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.nn.utils.weight_norm, as NVIDIA uses it
            model = glow.WaveGlow(80, 4, 8, 2, 2, {"n_layers": 2, "n_channels": 16, "kernel_size": 3})
        with torch.no_grad():
            for block in model.WN:
                block.end.weight.normal_(0.0, 0.05)
                block.end.bias.normal_(0.0, 0.05)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        content = {"model": model, "iteration": 580000, "optimizer": None, "learning_rate": 1e-4}
        if extra is not None:
            content["extra"] = extra
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # legacy format: "couldn't retrieve source code"
            torch.save(content, path, _use_new_zipfile_serialization=not legacy)
    finally:
        del sys.modules["glow"]  # the reader must not find (or need) the classes
    return state


def _nvidia_infer(state, mel, z):
    """NVIDIA's inference on their own weight-norm tensors, written out with plain functions."""
    def weight(prefix):
        if prefix + "weight" in state:
            return state[prefix + "weight"]
        g, v = state[prefix + "weight_g"], state[prefix + "weight_v"]
        return g * v / v.flatten(1).norm(dim=1).view(-1, 1, 1)

    spect = torch.nn.functional.conv_transpose1d(mel, state["upsample.weight"], state["upsample.bias"], stride=256)
    spect = spect[:, :, : -(1024 - 256)]
    spect = spect.unfold(2, 8, 8).permute(0, 2, 1, 3).contiguous().view(1, spect.size(2) // 8, -1).permute(0, 2, 1)
    audio = z[:, 2:]  # flow 2 outputs 2 channels early; 6 remain
    for k in reversed(range(4)):
        p = f"WN.{k}."
        n_half = audio.size(1) // 2
        a0, a1 = audio[:, :n_half], audio[:, n_half:]
        h = torch.nn.functional.conv1d(a0, weight(p + "start."), state[p + "start.bias"])
        if p + "cond_layer.bias" in state:
            cond = torch.nn.functional.conv1d(spect, weight(p + "cond_layer."), state[p + "cond_layer.bias"])
        else:
            cond = torch.cat([torch.nn.functional.conv1d(spect, weight(f"{p}cond_layers.{i}."), state[f"{p}cond_layers.{i}.bias"])
                              for i in range(2)], 1)
        out = torch.zeros_like(h)
        for i in range(2):
            x = torch.nn.functional.conv1d(h, weight(f"{p}in_layers.{i}."), state[f"{p}in_layers.{i}.bias"],
                                           dilation=2**i, padding=2**i)
            x = x + cond[:, 32 * i : 32 * (i + 1)]
            acts = torch.tanh(x[:, :16]) * torch.sigmoid(x[:, 16:])
            rs = torch.nn.functional.conv1d(acts, weight(f"{p}res_skip_layers.{i}."), state[f"{p}res_skip_layers.{i}.bias"])
            if i == 0:
                h, out = h + rs[:, :16], out + rs[:, 16:]
            else:
                out = out + rs
        o = torch.nn.functional.conv1d(out, state[p + "end.weight"], state[p + "end.bias"])
        a1 = (a1 - o[:, :n_half]) / torch.exp(o[:, n_half:])
        audio = torch.cat([a0, a1], 1)
        audio = torch.nn.functional.conv1d(audio, torch.linalg.inv(state[f"convinv.{k}.conv.weight"].squeeze(-1)).unsqueeze(-1))
        if k % 2 == 0 and k > 0:
            audio = torch.cat([z[:, 2 * (k // 2 - 1) : 2 * (k // 2)], audio], 1)
    return audio.permute(0, 2, 1).reshape(1, -1)


@pytest.mark.parametrize("legacy, old_cond_layers", [(False, False), (True, False), (False, True)])
def test_nvidia_pickled_checkpoint_imports_and_sounds_the_same(tmp_path, legacy, old_cond_layers):
    path = tmp_path / "waveglow_nvidia.pt"
    state = _save_nvidia_checkpoint(path, legacy=legacy, old_cond_layers=old_cond_layers)
    read = read_pickled_module(path, ["glow.WaveGlow", "glow.WN", "glow.Invertible1x1Conv"])
    assert set(read) == set(state) and all(torch.equal(read[k], state[k]) for k in state)

    config = reference_config(read)
    assert (config.n_flows, config.n_group, config.n_early_every, config.n_early_size) == (4, 8, 2, 2)
    assert config.WN_config == {"n_layers": 2, "n_channels": 16, "kernel_size": 3} and config.win_size == 1024
    model = load_reference_waveglow(read)
    generator = torch.Generator().manual_seed(8)
    mel, z = torch.randn(1, 80, 5, generator=generator), torch.randn(1, 8, 5 * 32, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(model.reverse(mel, z), _nvidia_infer(state, mel, z), atol=1e-5, rtol=1e-4)

    # The importer's state dict loads into a training-layout WaveGlow (weight norm as parametrizations).
    config, converted = import_reference(path)
    trainable = WaveGlow(config)
    trainable.load_state_dict(converted)
    with torch.no_grad():
        torch.testing.assert_close(trainable.reverse(mel, z), _nvidia_infer(state, mel, z), atol=1e-5, rtol=1e-4)


class _TouchOnLoad:
    """Unpickling this would create a file: the proof that the reader runs nothing."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.pt"
    _save_nvidia_checkpoint(path, extra=_TouchOnLoad(marker))
    with pytest.raises(CheckpointError, match=r"hostile.pt: the pickle names (io|builtins).open, which is not allowed"):
        read_pickled_module(path, ["glow.WaveGlow", "glow.WN", "glow.Invertible1x1Conv"])
    assert not marker.exists()
    # Plain unpickling (with NVIDIA's classes importable) would have run it: the threat is real.
    sys.modules["glow"] = _nvidia_modules()
    try:
        torch.load(path, weights_only=False)
    finally:
        del sys.modules["glow"]
    assert marker.exists()


def test_the_classes_a_pickle_names_stay_inert(tmp_path):
    marker = tmp_path / "ran"
    glow = types.ModuleType("glow")

    class WaveGlow(nn.Module):
        def __init__(self):
            super().__init__()
            self.upsample = nn.ConvTranspose1d(2, 2, 4, stride=2)

        def __setstate__(self, state):
            open(state["marker"], "w").close()  # would run if the real class were rebuilt
            super().__setstate__(state)

    WaveGlow.__module__, WaveGlow.__qualname__ = "glow", "WaveGlow"
    glow.WaveGlow = WaveGlow
    sys.modules["glow"] = glow
    try:
        model = WaveGlow()
        model.marker = str(marker)
        torch.save({"model": model}, tmp_path / "ckpt.pt")
        # With the class importable, plain unpickling runs its code ...
        torch.load(tmp_path / "ckpt.pt", weights_only=False)
        assert marker.exists()
        marker.unlink()
        # ... the reader never does, even while the class is importable.
        state = read_pickled_module(tmp_path / "ckpt.pt", ["glow.WaveGlow"])
    finally:
        del sys.modules["glow"]
    assert not marker.exists()
    assert set(state) == {"upsample.weight", "upsample.bias"}
    # A class not allowed is refused by name.
    sys.modules["glow"] = glow
    try:
        torch.save({"model": WaveGlow()}, tmp_path / "other.pt")
    finally:
        del sys.modules["glow"]
    with pytest.raises(CheckpointError, match=r"names glow.WaveGlow, which is not allowed"):
        read_pickled_module(tmp_path / "other.pt", ["glow.WN"])


def test_files_that_are_not_pickled_models_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_pickled_module(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: cannot read the pickled checkpoint"):
        read_pickled_module(tmp_path / "junk.pt")
    torch.save({"model": {"w": torch.zeros(1)}}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="expected a pickled model under 'model'"):
        read_pickled_module(tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="pre-release layout"):
        reference_state_dict({"WN.0.res_layers.0.bias": torch.zeros(1)}, WaveGlowConfig.preset("tiny"))
