"""Glow-TTS: config, shapes, loss, relative attention, overfitting and reference checkpoints."""

import math

import pytest
import torch
import torch.nn.functional as F

from moksori.models import build_model, registry
from moksori.models.glow_tts import (
    GlowTTS,
    GlowTTSConfig,
    glow_tts_loss,
    load_reference_state_dict,
    prior_log_likelihood,
    to_reference_state_dict,
)
from moksori.models.layers.common import generate_path
from moksori.models.layers.attention import MultiHeadAttention

N_VOCAB = 20


def make_model(seed=0, **overrides) -> GlowTTS:
    torch.manual_seed(seed)
    return GlowTTS(GlowTTSConfig.tiny(N_VOCAB, **overrides))


def smooth_mels(batch: int, frames: int, gen: torch.Generator) -> torch.Tensor:
    """Mel-like smooth random surfaces: bicubic upsampling of a coarse random grid."""
    coarse = torch.randn(batch, 1, 8, 6, generator=gen)
    mel = F.interpolate(coarse, size=(80, frames), mode="bicubic", align_corners=True).squeeze(1)
    return mel * 1.5 - 4.0


def make_batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x_lengths = torch.tensor([12, 10, 9, 7])
    y_lengths = torch.tensor([44, 39, 35, 28])  # odd lengths get trimmed to a multiple of n_sqz
    x = torch.randint(1, N_VOCAB, (4, 12), generator=gen) * (torch.arange(12) < x_lengths[:, None])
    y = smooth_mels(4, 45, gen) * (torch.arange(45) < y_lengths[:, None]).unsqueeze(1)
    return x, x_lengths, y, y_lengths


def test_config_roundtrip_presets_and_errors():
    cfg = GlowTTSConfig.base(148)
    assert cfg.hidden_channels == 192 and cfg.n_blocks_dec == 12 and cfg.n_sqz == 2 and cfg.window_size == 4
    assert GlowTTSConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown field.*bogus"):
        GlowTTSConfig.from_dict({"n_vocab": 5, "bogus": 1})
    with pytest.raises(ValueError, match="gin_channels"):
        GlowTTSConfig(n_vocab=5, n_speakers=4)


def test_base_model_size_matches_paper():
    # Glow-TTS paper, table 1: 28.6M parameters.
    n_params = sum(p.numel() for p in GlowTTS(GlowTTSConfig.base(148)).parameters())
    assert 28.2e6 < n_params < 29.0e6


def test_registry_builds_glow_tts():
    assert registry.get("glow_tts").model_class is GlowTTS
    model = build_model("glow_tts", GlowTTSConfig.tiny(N_VOCAB).to_dict())
    assert isinstance(model, GlowTTS) and model.config.hidden_channels == 32
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope", {})


def test_forward_shapes_and_finite_loss():
    model = make_model()
    x, x_lengths, y, y_lengths = make_batch()
    out = model(x, x_lengths, y, y_lengths)
    assert out.z.shape == (4, 80, 44) and out.z_mask.shape == (4, 1, 44)
    assert out.y_lengths.tolist() == [44, 38, 34, 28]
    assert out.x_m.shape == (4, 80, 12) and out.logw.shape == (4, 1, 12) and out.logw_.shape == (4, 1, 12)
    assert out.attn.shape == (4, 12, 44) and out.logdet.shape == (4,)
    # the alignment gives every valid frame to one valid token, and durations are its row sums
    for b in range(4):
        assert out.attn[b].sum().item() == out.y_lengths[b].item()
        assert torch.all(out.attn[b, : x_lengths[b]].sum(1) >= 1)
    durations = out.attn.sum(-1)
    assert torch.allclose(out.logw_.squeeze(1), torch.log(1e-8 + durations) * (durations > 0))
    # MAS picks the most likely alignment: at least as likely as spreading frames evenly
    model = _trained_like(model)
    out = model(x, x_lengths, y, y_lengths)
    logp = prior_log_likelihood(out.z, out.x_m, out.x_logs)
    for b in range(4):
        t_x, t_y = int(x_lengths[b]), int(out.y_lengths[b])
        even = torch.diff(torch.linspace(0, t_y, t_x + 1).round()).unsqueeze(0)
        even_path = generate_path(even, torch.ones(1, t_x, t_y))[0]
        assert torch.all(even_path.sum(1) >= 1)
        best = (out.attn[b, :t_x, :t_y] * logp[b, :t_x, :t_y]).sum()
        assert best > (even_path * logp[b, :t_x, :t_y]).sum()
    losses = glow_tts_loss(out, x_lengths)
    assert set(losses) == {"mle", "duration", "total"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert torch.allclose(losses["total"], losses["mle"] + losses["duration"])


def test_mle_loss_is_per_element_negative_log_likelihood():
    model = make_model(mean_only=False)
    x, x_lengths, y, y_lengths = make_batch()
    out = model(x, x_lengths, y, y_lengths)
    # direct: -(log N(z; z_m, exp(z_logs)) + logdet) over valid elements / (frames * channels)
    normal = torch.distributions.Normal(out.z_m, torch.exp(out.z_logs))
    log_prob = (normal.log_prob(out.z) * out.z_mask).sum()
    expected = -(log_prob + out.logdet.sum()) / (out.y_lengths.sum() * 80)
    assert torch.allclose(glow_tts_loss(out, x_lengths)["mle"], expected, atol=1e-4)


def test_duration_predictor_sees_detached_encoder():
    model = make_model()
    x, x_lengths, y, y_lengths = make_batch()
    out = model(x, x_lengths, y, y_lengths)
    glow_tts_loss(out, x_lengths)["duration"].backward()
    assert model.encoder.proj_w.proj.weight.grad is not None
    assert model.encoder.emb.weight.grad is None or torch.all(model.encoder.emb.weight.grad == 0)
    assert model.encoder.encoder.attn_layers[0].conv_q.weight.grad is None


@pytest.mark.parametrize("overrides", [{}, {"mean_only": False, "n_speakers": 3, "gin_channels": 8}])
def test_a_row_padded_in_a_batch_gives_what_it_gives_alone(overrides):
    """Training pass, loss and inference: a row of a padded batch, and the row alone with extra
    padding on its text and frames, equal the row alone (float64: exact up to rounding)."""
    model = _trained_like(make_model(**overrides)).double().eval()
    x, x_lengths, y, y_lengths = make_batch()
    y = y.double()
    g = torch.tensor([0, 2, 1, 2]) if "n_speakers" in overrides else None
    batched = model(x, x_lengths, y, y_lengths, g=g)
    mel, mel_lengths, _ = model.infer(x, x_lengths, g=g, noise_scale=0.0)
    for row in range(4):
        n, frames = int(x_lengths[row]), int(y_lengths[row])
        alone_x, alone_y, row_g = x[row : row + 1, :n], y[row : row + 1, :, :frames], None if g is None else g[row : row + 1]
        alone = model(alone_x, x_lengths[row : row + 1], alone_y, y_lengths[row : row + 1], g=row_g)
        t = int(alone.y_lengths[0])
        assert torch.allclose(batched.z[row, :, :t], alone.z[0], atol=1e-10)
        assert torch.allclose(batched.logdet[row], alone.logdet[0], atol=1e-10)
        assert torch.allclose(batched.logw[row, :, :n], alone.logw[0], atol=1e-10)
        assert torch.equal(batched.attn[row, :n, :t], alone.attn[0])
        padded = model(F.pad(alone_x, (0, 5)), x_lengths[row : row + 1], F.pad(alone_y, (0, 9)),
                       y_lengths[row : row + 1], g=row_g)
        for key, value in glow_tts_loss(alone, x_lengths[row : row + 1]).items():
            assert torch.allclose(glow_tts_loss(padded, x_lengths[row : row + 1])[key], value, atol=1e-10), key
        alone_mel, alone_lengths, _ = model.infer(alone_x, x_lengths[row : row + 1], g=row_g, noise_scale=0.0)
        assert int(mel_lengths[row]) == int(alone_lengths[0])
        assert torch.allclose(mel[row, :, : int(alone_lengths[0])], alone_mel[0], atol=1e-10)


def test_infer_shapes_and_length_scale():
    model = make_model().eval()
    x, x_lengths, _, _ = make_batch()
    mel, mel_lengths, attn = model.infer(x, x_lengths, noise_scale=0.5)
    assert mel.shape[:2] == (4, 80) and mel.shape[2] == mel_lengths.max()
    assert attn.shape == (4, 12, mel.shape[2])
    assert torch.all(mel_lengths % 2 == 0) and torch.all(mel_lengths >= 2)
    assert torch.all(mel[1, :, mel_lengths[1] :] == 0)
    # every frame of the output belongs to exactly one token
    assert torch.equal(attn.sum(1).sum(1), mel_lengths.float())
    x_mask = (torch.arange(12) < x_lengths[:, None]).float()
    total = (torch.exp(model.encoder(x, x_lengths)[2]).squeeze(1) * x_mask).sum(1)  # sum of w
    for scale in (0.5, 1.0, 2.0, 3.0):
        _, lengths, _ = model.infer(x, x_lengths, length_scale=scale)
        # ceil adds < 1 frame per token; trimming to a multiple of n_sqz removes < 2
        assert torch.all(lengths > scale * total - 2), (scale, lengths, total)
        assert torch.all(lengths <= torch.clamp_min(scale * total + x_lengths, 2)), (scale, lengths, total)
    _, slow, _ = model.infer(x, x_lengths, length_scale=2.0)
    assert torch.all(slow > mel_lengths)


def test_multi_speaker_forward_and_infer():
    model = _trained_like(make_model(n_speakers=3, gin_channels=8)).eval()
    assert model.emb_g.weight.shape == (3, 8)
    x, x_lengths, y, y_lengths = make_batch()
    g = torch.tensor([0, 1, 2, 1])
    out = model(x, x_lengths, y, y_lengths, g=g)
    assert torch.isfinite(glow_tts_loss(out, x_lengths)["total"])
    other = model(x, x_lengths, y, y_lengths, g=torch.tensor([2, 2, 2, 2]))
    assert torch.allclose(other.z[2], out.z[2]) and not torch.allclose(other.z[0], out.z[0])
    mel, mel_lengths, _ = model.infer(x, x_lengths, g=g)
    assert mel.shape[:2] == (4, 80) and mel.shape[2] == mel_lengths.max()
    with pytest.raises(ValueError, match="speaker"):
        model.infer(x, x_lengths)


def _loop_relative_attention(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Relative attention written out with explicit loops (Shaw et al.; zero beyond the window)."""
    q, k, v = mha.conv_q(x), mha.conv_k(x), mha.conv_v(x)
    _, d, t = x.shape
    h, dk, w = mha.n_heads, mha.k_channels, mha.window_size
    out = torch.zeros(d, t)
    for head in range(h):
        qs, ks, vs = (a[0, head * dk : (head + 1) * dk] for a in (q, k, v))
        scores = torch.zeros(t, t)
        for i in range(t):
            for j in range(t):
                rel_k = mha.emb_rel_k[0, j - i + w] if abs(j - i) <= w else torch.zeros(dk)
                scores[i, j] = qs[:, i] @ (ks[:, j] + rel_k) / math.sqrt(dk)
        p = torch.softmax(scores, -1)
        for i in range(t):
            for j in range(t):
                rel_v = mha.emb_rel_v[0, j - i + w] if abs(j - i) <= w else torch.zeros(dk)
                out[head * dk : (head + 1) * dk, i] += p[i, j] * (vs[:, j] + rel_v)
    return mha.conv_o(out.unsqueeze(0))


@pytest.mark.parametrize("length", [3, 11])  # shorter and longer than the window
def test_relative_attention_matches_explicit_loops(length):
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 8, n_heads=2, window_size=4).eval()
    x = torch.randn(1, 8, length)
    mask = torch.ones(1, 1, length, length)
    with torch.no_grad():
        assert torch.allclose(mha(x, x, mask), _loop_relative_attention(mha, x), atol=1e-5)


@pytest.fixture
def one_thread():
    # On a shared, busy machine intra-op threads mostly wait on each other: one is much faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_overfits_a_fixed_batch(one_thread):
    torch.manual_seed(0)
    model = make_model()
    x, x_lengths, y, y_lengths = make_batch()
    model.initialize_actnorm(x, x_lengths, y, y_lengths)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(150):
        losses, _ = model.compute_loss(x, x_lengths, y, y_lengths)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        history.append({k: v.item() for k, v in losses.items()})
    start, end = history[0], history[-1]
    assert end["mle"] < start["mle"] - 1.0, (start, end)
    assert end["duration"] < 0.5 * start["duration"], (start, end)


# --- reference checkpoints ----------------------------------------------------------------


def test_reference_key_names():
    keys = to_reference_state_dict(make_model(n_speakers=2, gin_channels=4))
    for key in [
        "encoder.emb.weight",
        "encoder.pre.conv_layers.0.weight",
        "encoder.pre.norm_layers.0.gamma",
        "encoder.encoder.attn_layers.0.conv_q.weight",
        "encoder.encoder.attn_layers.0.emb_rel_k",
        "encoder.encoder.norm_layers_1.0.gamma",
        "encoder.encoder.ffn_layers.0.conv_1.weight",
        "encoder.proj_m.weight",
        "encoder.proj_w.conv_1.weight",
        "encoder.proj_w.norm_2.beta",
        "decoder.flows.0.logs",
        "decoder.flows.0.bias",
        "decoder.flows.1.weight",
        "decoder.flows.2.start.weight_g",
        "decoder.flows.2.end.weight",
        "decoder.flows.2.wn.in_layers.0.weight_g",
        "decoder.flows.2.wn.in_layers.0.weight_v",
        "decoder.flows.2.wn.res_skip_layers.1.bias",
        "decoder.flows.2.wn.cond_layer.weight_g",
        "emb_g.weight",
    ]:
        assert key in keys, key
    assert not any("parametrizations" in k for k in keys)
    assert "encoder.proj_s.weight" not in keys  # mean_only


def _trained_like(model: GlowTTS) -> GlowTTS:
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _infer(model: GlowTTS) -> torch.Tensor:
    x, x_lengths, _, _ = make_batch()
    mel, _, _ = model.eval().infer(x, x_lengths, generator=torch.Generator().manual_seed(7))
    return mel


def _reference_layout(c: GlowTTSConfig) -> dict[str, tuple[tuple[int, ...], bool]]:
    """Every parameter of jaywalnut310/glow-tts ``models.FlowGenerator`` for config ``c``: its
    name in the reference's state dict -> (shape, whether the reference wraps the conv in
    ``torch.nn.utils.weight_norm``, i.e. stores ``weight_g``/``weight_v`` instead of ``weight``).

    Written from the reference sources (models.py, modules.py, attentions.py), not from moksori."""
    layout: dict[str, tuple[tuple[int, ...], bool]] = {}

    def conv(name, c_out, c_in, k, weight_norm=False):
        layout[f"{name}.weight"] = ((c_out, c_in, k), weight_norm)
        layout[f"{name}.bias"] = ((c_out,), False)

    def layer_norm(name, channels):  # modules.LayerNorm: gamma and beta
        layout[f"{name}.gamma"] = ((channels,), False)
        layout[f"{name}.beta"] = ((channels,), False)

    h, k, fc = c.hidden_channels_enc or c.hidden_channels, c.kernel_size, c.filter_channels
    layout["encoder.emb.weight"] = ((c.n_vocab, h), False)
    if c.prenet:  # modules.ConvReluNorm(h, h, h, kernel_size=5, n_layers=3)
        for i in range(3):
            conv(f"encoder.pre.conv_layers.{i}", h, h, 5)
            layer_norm(f"encoder.pre.norm_layers.{i}", h)
        conv("encoder.pre.proj", h, h, 1)
    for i in range(c.n_layers_enc):  # attentions.Encoder
        attn = f"encoder.encoder.attn_layers.{i}"
        for name in ("conv_q", "conv_k", "conv_v", "conv_o"):
            conv(f"{attn}.{name}", h, h, 1)
        if c.window_size is not None:  # heads_share=True: one set of relative embeddings
            layout[f"{attn}.emb_rel_k"] = ((1, 2 * c.window_size + 1, h // c.n_heads), False)
            layout[f"{attn}.emb_rel_v"] = ((1, 2 * c.window_size + 1, h // c.n_heads), False)
        layer_norm(f"encoder.encoder.norm_layers_1.{i}", h)
        conv(f"encoder.encoder.ffn_layers.{i}.conv_1", fc, h, k)
        conv(f"encoder.encoder.ffn_layers.{i}.conv_2", h, fc, k)
        layer_norm(f"encoder.encoder.norm_layers_2.{i}", h)
    conv("encoder.proj_m", c.out_channels, h, 1)
    if not c.mean_only:
        conv("encoder.proj_s", c.out_channels, h, 1)
    conv("encoder.proj_w.conv_1", c.filter_channels_dp, h + c.gin_channels, k)  # DurationPredictor
    layer_norm("encoder.proj_w.norm_1", c.filter_channels_dp)
    conv("encoder.proj_w.conv_2", c.filter_channels_dp, c.filter_channels_dp, k)
    layer_norm("encoder.proj_w.norm_2", c.filter_channels_dp)
    conv("encoder.proj_w.proj", 1, c.filter_channels_dp, 1)

    channels, hd = c.out_channels * c.n_sqz, c.hidden_channels_dec or c.hidden_channels
    for b in range(c.n_blocks_dec):  # FlowSpecDecoder: ActNorm, InvConvNear, CouplingBlock
        layout[f"decoder.flows.{3 * b}.logs"] = ((1, channels, 1), False)
        layout[f"decoder.flows.{3 * b}.bias"] = ((1, channels, 1), False)
        layout[f"decoder.flows.{3 * b + 1}.weight"] = ((c.n_split, c.n_split), False)
        block = f"decoder.flows.{3 * b + 2}"
        conv(f"{block}.start", hd, channels // 2, 1, weight_norm=True)
        conv(f"{block}.end", channels, hd, 1)
        if c.gin_channels:
            conv(f"{block}.wn.cond_layer", 2 * hd * c.n_block_layers, c.gin_channels, 1, weight_norm=True)
        for i in range(c.n_block_layers):  # modules.WN
            conv(f"{block}.wn.in_layers.{i}", 2 * hd, hd, c.kernel_size_dec, weight_norm=True)
            res_skip = 2 * hd if i < c.n_block_layers - 1 else hd
            conv(f"{block}.wn.res_skip_layers.{i}", res_skip, hd, 1, weight_norm=True)
    if c.n_speakers > 1:
        layout["emb_g.weight"] = ((c.n_speakers, c.gin_channels), False)
    return layout


def _reference_checkpoint(model: GlowTTS, seed: int = 5) -> dict[str, torch.Tensor]:
    """The weights of ``model`` stored the way the reference stores them, built by hand: plain
    tensors under the reference names, and for each weight-normed conv its ``weight_g`` (norm per
    output channel, shape ``[out, 1, 1]``) and a ``weight_v`` that is the weight times an arbitrary
    positive per-channel factor (only its direction counts, as in a trained checkpoint)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, (shape, weight_norm) in _reference_layout(model.config).items():
        module_name, _, attribute = name.rpartition(".")
        value = getattr(model.get_submodule(module_name), attribute).detach().clone()
        assert tuple(value.shape) == shape, name
        if weight_norm:
            scale = torch.rand(shape[0], 1, 1, generator=gen) * 3 + 0.5
            state[f"{module_name}.weight_g"] = value.norm(dim=(1, 2), keepdim=True)
            state[f"{module_name}.weight_v"] = value * scale
        else:
            state[name] = value
    return state


def _infer_with(model: GlowTTS, speakers: torch.Tensor | None) -> torch.Tensor:
    x, x_lengths, _, _ = make_batch()
    generator = torch.Generator().manual_seed(7)
    return model.eval().infer(x, x_lengths, g=speakers, generator=generator)[0]


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize(
    "overrides",
    [{}, {"n_speakers": 3, "gin_channels": 4, "mean_only": False, "prenet": False, "window_size": None}],
    ids=["single_speaker", "multi_speaker"],
)
def test_reference_checkpoint_loads_and_reproduces_output(prefix, overrides):
    torch.manual_seed(0)
    source = _trained_like(GlowTTS(GlowTTSConfig.tiny(N_VOCAB, **overrides)))
    speakers = torch.tensor([0, 2, 1, 2]) if source.n_speakers > 1 else None
    state = _reference_checkpoint(source)
    c = source.config
    weight_normed = c.n_blocks_dec * (1 + 2 * c.n_block_layers + (1 if c.gin_channels else 0))
    assert sum(key.endswith(".weight_g") for key in state) == sum(key.endswith(".weight_v") for key in state) == weight_normed
    assert not any("parametrizations" in key for key in state)
    checkpoint = {  # what the reference's utils.save_checkpoint writes
        "model": {prefix + key: value for key, value in state.items()},
        "iteration": 1000,
        "optimizer": {},
        "learning_rate": 1.0,
    }

    torch.manual_seed(1)
    target = GlowTTS(GlowTTSConfig.tiny(N_VOCAB, **overrides))
    expected = _infer_with(source, speakers)
    assert not torch.allclose(_infer_with(target, speakers)[:, :, :4], expected[:, :, :4])
    assert load_reference_state_dict(target, checkpoint) == []  # strict: every key used, none missing
    assert torch.allclose(_infer_with(target, speakers), expected, atol=1e-5)

    # also into a model prepared for inference (weight norm baked, inverses stored)
    torch.manual_seed(2)
    baked = GlowTTS(GlowTTSConfig.tiny(N_VOCAB, **overrides))
    baked.store_inverse()
    assert load_reference_state_dict(baked, checkpoint["model"]) == []
    assert torch.allclose(_infer_with(baked, speakers), expected, atol=1e-5)


def test_own_state_dict_and_baked_state_dict_load():
    source = _trained_like(make_model(seed=0))
    target = make_model(seed=1)
    assert load_reference_state_dict(target, source.state_dict()) == []
    assert torch.equal(_infer(target), _infer(source))
    source.store_inverse()  # plain `weight` tensors: converted back into g and v
    target = make_model(seed=1)
    assert load_reference_state_dict(target, source.state_dict()) == []
    assert torch.allclose(_infer(target), _infer(source), atol=1e-5)


def test_reference_checkpoint_errors_are_clear():
    state = to_reference_state_dict(make_model())
    broken = dict(state)
    del broken["decoder.flows.1.weight"]
    broken["decoder.flows.99.logs"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"1 missing, 1 unexpected(.|\n)*decoder\.flows\.1\.weight"):
        load_reference_state_dict(make_model(), broken)
    problems = load_reference_state_dict(make_model(), broken, strict=False)
    assert problems == [
        "missing from checkpoint: decoder.flows.1.weight",
        "unexpected in checkpoint: decoder.flows.99.logs",
    ]
    with pytest.raises(ValueError, match=r"shape mismatch(.|\n)*encoder\.emb\.weight"):
        load_reference_state_dict(GlowTTS(GlowTTSConfig.tiny(N_VOCAB + 1)), state)
