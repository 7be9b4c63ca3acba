import dataclasses
import math
import warnings

import pytest
import torch
from torch import nn

from moksori.audio import MelConfig, MelSpectrogram
from moksori.models.hifigan import (
    DiscriminatorP,
    DiscriminatorS,
    Generator,
    HiFiGANConfig,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    ResBlock1,
    ResBlock2,
    discriminator_loss,
    discriminator_total_loss,
    feature_loss,
    generator_loss,
    generator_total_loss,
    load_reference_discriminators,
    load_reference_generator,
    mel_loss,
)

HOP = 256


def small(name: str, channels: int = 32) -> HiFiGANConfig:
    return dataclasses.replace(HiFiGANConfig.preset(name), upsample_initial_channel=channels)


def make_mel_fn(fmax: float | None = 8000.0) -> MelSpectrogram:
    """The project's one mel transform; fmax=None is the full-band variant HiFi-GAN's loss uses."""
    return MelSpectrogram(MelConfig(fmax=fmax))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The tensors here are tiny; on a shared 2-core machine extra threads only wait on each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def discriminators():
    torch.manual_seed(0)
    return MultiPeriodDiscriminator(), MultiScaleDiscriminator()


# --- config -------------------------------------------------------------------------------


def test_presets_match_published_configs():
    v1, v2, v3 = (HiFiGANConfig.preset(n) for n in ("v1", "v2", "v3"))
    assert (v1.upsample_initial_channel, v2.upsample_initial_channel, v3.upsample_initial_channel) == (512, 128, 256)
    assert v1.upsample_rates == v2.upsample_rates == [8, 8, 2, 2]
    assert v1.upsample_kernel_sizes == [16, 16, 4, 4]
    assert v1.resblock_kernel_sizes == [3, 7, 11] and v1.resblock_dilation_sizes == [[1, 3, 5]] * 3
    assert v3.resblock == "2" and v3.upsample_rates == [8, 8, 4] and v3.upsample_kernel_sizes == [16, 16, 8]
    assert v3.resblock_kernel_sizes == [3, 5, 7] and v3.resblock_dilation_sizes == [[1, 2], [2, 6], [3, 12]]
    assert (v1.segment_size, v1.learning_rate, v1.adam_b1, v1.adam_b2, v1.lr_decay) == (8192, 2e-4, 0.8, 0.99, 0.999)
    with pytest.raises(ValueError, match="unknown HiFi-GAN preset"):
        HiFiGANConfig.preset("v4")


def test_config_round_trip_and_reference_json():
    cfg = HiFiGANConfig.preset("v3")
    assert HiFiGANConfig.from_dict(cfg.to_dict()) == cfg
    reference_json = {
        "resblock": "1", "num_gpus": 0, "batch_size": 16, "learning_rate": 0.0002, "adam_b1": 0.8,
        "adam_b2": 0.99, "lr_decay": 0.999, "seed": 1234, "upsample_rates": [8, 8, 2, 2],
        "upsample_kernel_sizes": [16, 16, 4, 4], "upsample_initial_channel": 128,
        "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "segment_size": 8192, "num_mels": 80, "num_freq": 1025, "n_fft": 1024, "hop_size": 256,
        "win_size": 1024, "sampling_rate": 22050, "fmin": 0, "fmax": 8000, "fmax_for_loss": None,
        "num_workers": 4, "dist_config": {"dist_backend": "nccl"},
    }
    assert HiFiGANConfig.from_dict(reference_json) == HiFiGANConfig.preset("v2")
    with pytest.raises(ValueError, match="unknown keys.*'upsample_ratez'"):
        HiFiGANConfig.from_dict({"upsample_ratez": [8, 8, 4]})


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"upsample_rates": [8, 8, 2], "upsample_kernel_sizes": [16, 16, 4]}, "upsample_rates"),
        ({"upsample_kernel_sizes": [16, 16, 4]}, "upsample_kernel_sizes"),
        ({"upsample_kernel_sizes": [16, 16, 5, 4]}, "upsample_kernel_sizes"),
        ({"resblock": "3"}, "resblock"),
        ({"resblock_dilation_sizes": [[1, 3, 5]]}, "resblock_dilation_sizes"),
        ({"upsample_initial_channel": 100}, "upsample_initial_channel"),
    ],
)
def test_config_rejects_bad_values(changes, field):
    with pytest.raises(ValueError, match=f"HiFiGANConfig.{field}"):
        HiFiGANConfig(**changes)


def test_hop_mismatch_message_names_both_numbers():
    with pytest.raises(ValueError, match="= 128 must equal hop_size 256"):
        HiFiGANConfig(upsample_rates=[8, 8, 2], upsample_kernel_sizes=[16, 16, 4])


# --- generator ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["v1", "v2", "v3", "tiny"])
def test_generator_output_length_is_frames_times_hop(name):
    torch.manual_seed(0)
    gen = Generator(small(name))
    frames = 7
    mel = torch.randn(2, 80, frames)
    wave = gen(mel)
    assert wave.shape == (2, 1, frames * HOP)
    assert wave.abs().max() <= 1.0
    assert gen.hop_length == HOP
    assert gen.infer(mel).shape == (2, frames * HOP)
    assert gen.infer(mel[0]).shape == (frames * HOP,)
    with pytest.raises(ValueError, match="expected mel of shape"):
        gen.infer(torch.randn(2, 60, frames))


def test_v3_uses_resblock2_and_v1_resblock1():
    v3 = Generator(small("v3"))
    assert type(v3.resblocks[0]).__name__ == "ResBlock2"
    assert [[c.dilation[0] for c in block.convs] for block in v3.resblocks[:3]] == [[1, 2], [2, 6], [3, 12]]
    assert [block.convs[0].kernel_size[0] for block in v3.resblocks[:3]] == [3, 5, 7]
    gen = Generator(small("v1"))
    assert type(gen.resblocks[0]).__name__ == "ResBlock1"
    assert len(gen.resblocks) == 4 * 3 and len(gen.ups) == 4
    assert [c.dilation[0] for c in gen.resblocks[2].convs1] == [1, 3, 5]
    assert [c.dilation[0] for c in gen.resblocks[2].convs2] == [1, 1, 1]
    assert [(up.stride[0], up.kernel_size[0], up.out_channels) for up in gen.ups] == [
        (8, 16, 16), (8, 16, 8), (2, 4, 4), (2, 4, 2)
    ]


@pytest.mark.parametrize("block", [ResBlock1(8, 3, (1, 3, 5)), ResBlock2(8, 3, (1, 3))])
def test_resblocks_are_residual(block):
    x = torch.randn(2, 8, 50)
    out = block(x)
    assert out.shape == x.shape and not torch.allclose(out, x)
    with torch.no_grad():
        for conv in block.modules():
            if isinstance(conv, nn.Conv1d):
                conv.bias.zero_()
                conv.parametrizations.weight.original0.zero_()
    assert torch.allclose(block(x), x)  # every branch silent: only the skip path is left


def test_last_stage_averages_resblocks_then_reference_leaky_relu():
    """conv_post sees leaky_relu(mean of the last stage's resblocks) with slope 0.01, as in the reference."""
    torch.manual_seed(8)
    gen = Generator(small("tiny"))
    outputs, seen = [], []
    for block in gen.resblocks[-gen.num_kernels:]:
        block.register_forward_hook(lambda m, args, out: outputs.append(out))
    gen.conv_post.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    gen(torch.randn(1, 80, 3))
    mean = sum(outputs) / len(outputs)
    assert torch.allclose(seen[0], torch.nn.functional.leaky_relu(mean, 0.01), atol=1e-6)


@pytest.mark.parametrize("name, published", [("v1", 13.92e6), ("v2", 0.92e6), ("v3", 1.46e6)])
def test_published_generator_parameter_counts(name, published):
    count = sum(p.numel() for p in Generator(HiFiGANConfig.preset(name)).parameters())
    assert abs(count - published) / published < 0.10, count


@pytest.mark.parametrize("name", ["tiny", "v3"])
def test_remove_weight_norm_keeps_output(name):
    torch.manual_seed(1)
    gen = Generator(small(name)).eval()
    mel = torch.randn(1, 80, 5)
    before = gen.infer(mel)
    gen.remove_weight_norm()
    assert not any("parametrizations" in k for k in gen.state_dict())
    assert torch.allclose(gen.infer(mel), before, atol=1e-5)


# --- reference checkpoint import ----------------------------------------------------------


LEGACY = {  # parametrized name → name written by torch.nn.utils.weight_norm / spectral_norm
    ".parametrizations.weight.original0": ".weight_g",
    ".parametrizations.weight.original1": ".weight_v",
    ".parametrizations.weight.original": ".weight_orig",
    ".parametrizations.weight.0._u": ".weight_u",
    ".parametrizations.weight.0._v": ".weight_v",
}


def legacy_names(state: dict) -> dict:
    renamed = {}
    for key, value in state.items():
        for new, old in LEGACY.items():
            if key.endswith(new):
                key = key[: -len(new)] + old
        renamed[key] = value.clone()
    return renamed


def test_reference_checkpoint_loads_with_identical_output():
    torch.manual_seed(2)
    source = Generator(small("tiny")).eval()
    checkpoint = {"generator": legacy_names(source.state_dict())}
    assert any(k.endswith(".weight_g") for k in checkpoint["generator"])

    torch.manual_seed(3)
    target = Generator(small("tiny")).eval()
    mel = torch.randn(1, 80, 6)
    assert not torch.allclose(target.infer(mel), source.infer(mel))
    load_reference_generator(target, checkpoint)
    assert torch.allclose(target.infer(mel), source.infer(mel), atol=1e-6)

    # A bare state dict, and a target whose weight norm is already folded away, also work.
    plain = Generator(small("tiny")).eval()
    plain.remove_weight_norm()
    load_reference_generator(plain, checkpoint["generator"])
    assert torch.allclose(plain.infer(mel), source.infer(mel), atol=1e-5)


def test_genuine_legacy_weight_norm_state_dict_loads():
    """Re-apply the old torch.nn.utils.weight_norm (as the reference code does) to get real legacy keys."""
    torch.manual_seed(4)
    source = Generator(small("v3", 16)).eval()
    mel = torch.randn(1, 80, 4)
    expected = source.infer(mel)
    source.remove_weight_norm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in source.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                torch.nn.utils.weight_norm(module)
    state = source.state_dict()
    assert "conv_pre.weight_g" in state and "ups.0.weight_v" in state and "resblocks.0.convs.1.weight_g" in state

    target = Generator(small("v3", 16)).eval()
    load_reference_generator(target, {"generator": state})
    assert torch.allclose(target.infer(mel), expected, atol=1e-5)


def test_mismatched_checkpoint_lists_keys():
    state = legacy_names(Generator(small("tiny")).state_dict())
    del state["conv_post.bias"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \(1\): conv_post.bias.*unexpected keys \(1\): extra.weight"):
        load_reference_generator(Generator(small("tiny")), {"generator": state})

    wider = legacy_names(Generator(small("tiny", 64)).state_dict())
    with pytest.raises(ValueError, match="shape mismatches.*conv_pre"):
        load_reference_generator(Generator(small("tiny")), wider)
    with pytest.raises(TypeError, match="torch.load"):
        load_reference_generator(Generator(small("tiny")), "g_02500000")


def test_reference_discriminators_load_with_identical_scores(discriminators):
    mpd, msd = discriminators
    checkpoint = {"mpd": legacy_names(mpd.state_dict()), "msd": legacy_names(msd.state_dict()), "steps": 10}
    assert "discriminators.0.convs.0.weight_u" in checkpoint["msd"]
    assert "discriminators.1.convs.0.weight_g" in checkpoint["msd"]
    torch.manual_seed(7)
    mpd2, msd2 = MultiPeriodDiscriminator(), MultiScaleDiscriminator()
    load_reference_discriminators(mpd2, msd2, checkpoint)
    y, y_hat = torch.randn(1, 1, 600), torch.randn(1, 1, 600)
    for old, new in ((mpd, mpd2), (msd, msd2)):
        old.eval(), new.eval()
        with torch.no_grad():
            for a, b in zip(old(y, y_hat)[0], new(y, y_hat)[0]):
                assert torch.allclose(a, b, atol=1e-6)
        old.train()
    with pytest.raises(ValueError, match="'mpd' and 'msd'"):
        load_reference_discriminators(mpd2, msd2, {"mpd": checkpoint["mpd"]})


# --- discriminators and losses ------------------------------------------------------------


def test_discriminator_outputs_and_feature_maps(discriminators):
    mpd, msd = discriminators
    y, y_hat = torch.randn(2, 1, 1000), torch.randn(2, 1, 1000)  # 1000 is not a multiple of any period
    for disc, count, n_fmaps in ((mpd, 5, 6), (msd, 3, 8)):
        y_d_rs, y_d_gs, fmap_rs, fmap_gs = disc(y, y_hat)
        assert len(y_d_rs) == len(y_d_gs) == len(fmap_rs) == len(fmap_gs) == count
        assert all(len(f) == n_fmaps for f in fmap_rs + fmap_gs)
        assert all(r.shape == g.shape and r.shape[0] == 2 and r.dim() == 2 for r, g in zip(y_d_rs, y_d_gs))
    assert [d.period for d in mpd.discriminators] == [2, 3, 5, 7, 11]
    assert isinstance(mpd.discriminators[0], DiscriminatorP)
    assert all(isinstance(d, DiscriminatorS) for d in msd.discriminators)
    # Spectral norm on the first scale only.
    keys = msd.state_dict().keys()
    assert "discriminators.0.convs.0.parametrizations.weight.original" in keys
    assert "discriminators.1.convs.0.parametrizations.weight.original0" in keys
    # Scales 2 and 3 see the wave average-pooled twice: their scores are shorter.
    assert y_d_rs[0].shape[1] > y_d_rs[1].shape[1] > y_d_rs[2].shape[1]


def test_lsgan_losses_follow_formulas():
    ones, zeros = [torch.ones(2, 5)] * 3, [torch.zeros(2, 5)] * 3
    loss, r_losses, g_losses = discriminator_loss(ones, zeros)
    assert loss.item() == 0.0 and r_losses == g_losses == [0.0] * 3
    assert discriminator_loss(zeros, ones)[0].item() == pytest.approx(6.0)
    assert generator_loss(ones)[0].item() == 0.0
    loss, parts = generator_loss(zeros)
    assert loss.item() == pytest.approx(3.0) and len(parts) == 3
    half = [torch.full((2, 5), 0.5)]
    assert discriminator_loss(half, half)[0].item() == pytest.approx(0.5)

    fmap = [[torch.zeros(2, 3), torch.zeros(4)]]
    shifted = [[torch.full((2, 3), 0.5), torch.full((4,), -1.0)]]
    assert feature_loss(fmap, fmap).item() == 0.0
    assert feature_loss(fmap, shifted).item() == pytest.approx(2.0 * (0.5 + 1.0))


def test_mel_loss_weight_and_shape_handling():
    mel_fn = make_mel_fn()
    y = 0.3 * torch.sin(torch.arange(2048) * 2 * math.pi * 220 / 22050).unsqueeze(0)
    assert mel_loss(mel_fn, y, y).item() == 0.0
    noisy = y + 0.05 * torch.randn_like(y)
    l1 = torch.nn.functional.l1_loss(mel_fn(noisy), mel_fn(y))
    assert mel_loss(mel_fn, y.unsqueeze(1), noisy.unsqueeze(1)).item() == pytest.approx(45 * l1.item(), rel=1e-5)


def test_total_losses_are_finite_and_route_gradients(discriminators):
    mpd, msd = discriminators
    torch.manual_seed(5)
    gen = Generator(small("tiny", 16))
    y = 0.3 * torch.randn(1, 1, 1024)
    y_hat = gen(torch.randn(1, 80, 4))
    mel_fn = make_mel_fn(fmax=None)

    d_loss, d_parts = discriminator_total_loss(mpd, msd, y, y_hat)
    d_loss.backward()
    assert torch.isfinite(d_loss) and set(d_parts) == {"disc_mpd", "disc_msd"}
    assert gen.conv_post.parametrizations.weight.original1.grad is None
    assert mpd.discriminators[0].conv_post.bias.grad is not None

    g_loss, g_parts = generator_total_loss(mpd, msd, y, y_hat, mel_fn)
    g_loss.backward()
    assert torch.isfinite(g_loss) and set(g_parts) == {"gen_adv", "feature", "mel"}
    assert g_loss.item() == pytest.approx(sum(g_parts.values()), rel=1e-4)
    assert gen.conv_post.parametrizations.weight.original1.grad.abs().sum() > 0


def test_tiny_generator_learns_to_reproduce_a_wave():
    torch.manual_seed(6)
    mel_fn = make_mel_fn()
    t = torch.arange(16 * HOP) / 22050
    target = sum(0.2 / k * torch.sin(2 * math.pi * 160 * k * t) for k in range(1, 6)).unsqueeze(0)
    mel = mel_fn(target)
    assert mel.shape == (1, 80, 16)

    gen = Generator(HiFiGANConfig.preset("tiny"))
    opt = torch.optim.Adam(gen.parameters(), lr=2e-3, betas=(0.8, 0.99))
    losses = []
    for _ in range(100):
        loss = mel_loss(mel_fn, target, gen(mel))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    start, end = losses[0], sum(losses[-5:]) / 5
    assert end < 0.7 * start, (start, end)
