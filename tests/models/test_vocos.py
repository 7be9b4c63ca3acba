import dataclasses
import math

import numpy as np
import pytest
import torch

from moksori.audio import MelConfig, MelSpectrogram
from moksori.models import build_model, config_class
from moksori.models.hifigan import mel_loss, multi_resolution_stft_loss
from moksori.models.vocos import InverseSTFT, Vocos, VocosConfig

HOP = 256


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The tensors here are tiny; on a shared 2-core machine extra threads only wait on each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hifigan_stft(wave: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """The mel transform's framing: reflect-pad (n_fft - hop) / 2 each side, no centring."""
    pad = (n_fft - hop) // 2
    padded = torch.nn.functional.pad(wave.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    return torch.stft(padded, n_fft, hop, win, torch.hann_window(win, dtype=wave.dtype), center=False,
                      return_complex=True)


# --- inverse STFT ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_fft, hop, win", [(1024, 256, 1024), (512, 128, 512), (1024, 256, 800),
                                             (400, 100, 400), (64, 16, 48)])
def test_inverse_stft_inverts_the_mel_framing_exactly(n_fft: int, hop: int, win: int) -> None:
    generator = torch.Generator().manual_seed(n_fft + hop + win)
    frames = 23
    wave = torch.randn(2, frames * hop, generator=generator, dtype=torch.float64).float()
    spectrum = hifigan_stft(wave, n_fft, hop, win)
    assert spectrum.shape == (2, n_fft // 2 + 1, frames)
    out = InverseSTFT(n_fft, hop, win)(spectrum.real, spectrum.imag)
    assert out.shape == (2, 1, frames * hop)
    torch.testing.assert_close(out[:, 0], wave, atol=2e-5, rtol=0)


def test_inverse_stft_matches_torch_istft_in_the_interior() -> None:
    # torch.istft (centred) and ours frame differently at the edges; inside they are the same sum.
    n_fft, hop = 1024, 256
    generator = torch.Generator().manual_seed(1)
    spectrum = torch.randn(1, n_fft // 2 + 1, 30, dtype=torch.complex64, generator=generator)
    ours = InverseSTFT(n_fft, hop, n_fft)(spectrum.real, spectrum.imag)[0, 0]
    theirs = torch.istft(spectrum, n_fft, hop, n_fft, torch.hann_window(n_fft), center=True)[0]
    # Ours drops (n_fft - hop) / 2 leading samples of the overlap-add, torch's n_fft / 2.
    shift = n_fft // 2 - (n_fft - hop) // 2
    inner = slice(2 * n_fft, 20 * hop)
    torch.testing.assert_close(ours[inner], theirs[inner.start - shift : inner.stop - shift], atol=1e-5, rtol=1e-4)


def test_inverse_stft_output_length_is_frames_times_hop() -> None:
    istft = InverseSTFT(1024, 256, 1024)
    for frames in (1, 2, 5, 64):
        zeros = torch.zeros(3, 513, frames)
        assert istft(zeros, zeros).shape == (3, 1, frames * 256)


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"kernel_size": 6}, r"VocosConfig.kernel_size: must be odd"),
        ({"win_size": 2048}, r"VocosConfig.win_size: 2048 must not exceed n_fft 1024"),
        ({"win_size": 1023}, r"VocosConfig.win_size: win_size - hop_size \(767\) must be even"),
        ({"segment_size": 8000}, r"VocosConfig.segment_size: 8000 must be a multiple of hop_size 256"),
        ({"dim": 0}, r"VocosConfig.dim: must be positive"),
        ({"num_layers": -1}, r"VocosConfig.num_layers: must be positive"),
    ],
)
def test_config_rejects_bad_values_with_clear_messages(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VocosConfig(**changes)
    with pytest.raises(ValueError, match=message):
        VocosConfig.from_dict({**VocosConfig().to_dict(), **changes})


def test_config_unknown_key_and_preset() -> None:
    with pytest.raises(ValueError, match=r"VocosConfig: unknown keys \['upsample_rates'\]"):
        VocosConfig.from_dict({"upsample_rates": [8, 8, 2, 2]})
    with pytest.raises(ValueError, match=r"unknown Vocos preset 'huge'; choose from \['base', 'small', 'tiny'\]"):
        VocosConfig.preset("huge")


def test_presets_and_round_trip() -> None:
    base, small, tiny = (VocosConfig.preset(name) for name in ("base", "small", "tiny"))
    assert (base.dim, base.intermediate_dim, base.num_layers) == (512, 1536, 8)  # the reference's
    assert small == VocosConfig() and (small.dim, small.intermediate_dim, small.num_layers) == (256, 768, 8)
    assert (tiny.dim, tiny.num_layers, tiny.segment_size) == (32, 2, 2048)
    for config in (base, small, tiny):
        # The audio framing is the project's mel convention, under HiFi-GAN's key names.
        assert (config.n_fft, config.hop_size, config.win_size, config.sampling_rate, config.num_mels) == (
            1024, 256, 1024, 22050, 80)
        assert VocosConfig.from_dict(config.to_dict()) == config
    assert config_class("vocos") is VocosConfig
    model = build_model("vocos", tiny.to_dict())
    assert isinstance(model, Vocos) and model.config == tiny
    n_params = {name: sum(p.numel() for p in Vocos(VocosConfig.preset(name)).parameters())
                for name in ("small", "tiny")}
    assert 3.5e6 < n_params["small"] < 3.7e6 and n_params["tiny"] < 1e5, n_params  # 3.58M, 0.06M


# --- generator -------------------------------------------------------------------------------


def test_output_shapes_and_infer_checks_input() -> None:
    torch.manual_seed(0)
    model = Vocos(VocosConfig.preset("tiny")).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 80, 9)).shape == (2, 1, 9 * HOP)
        assert model.infer(torch.randn(80, 9)).shape == (9 * HOP,)
        assert model.infer(torch.randn(3, 80, 4)).shape == (3, 4 * HOP)
        silence = model.infer(torch.full((80, 5), math.log(1e-5)))
    assert torch.isfinite(silence).all()
    with pytest.raises(ValueError, match=r"expected mel of shape \(batch, 80, frames\), got \(40, 9\)"):
        model.infer(torch.randn(40, 9))
    with pytest.raises(ValueError, match="expected mel"):
        model.infer(torch.randn(1, 1, 80, 9))


def _vocode_span(model: Vocos, mel: torch.Tensor, start: int, end: int, context: int) -> torch.Tensor:
    lo, hi = max(0, start - context), min(mel.shape[-1], end + context)
    with torch.no_grad():
        wave = model.infer(mel[:, lo:hi])
    return wave[(start - lo) * HOP : (end - lo) * HOP]


CONTEXT_CASES = [("tiny", {}), ("tiny", {"kernel_size": 9, "num_layers": 3}), ("small", {})]


def _model(preset: str, overrides: dict) -> Vocos:
    torch.manual_seed(0)
    return Vocos(dataclasses.replace(VocosConfig.preset(preset), **overrides)).eval()


@pytest.mark.parametrize("preset, overrides", CONTEXT_CASES)
def test_context_frames_is_exactly_the_receptive_field(preset: str, overrides: dict) -> None:
    # The audio of frames [start, end) depends on mel frames [start - context, end + context), no more.
    model = _model(preset, overrides)
    context = model.context_frames
    if (preset, overrides) == ("small", {}):
        assert context == 29  # 9 convolutions of kernel 7, plus 2 frames of STFT overlap
    mel = (torch.randn(1, 80, 3 * context + 40, generator=torch.Generator().manual_seed(1)) * 2 - 5).requires_grad_()
    start, end = context + 7, 2 * context + 30
    model(mel)[0, 0, start * HOP : end * HOP].square().sum().backward()
    reached = (mel.grad[0].abs().sum(0) > 0).nonzero().flatten()
    assert (start - int(reached.min()), int(reached.max()) + 1 - end) == (context, context)


@pytest.mark.parametrize("preset, overrides", CONTEXT_CASES)
def test_context_frames_are_enough_to_vocode_a_span_exactly(preset: str, overrides: dict) -> None:
    model = _model(preset, overrides)
    with torch.no_grad():
        # Weights of unit gain: the 0.02 init and 1/num_layers layer scale leave a near-linear net in
        # which a frame's influence on its distant neighbours is too faint to see.
        for block in model.convnext:
            block.gamma.fill_(1.0)
            block.dwconv.weight.normal_(0.0, 0.3)
            block.pwconv1.weight.normal_(0.0, block.pwconv1.in_features**-0.5)
            block.pwconv2.weight.normal_(0.0, block.pwconv2.in_features**-0.5)
        model.out.weight.normal_(0.0, 0.1)
        model.out.bias[: model.bins].fill_(2.0)  # log-magnitudes around 2: audio of speech-like level
    context = model.context_frames
    mel = torch.randn(80, 3 * context + 40, generator=torch.Generator().manual_seed(1)) * 2 - 5
    with torch.no_grad():
        whole = model.infer(mel)
    assert whole.abs().max() > 0.1
    start, end = context + 7, 2 * context + 30  # a span in the middle, full context on both sides
    exact = _vocode_span(model, mel, start, end, context)
    torch.testing.assert_close(exact, whole[start * HOP : end * HOP], atol=1e-5, rtol=0)
    # Head and rest, as Synthesizer.stream vocodes a sentence, join into the whole.
    head = _vocode_span(model, mel, 0, start, context)
    joined = torch.cat([head, _vocode_span(model, mel, start, mel.shape[-1], context)])
    torch.testing.assert_close(joined, whole, atol=1e-5, rtol=0)
    # Much less context is not enough: the span's edges change.
    short = _vocode_span(model, mel, start, end, context // 4)
    assert (short - whole[start * HOP : end * HOP]).abs().max() > 1e-2


def test_tiny_vocos_overfits_one_clip_with_mel_and_stft_losses() -> None:
    torch.manual_seed(6)
    mel_fn = MelSpectrogram(MelConfig(fmax=None))  # HiFi-GAN's full-band loss mel
    input_mel_fn = MelSpectrogram(MelConfig())
    t = torch.arange(16 * HOP) / 22050
    target = sum(0.2 / k * torch.sin(2 * math.pi * 160 * k * t) for k in range(1, 6)).unsqueeze(0)
    mel = input_mel_fn(target)
    assert mel.shape == (1, 80, 16)

    model = Vocos(VocosConfig.preset("tiny"))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.8, 0.9))
    losses = []
    for _ in range(100):
        y_hat = model(mel)
        loss = mel_loss(mel_fn, target, y_hat) + multi_resolution_stft_loss(target, y_hat)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    start, end = np.mean(losses[:3]), np.mean(losses[-5:])
    # Measured with seeds 0, 1, 2, 6: 187-189 -> 98-103 (the mel L1 alone 4.3 -> 2.1).
    assert end < 0.6 * start, (start, end)
