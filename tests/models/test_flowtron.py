"""Flowtron maths: exact invertibility, log-determinant against the numerical Jacobian, causal
masking, the stop gate, the attention prior and the losses (tiny models, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moksori.models.flowtron import (
    AR_Back_Step,
    Flowtron,
    FlowtronConfig,
    beta_binomial_prior,
    flowtron_loss,
    gate_target,
    reverse_frames,
)


def _model(n_flows: int = 2, n_mel: int = 6, dtype: torch.dtype = torch.float32, **overrides) -> Flowtron:
    torch.manual_seed(0)
    config = FlowtronConfig.tiny(12, n_flows=n_flows, n_mel_channels=n_mel, **overrides)
    model = Flowtron(config).to(dtype).eval()
    # The couplings start as the identity (zero conv); give them weights so the tests see real maps.
    with torch.no_grad():
        for flow in model.flows:
            step = flow.ar_step if isinstance(flow, AR_Back_Step) else flow
            step.conv.weight.normal_(0, 0.3)
            step.conv.bias.normal_(0, 0.3)
    return model


def _batch(n_mel: int = 6, dtype: torch.dtype = torch.float32):
    torch.manual_seed(1)
    text = torch.randint(1, 12, (2, 7))
    text_lengths = torch.tensor([7, 4])
    text[1, 4:] = 0
    mel_lengths = torch.tensor([9, 6])
    mel = torch.randn(2, n_mel, 9, dtype=dtype)
    mel[1, :, 6:] = 0
    return mel, mel_lengths, text, text_lengths


CUMM = {"use_cumm_attention": True}


@pytest.mark.parametrize("n_flows,overrides", [(1, {}), (2, {}), (3, {}), (2, CUMM)])
def test_inverse_gives_back_the_mel(n_flows, overrides):
    model = _model(n_flows, **overrides)
    mel, mel_lengths, text, text_lengths = _batch()
    out = model(mel, mel_lengths, text, text_lengths)
    assert out.z.shape == mel.shape
    assert not torch.allclose(out.z, mel, atol=1e-2)  # the flows do change the frames
    back = model.infer(out.z, text, text_lengths, lengths=mel_lengths)
    assert torch.equal(back.lengths, mel_lengths)
    assert torch.allclose(back.mel, mel, atol=1e-5), (back.mel - mel).abs().max()


@pytest.mark.parametrize("n_flows,overrides", [(1, {}), (2, {}), (2, CUMM)])
def test_log_determinant_matches_numerical_jacobian(n_flows, overrides):
    model = _model(n_flows, n_mel=3, dtype=torch.float64, **overrides)
    torch.manual_seed(2)
    text = torch.randint(1, 12, (1, 5))
    text_lengths = torch.tensor([5])
    lengths = torch.tensor([4])
    mel = torch.randn(1, 3, 4, dtype=torch.float64)

    def to_z(flat: torch.Tensor) -> torch.Tensor:
        return model(flat.view(1, 3, 4), lengths, text, text_lengths).z.reshape(-1)

    jacobian = torch.autograd.functional.jacobian(to_z, mel.reshape(-1))
    _, logabsdet = torch.linalg.slogdet(jacobian)
    out = model(mel, lengths, text, text_lengths)
    log_det = sum(log_s.sum() for log_s in out.log_s_list)
    log_det = log_det.detach()
    assert abs(float(log_det)) > 0.1
    assert torch.allclose(log_det, logabsdet, atol=1e-8), (float(log_det), float(logabsdet))


def test_a_frames_z_does_not_depend_on_later_frames():
    model = _model(1)
    mel, mel_lengths, text, text_lengths = _batch()
    z = model(mel, mel_lengths, text, text_lengths).z
    changed = mel.clone()
    changed[:, :, 5:] += torch.randn_like(changed[:, :, 5:])
    z2 = model(changed, mel_lengths, text, text_lengths).z
    assert torch.equal(z[0, :, :5], z2[0, :, :5])
    assert not torch.allclose(z[0, :, 5:], z2[0, :, 5:])


def test_the_backward_flow_is_causal_in_reversed_time():
    model = _model(2)
    back = model.flows[1]
    mel, mel_lengths, text, text_lengths = _batch()
    memory = model.memory(text, text_lengths, None)
    text_mask = torch.arange(7).unsqueeze(0) < text_lengths.unsqueeze(1)
    x = mel.transpose(1, 2)
    z = back(x, memory, text_mask, mel_lengths).z
    changed = x.clone()
    changed[0, :3] += 1.0  # the first frames are the back flow's *latest*
    z2 = back(changed, memory, text_mask, mel_lengths).z
    assert torch.equal(z[0, 3:], z2[0, 3:])
    assert not torch.allclose(z[0, :3], z2[0, :3])


def test_padding_does_not_change_a_row():
    model = _model(2)
    mel, mel_lengths, text, text_lengths = _batch()
    batched = model(mel, mel_lengths, text, text_lengths)
    alone = model(mel[1:, :, :6], mel_lengths[1:], text[1:, :4], text_lengths[1:])
    assert torch.allclose(batched.z[1, :, :6], alone.z[0], atol=1e-6)
    assert torch.allclose(batched.log_s_list[1][1, :6], alone.log_s_list[1][0], atol=1e-6)
    assert torch.all(batched.z[1, :, 6:] == 0)


@pytest.mark.parametrize("overrides", [{}, CUMM, {"n_components": 3, "fixed_gaussian": False}])
def test_a_row_padded_in_a_batch_gives_what_it_gives_alone(overrides):
    """Every output of the training pass and the loss: the row of a padded batch, and the same row
    alone with extra padding on its text and frames, equal the row alone."""
    model = _model(2, **overrides)
    mel, mel_lengths, text, text_lengths = _batch()
    prior = beta_binomial_prior(text_lengths, mel_lengths, 1.0, text.size(1), mel.size(2))
    batched = model(mel, mel_lengths, text, text_lengths, attn_prior=prior)
    alone_mel, alone_text = mel[1:, :, :6], text[1:, :4]
    alone = model(alone_mel, mel_lengths[1:], alone_text, text_lengths[1:], attn_prior=prior[1:, :6, :4])
    assert torch.allclose(batched.z[1, :, :6], alone.z[0], atol=1e-5)
    assert torch.allclose(batched.gate[1, :6], alone.gate[0], atol=1e-5)
    for flow in range(2):
        assert torch.allclose(batched.attns[flow][1, :6, :4], alone.attns[flow][0], atol=1e-5)
    if batched.prob is not None:
        assert torch.allclose(batched.prob[1], alone.prob[0], atol=1e-6)
    padded = model(torch.nn.functional.pad(alone_mel, (0, 5)), mel_lengths[1:],
                   torch.nn.functional.pad(alone_text, (0, 3)), text_lengths[1:])
    unpadded = model(alone_mel, mel_lengths[1:], alone_text, text_lengths[1:])
    for key, value in flowtron_loss(unpadded, mel_lengths[1:]).items():
        assert torch.allclose(flowtron_loss(padded, mel_lengths[1:])[key], value, atol=1e-5), key


def test_reverse_frames_keeps_padding_at_the_end():
    x = torch.arange(10).view(2, 5, 1)
    out = reverse_frames(x, torch.tensor([5, 3]))
    assert out[:, :, 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    assert torch.equal(reverse_frames(out, torch.tensor([5, 3])), x)


def test_gate_stops_inference_and_the_step_limit_is_reported():
    model = _model(2)
    _, _, text, text_lengths = _batch()
    gate = model.flows[-1].ar_step.gate_layer.linear_layer
    z = torch.randn(2, 6, 20)
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.fill_(10.0)  # fires at once
    out = model.infer(z, text, text_lengths)
    assert out.lengths.tolist() == [1, 1] and out.mel.shape[2] == 1
    assert not out.hit_limit.any()
    with torch.no_grad():
        gate.bias.fill_(-10.0)  # never fires
    out = model.infer(z, text, text_lengths)
    assert out.lengths.tolist() == [20, 20] and out.hit_limit.all()


def test_gated_inference_inverts_the_frames_the_last_flow_consumed():
    """A row that stops after L frames is the inverse of z's last L frames (the last flow runs
    backwards in time for an even number of flows)."""
    model = _model(2)
    _, _, text, text_lengths = _batch()
    text, text_lengths = text[:1], text_lengths[:1]
    z = torch.randn(1, 6, 12)
    layer = model.flows[-1].ar_step.gate_layer.linear_layer
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(-10.0)
    full = model.infer(z, text, text_lengths)
    assert full.lengths.tolist() == [12]
    # z of the generated mel, read back by the forward pass, equals z
    again = model(full.mel, full.lengths, text, text_lengths).z
    assert torch.allclose(again, z, atol=1e-5)
    with torch.no_grad():
        layer.bias.fill_(10.0)  # stops after one frame: the last frame of z
    one = model.infer(z, text, text_lengths)
    assert one.lengths.tolist() == [1]
    assert torch.allclose(model(one.mel, one.lengths, text, text_lengths).z, z[:, :, -1:], atol=1e-5)
    forward_only = _model(1)
    with torch.no_grad():
        forward_only.flows[0].gate_layer.linear_layer.weight.zero_()
        forward_only.flows[0].gate_layer.linear_layer.bias.fill_(10.0)
    one = forward_only.infer(z, text, text_lengths)
    assert torch.allclose(forward_only(one.mel, one.lengths, text, text_lengths).z, z[:, :, :1], atol=1e-5)


def test_gate_output_and_target():
    model = _model(2)
    mel, mel_lengths, text, text_lengths = _batch()
    out = model(mel, mel_lengths, text, text_lengths)
    assert out.gate.shape == (2, 9)
    target = gate_target(mel_lengths, 9)
    assert target[0].tolist() == [0] * 8 + [1]
    assert target[1].tolist() == [0] * 5 + [1] * 4
    no_gate = _model(2, use_gate_layer=False)
    assert no_gate(mel, mel_lengths, text, text_lengths).gate is None
    assert not hasattr(no_gate.flows[-1].ar_step, "gate_layer")


def test_beta_binomial_prior_is_a_diagonal_distribution():
    prior = beta_binomial_prior(torch.tensor([5, 3]), torch.tensor([20, 6]))
    assert prior.shape == (2, 20, 5)
    assert torch.allclose(prior[0].sum(1), torch.ones(20), atol=1e-5)
    assert torch.allclose(prior[1, :6, :3].sum(1), torch.ones(6), atol=1e-5)
    assert prior[1, 6:].abs().sum() == 0 and prior[1, :, 3:].abs().sum() == 0
    peaks = prior[0].argmax(1)
    assert peaks[0] == 0 and peaks[-1] == 4 and bool((peaks[1:] >= peaks[:-1]).all())


def test_attention_prior_pulls_the_attention_to_the_diagonal():
    model = _model(1)
    mel, mel_lengths, text, text_lengths = _batch()
    prior = beta_binomial_prior(text_lengths, mel_lengths, t_text=7, t_mel=9)
    plain = model(mel, mel_lengths, text, text_lengths).attns[0]
    guided = model(mel, mel_lengths, text, text_lengths, attn_prior=prior).attns[0]
    assert torch.allclose(guided[0].sum(1), torch.ones(9), atol=1e-5)
    diagonal = prior[0].argmax(1)
    assert (guided[0].argmax(1) == diagonal).float().mean() > (plain[0].argmax(1) == diagonal).float().mean()


def test_loss_gaussian_and_mixture():
    mel, mel_lengths, text, text_lengths = _batch()
    model = _model(2)
    losses = flowtron_loss(model(mel, mel_lengths, text, text_lengths), mel_lengths)
    assert set(losses) == {"total", "nll", "log_det", "gate"}
    assert torch.isfinite(losses["total"]) and losses["gate"] > 0
    # with identity flows and z = mel the NLL is the Gaussian's: mean(mel^2)/2 over valid elements
    identity = Flowtron(FlowtronConfig.tiny(12, n_flows=1, n_mel_channels=6, use_gate_layer=False)).eval()
    out = identity(mel, mel_lengths, text, text_lengths)
    valid = torch.cat([mel[0, :, :9].reshape(-1), mel[1, :, :6].reshape(-1)])
    assert torch.allclose(flowtron_loss(out, mel_lengths)["nll"], (valid**2).mean() / 2, atol=1e-6)

    mixture = _model(2, n_components=3, fixed_gaussian=False)
    mixture.train()
    out = mixture(mel, mel_lengths, text, text_lengths)
    assert out.mean.shape == (2, 6, 3) and out.prob.shape == (2, 3)
    losses = flowtron_loss(out, mel_lengths)
    losses["total"].backward()
    assert mixture.gaussian_mixture.prob_layer.linear_layer.weight.grad.abs().sum() > 0


def test_gate_pos_weight_weighs_the_stop_frame():
    """The gate loss per frame: -(w·y·log σ(g) + (1-y)·log(1-σ(g))), averaged over valid frames."""
    mel, mel_lengths, text, text_lengths = _batch()
    out = _model(2)(mel, mel_lengths, text, text_lengths)
    gate = out.gate.float()
    target = (torch.arange(gate.size(1)).unsqueeze(0) >= (mel_lengths - 1).unsqueeze(1)).float()
    mask = (torch.arange(gate.size(1)).unsqueeze(0) < mel_lengths.unsqueeze(1)).float()
    for weight in (1.0, 10.0):
        per_frame = -(weight * target * torch.nn.functional.logsigmoid(gate)
                      + (1 - target) * torch.nn.functional.logsigmoid(-gate))
        expected = (per_frame * mask).sum() / mask.sum()
        assert torch.allclose(flowtron_loss(out, mel_lengths, gate_pos_weight=weight)["gate"], expected, atol=1e-6)
    assert flowtron_loss(out, mel_lengths, gate_pos_weight=10.0)["gate"] > flowtron_loss(out, mel_lengths)["gate"]


def test_config_checks_and_presets():
    with pytest.raises(ValueError, match="n_components"):
        FlowtronConfig(n_components=1)
    with pytest.raises(ValueError, match="unknown Flowtron config key"):
        FlowtronConfig.from_dict({"n_flowz": 2})
    base = FlowtronConfig.preset("base", 185)
    assert (base.n_hidden, base.n_attn_channels, base.n_text_dim, base.n_flows) == (1024, 640, 512, 2)
    assert FlowtronConfig.from_dict(FlowtronConfig.tiny(30).to_dict()) == FlowtronConfig.tiny(30)
    with pytest.raises(ValueError, match="speaker id out of range"):
        _model(1)(*_batch()[:4], speaker=torch.tensor([0, 3]))


# --- the inference adapter ---------------------------------------------------------------------------

from moksori.models.flowtron import FlowtronAcoustic, segment_means  # noqa: E402
from moksori.models.interfaces import Controls  # noqa: E402
from moksori.models.alignment import HIT_STEP_LIMIT  # noqa: E402


def _noise(seed: int = 0):
    def noise(row: int, frames: int, channels: int):
        generator = torch.Generator().manual_seed(seed * 100 + row)
        return torch.randn(frames, channels, generator=generator).T.contiguous().numpy()

    return noise


def _adapter(n_flows: int = 1, steps: int = 12, gate_bias: float = -10.0, **overrides) -> FlowtronAcoustic:
    model = _model(n_flows, max_decoder_steps=steps, **overrides)
    step = model.flows[-1].ar_step if isinstance(model.flows[-1], AR_Back_Step) else model.flows[-1]
    if hasattr(step, "gate_layer"):
        with torch.no_grad():
            step.gate_layer.linear_layer.weight.zero_()
            step.gate_layer.linear_layer.bias.fill_(gate_bias)
    return FlowtronAcoustic(model).eval()


def _z_of(adapter: FlowtronAcoustic, out, ids, lengths) -> torch.Tensor:
    return adapter.model(out.mel, out.lengths, ids, lengths).z


def test_adapter_reports_the_step_limit_and_stops_at_the_gate():
    ids, lengths = torch.randint(1, 12, (2, 5)), torch.tensor([5, 5])
    stuck = _adapter(steps=12, gate_bias=-10.0)
    out = stuck.infer(ids, lengths, Controls(noise_scale=0.5), _noise())
    assert out.lengths.tolist() == [12, 12] and out.mel.shape == (2, 6, 12)
    assert all(not r.ok and HIT_STEP_LIMIT in r.reasons for r in out.reports)
    assert out.alignment.shape == (2, 5, 12)
    stops = _adapter(steps=12, gate_bias=10.0).infer(ids, lengths, Controls(noise_scale=0.5), _noise())
    assert stops.lengths.tolist() == [1, 1]
    assert not any(HIT_STEP_LIMIT in r.reasons for r in stops.reports)


def test_adapter_is_deterministic_and_batch_independent():
    adapter = _adapter(n_flows=2)
    ids, lengths = torch.randint(1, 12, (2, 5)), torch.tensor([5, 3])
    ids[1, 3:] = 0
    a = adapter.infer(ids, lengths, Controls(noise_scale=0.7), _noise())
    b = adapter.infer(ids, lengths, Controls(noise_scale=0.7), _noise())
    assert torch.equal(a.mel, b.mel)
    alone = adapter.infer(ids[:1], lengths[:1], Controls(noise_scale=0.7), _noise())
    assert torch.allclose(alone.mel[0], a.mel[0], atol=1e-5)
    quiet = adapter.infer(ids, lengths, Controls(noise_scale=0.0), _noise())
    assert not torch.allclose(quiet.mel, a.mel)


def test_style_reference_centres_z_on_the_reference_mean():
    adapter = _adapter()
    ids, lengths = torch.randint(1, 12, (1, 5)), torch.tensor([5])
    torch.manual_seed(3)
    ref_mel, ref_ids = torch.randn(6, 10) + 2.0, torch.randint(1, 12, (4,))
    z_ref, _ = adapter.reference_z(ref_mel, ref_ids)
    style = {"ref_mel": ref_mel, "ref_ids": ref_ids, "strength": 1.0}
    out = adapter.infer(ids, lengths, Controls(noise_scale=0.0, style=style), _noise())
    z = _z_of(adapter, out, ids, lengths)[0]
    assert torch.allclose(z, z_ref.mean(1, keepdim=True).expand_as(z), atol=1e-4)
    half = adapter.infer(ids, lengths, Controls(noise_scale=0.0, style={**style, "strength": 0.3}), _noise())
    z_half = _z_of(adapter, half, ids, lengths)[0]
    assert torch.allclose(z_half, 0.3 * z_ref.mean(1, keepdim=True).expand_as(z), atol=1e-4)
    # per segment: the first half of the frames follows the reference's first half
    seg = adapter.infer(ids, lengths, Controls(noise_scale=0.0, style={**style, "segments": 2}), _noise())
    z_seg = _z_of(adapter, seg, ids, lengths)[0]
    means = torch.from_numpy(segment_means(z_ref.numpy(), 2))
    assert torch.allclose(z_seg[:, 0], means[:, 0], atol=1e-4) and torch.allclose(z_seg[:, -1], means[:, 1], atol=1e-4)


def test_style_interpolation_and_mixture_component():
    adapter = _adapter()
    ids, lengths = torch.randint(1, 12, (1, 5)), torch.tensor([5])
    z_b = torch.linspace(-1, 1, 6)
    out = adapter.infer(ids, lengths, Controls(noise_scale=0.0, style={"z_b": z_b, "alpha": 0.25}), _noise())
    z = _z_of(adapter, out, ids, lengths)[0]
    assert torch.allclose(z, 0.25 * z_b.unsqueeze(1).expand_as(z), atol=1e-4)

    mixture = _adapter(n_components=3, mean_scale=3.0)
    out = mixture.infer(ids, lengths, Controls(noise_scale=0.0, style={"component": 2}), _noise())
    z = mixture.model(out.mel, out.lengths, ids, lengths).z[0]
    expected = mixture.model.gaussian_mixture.mean[0, :, 2:3].expand_as(z)
    assert torch.allclose(z, expected, atol=1e-4) and expected.abs().max() == 3.0


@pytest.mark.parametrize(
    ("style", "message"),
    [
        ({"strength": 1.5}, "strength must be in"),
        ({"alpha": -0.1}, "alpha must be in"),
        ({"component": 0}, "no mixture components"),
        ({"segments": 0}, "segments must be in"),
        ({"ref_mel": torch.zeros(5, 10)}, "ref_mel must be a mel"),
        ({"loudness": 1}, "unknown Flowtron style key"),
    ],
)
def test_style_values_are_checked(style, message):
    adapter = _adapter()
    with pytest.raises(ValueError, match=message):
        adapter.infer(torch.ones(1, 3, dtype=torch.long), torch.tensor([3]), Controls(style=style), _noise())


# --- NVIDIA checkpoints ---------------------------------------------------------------------------------

import sys  # noqa: E402
import types  # noqa: E402

from moksori.checkpoint import CheckpointError  # noqa: E402
from moksori.models.flowtron import config_from_reference_state_dict, import_reference  # noqa: E402


def _nvidia_like(n_components: int = 0, **overrides) -> Flowtron:
    return _model(2, n_mel=6, n_components=n_components, n_speakers=3, **overrides)


def test_import_a_state_dict_with_cumulative_attention(tmp_path):
    model = _nvidia_like(**CUMM)
    state = model.state_dict()
    # the reference's names: the location layer's convolutions, also under its Sequential
    for prefix in ("flows.0.attn_cond_layer.", "flows.1.ar_step.attn_cond_layer."):
        assert {prefix + "location_conv_hidden.conv.weight", prefix + "conv_layers.0.conv.weight",
                prefix + "location_conv_out.conv.bias", prefix + "conv_layers.2.conv.bias"} <= set(state)
    assert state["flows.0.attn_cond_layer.location_conv_out.conv.weight"].shape == (32 + 8, 32, 3)
    path = tmp_path / "flowtron_cumm.pt"
    torch.save({"state_dict": state}, path)
    config, imported = import_reference(path)
    assert config.use_cumm_attention
    assert not config_from_reference_state_dict(_nvidia_like().state_dict()).use_cumm_attention
    rebuilt = Flowtron(config).eval()
    rebuilt.load_state_dict(imported)
    mel, mel_lengths, text, text_lengths = _batch()
    assert torch.equal(rebuilt(mel, mel_lengths, text, text_lengths).z, model(mel, mel_lengths, text, text_lengths).z)


def test_cumulative_attention_conditions_each_frame_on_the_earlier_weights():
    """Teacher-forced, the frame loop of the training pass gives the attention inference gives
    for the same frames; and the earlier frames' weights change a frame's attention."""
    model = _model(1, **CUMM)
    mel, mel_lengths, text, text_lengths = _batch()
    out = model(mel, mel_lengths, text, text_lengths)
    back = model.infer(out.z, text, text_lengths, lengths=mel_lengths)
    assert torch.allclose(back.attns[0][0], out.attns[0][0], atol=1e-5)
    step = model.flows[0]
    memory = model.memory(text[:1], text_lengths[:1], None)
    keys, values = step.attention_layer.memory(memory)
    query = torch.randn(1, 1, model.config.n_hidden)
    mask = torch.ones(1, 7, dtype=torch.bool)
    _, fresh, _ = step.attend(query, memory, keys, values, mask)
    at_end = (torch.zeros(1, 7), torch.nn.functional.one_hot(torch.tensor([6]), 7).float())
    at_end = (at_end[1] * 5, at_end[1])
    _, later, location = step.attend(query, memory, keys, values, mask, location=at_end)
    assert not torch.allclose(fresh, later, atol=1e-4)
    assert torch.allclose(location[0], at_end[0] + later[:, 0]) and torch.equal(location[1], later[:, 0])


def test_import_published_state_dict(tmp_path):
    model = _nvidia_like()
    state = {f"module.{key}": value for key, value in model.state_dict().items()}  # saved from DataParallel
    path = tmp_path / "flowtron_ljs.pt"
    torch.save({"state_dict": state}, path)
    config, imported = import_reference(path)
    assert config.n_flows == 2 and config.n_speakers == 3 and config.n_mel_channels == 6
    assert (config.n_hidden, config.n_attn_channels, config.n_text_dim, config.n_lstm_layers) == (32, 16, 32, 1)
    assert config.use_gate_layer and config.encoder_n_convolutions == 2 and config.encoder_kernel_size == 3
    rebuilt = Flowtron(config).eval()
    rebuilt.load_state_dict(imported)
    mel, mel_lengths, text, text_lengths = _batch()
    assert torch.equal(rebuilt(mel, mel_lengths, text, text_lengths).z, model(mel, mel_lengths, text, text_lengths).z)


def test_import_training_checkpoint_with_a_pickled_model(tmp_path, monkeypatch):
    """NVIDIA's train.py saves ``{"model": <flowtron.Flowtron>, ...}``: read without running its code."""
    model = _nvidia_like(n_components=2)
    fake = types.ModuleType("flowtron")
    renamed = {}
    for module in model.modules():
        cls = type(module)
        if cls.__module__.startswith("torch."):
            continue
        if cls.__name__ not in renamed:  # one class per name (the encoder's ConvNorm is Tacotron2's)
            renamed[cls.__name__] = type(cls.__name__, (cls,), {"__module__": "flowtron", "__qualname__": cls.__name__})
            setattr(fake, cls.__name__, renamed[cls.__name__])
        module.__class__ = renamed[cls.__name__]
    object.__delattr__(model, "config")  # NVIDIA's object keeps no config object
    monkeypatch.setitem(sys.modules, "flowtron", fake)
    path = tmp_path / "model_1000"
    torch.save({"model": model, "iteration": 1000, "optimizer": {}, "learning_rate": 1e-3}, path)
    monkeypatch.delitem(sys.modules, "flowtron")
    config, imported = import_reference(path)
    assert config.n_components == 2 and config.fixed_gaussian
    assert torch.equal(imported["gaussian_mixture.mean"], model.gaussian_mixture.mean)
    expected = {key: value for key, value in model.state_dict().items()}
    assert set(imported) == set(expected)
    assert all(torch.equal(imported[key], expected[key]) for key in expected)


def test_import_refuses_what_it_cannot_read(tmp_path):
    path = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"model": Evil()}, path)
    with pytest.raises(CheckpointError, match="not an NVIDIA Flowtron checkpoint"):
        import_reference(path)
    torch.save({"state_dict": {"embedding.weight": torch.zeros(3, 4)}}, path)
    with pytest.raises(CheckpointError, match="not a Flowtron state dict"):
        import_reference(path)


def test_moksori_import_writes_a_checkpoint_that_warm_starts(tmp_path):
    from moksori.checkpoint import read_checkpoint
    from moksori.cli import main
    from moksori.training.warm_start import load_matching, read_init_source

    model = _nvidia_like()
    source = tmp_path / "flowtron_ljs.pt"
    torch.save({"state_dict": model.state_dict()}, source)
    out = tmp_path / "imported.pt"
    assert main(["import", "flowtron", str(source), "--out", str(out)]) == 0
    checkpoint = read_checkpoint(out)
    assert checkpoint["model_name"] == "flowtron" and checkpoint["model_config"]["n_speakers"] == 3
    # a Korean model with another symbol table and one speaker takes the flows from it
    korean = Flowtron(FlowtronConfig.from_dict({**checkpoint["model_config"], "n_text": 40, "n_speakers": 1}))
    state, _ = read_init_source(out, "flowtron")
    report = load_matching(korean, state)
    assert "flows.1.ar_step.lstm.weight_ih_l0" in report.loaded
    assert any(entry.startswith("embedding.weight") for entry in report.skipped)


def _export_flowtron(adapter: FlowtronAcoustic, folder, n_mel: int = 6):
    """The adapter's graphs exported, run by the torch-free runner of its config (as an exported
    voice runs them from voice.json), whose ONNX loop the adapter inherits."""
    from moksori.models.onnx_runners import FlowtronOnnx, acoustic_runner
    from moksori.synthesis.onnx_export import _export
    from moksori.synthesis.onnx_runtime import OnnxAcoustic

    main = folder / "acoustic.onnx"
    for name, (module, graph) in adapter.onnx_graphs(n_mel).items():
        target = main if not name else folder / f"acoustic.{name}.onnx"
        _export(module.eval(), graph, target, 17, adapter.onnx_metadata() if not name else None)
    runner = acoustic_runner("flowtron", adapter.config.to_dict())
    assert type(runner) is FlowtronOnnx and isinstance(adapter, FlowtronOnnx)
    return OnnxAcoustic(main, type(runner), n_mel, num_threads=1)


@pytest.mark.parametrize("n_flows,gate,overrides", [(1, "never", {}), (2, "random", {}), (3, "random", {}),
                                                    (2, "random", CUMM)])
def test_onnx_graphs_equal_pytorch(tmp_path, n_flows, gate, overrides):
    pytest.importorskip("onnxruntime")
    adapter = _adapter(n_flows=n_flows, steps=14, **overrides)
    last = adapter.model.flows[-1]
    if gate == "random":  # a gate that depends on the input (with 3 flows it stops one sentence after 5 frames)
        torch.manual_seed(2)
        with torch.no_grad():
            step = last.ar_step if isinstance(last, AR_Back_Step) else last
            step.gate_layer.linear_layer.weight.normal_(0, 1.0)
            step.gate_layer.linear_layer.bias.fill_(-1.0)
    runtime = _export_flowtron(adapter, tmp_path)
    seen = []
    for seed, ids in enumerate(([3, 4, 5, 6, 7], [11, 2, 5, 1, 3, 3, 8, 1, 9])):
        controls = Controls(noise_scale=0.8)
        mel, report = runtime.infer_with_report(ids, controls, _noise(seed))
        expected = adapter.infer(torch.tensor([ids]), torch.tensor([len(ids)]), controls, _noise(seed))
        frames = int(expected.lengths[0])
        assert mel.shape == (6, frames)
        assert torch.allclose(torch.from_numpy(mel), expected.mel[0, :, :frames], atol=1e-4)
        assert report.reasons == expected.reports[0].reasons
        seen.append(frames)
    if n_flows == 3:
        assert any(1 < frames < 14 for frames in seen), seen  # a stop inside the loop, not at its ends


def test_onnx_takes_mixture_components_and_z_b(tmp_path):
    pytest.importorskip("onnxruntime")
    adapter = _adapter(n_flows=2, steps=8, n_components=3, fixed_gaussian=True)
    with torch.no_grad():
        adapter.model.gaussian_mixture.mean.normal_(0, 1.0)
    runtime = _export_flowtron(adapter, tmp_path)
    ids = [3, 4, 5, 6]
    z_b = torch.linspace(-1, 1, 6)
    for style in ({"component": 2}, {"z_b": z_b, "alpha": 0.5, "strength": 0.8}):
        controls = Controls(noise_scale=0.3, style=style)
        mel = runtime.infer(ids, controls, _noise())
        expected = adapter.infer(torch.tensor([ids]), torch.tensor([len(ids)]), controls, _noise())
        assert torch.allclose(torch.from_numpy(mel), expected.mel[0], atol=1e-4)


def _references():
    torch.manual_seed(4)
    ref_mel, ref_mel_b = torch.randn(6, 11) + 1.5, torch.randn(6, 7) - 1.0
    return ref_mel, torch.tensor([2, 9, 4, 7, 1]), ref_mel_b


@pytest.mark.parametrize("n_flows,overrides", [
    (2, {}), (3, {"n_speakers": 2}), (2, {"n_components": 3, "fixed_gaussian": True}),
    (2, {"n_components": 2, "fixed_gaussian": False}),
])
def test_onnx_style_references_equal_pytorch(tmp_path, n_flows, overrides):
    pytest.importorskip("onnxruntime")
    adapter = _adapter(n_flows=n_flows, steps=12, gate_bias=-1.0, **overrides)
    runtime = _export_flowtron(adapter, tmp_path)
    assert runtime.adapter.onnx_style_references(runtime.metadata)
    ref_mel, ref_ids, ref_mel_b = _references()
    ids = [3, 4, 5, 6, 2]
    speaker = 1 if "n_speakers" in overrides else None
    styles = [
        {"ref_mel": ref_mel, "ref_ids": ref_ids},  # read against its own transcript
        {"ref_mel": ref_mel, "strength": 0.6, "segments": 3},  # against the sentence's text, per segment
        {"ref_mel": ref_mel, "ref_ids": ref_ids, "ref_mel_b": ref_mel_b, "alpha": 0.4},
    ]
    if "n_components" not in overrides:  # a predicted mixture needs ref_mel
        styles.append({"ref_mel_b": ref_mel_b, "alpha": 0.7, "strength": 0.9})
    for style in styles:
        controls = Controls(noise_scale=0.5, style=style, speaker_id=speaker)
        mel, report = runtime.infer_with_report(ids, controls, _noise(1))
        expected = adapter.infer(torch.tensor([ids]), torch.tensor([len(ids)]), controls, _noise(1))
        frames = int(expected.lengths[0])
        assert mel.shape == (6, frames), style
        assert torch.allclose(torch.from_numpy(mel), expected.mel[0, :, :frames], atol=1e-4), style
        assert report.reasons == expected.reports[0].reasons
    # the reference moves the output: without it the mel differs
    plain = runtime.infer(ids, Controls(noise_scale=0.5, speaker_id=speaker), _noise(1))
    assert plain.shape != mel.shape or not np.allclose(plain, mel, atol=1e-3)


def test_onnx_export_without_the_reference_encoder_refuses_references(tmp_path):
    pytest.importorskip("onnxruntime")
    from moksori.models.onnx_runners import FLOWTRON_METADATA_PREFIX
    from moksori.synthesis.onnx_runtime import OnnxAcoustic

    runtime = _export_flowtron(_adapter(n_flows=2, steps=8), tmp_path)
    # an older export: no encode graph, and its metadata does not list one
    metadata = {key: value for key, value in runtime.metadata.items()
                if key != FLOWTRON_METADATA_PREFIX + "reference_encoder"}
    assert runtime.adapter.onnx_extra_graph_names(metadata) == ("flow0", "flow1")
    old = OnnxAcoustic.__new__(OnnxAcoustic)
    old.__dict__.update(runtime.__dict__, metadata=metadata,
                        sessions={name: s for name, s in runtime.sessions.items() if name != "encode"})
    ids = [3, 4, 5, 6]
    assert old.infer(ids, Controls(noise_scale=0.3), _noise()).shape[0] == 6
    for style in ({"ref_mel": torch.randn(6, 10)}, {"ref_mel_b": torch.randn(6, 10), "alpha": 0.5}):
        with pytest.raises(ValueError, match=r"re-export the voice \(moksori export VOICE --onnx\)"):
            old.infer(ids, Controls(style=style), _noise())


def test_onnx_export_with_cumulative_attention_has_no_reference_encoder(tmp_path):
    """Its forward pass is a frame loop, which a traced graph would fix at one length: the export
    runs every control but references (z_b, components work), and refuses those by name."""
    pytest.importorskip("onnxruntime")
    adapter = _adapter(n_flows=2, steps=10, gate_bias=-1.0, **CUMM)
    runtime = _export_flowtron(adapter, tmp_path)
    assert "encode" not in runtime.sessions and not (tmp_path / "acoustic.encode.onnx").exists()
    assert not runtime.adapter.onnx_style_references(runtime.metadata)  # callers with a reference use PyTorch
    ids = [3, 4, 5, 6]
    controls = Controls(noise_scale=0.5, style={"z_b": torch.linspace(-1, 1, 6), "alpha": 0.5})
    mel = runtime.infer(ids, controls, _noise(2))
    expected = adapter.infer(torch.tensor([ids]), torch.tensor([len(ids)]), controls, _noise(2))
    assert torch.allclose(torch.from_numpy(mel), expected.mel[0, :, : mel.shape[1]], atol=1e-4)
    with pytest.raises(ValueError, match="use_cumm_attention has none"):
        runtime.infer(ids, Controls(style={"ref_mel": torch.randn(6, 10)}), _noise())
