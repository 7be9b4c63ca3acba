"""Flowtron through the one training loop: overfitting with a falling likelihood loss, the
one-flow-then-two curriculum (in one run and by warm start), the Tacotron2 text encoder."""

import base64
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from moksori.cli import main

from moksori.models.interfaces import Controls
from moksori.models.tacotron2 import Tacotron2, Tacotron2Config
from moksori.server.errors import ApiError
from moksori.training import load_checkpoint, train
from moksori.training.logging import read_metrics
from moksori.training.recipe import RecipeError
from moksori.training.tasks.base import DatasetInfo
from moksori.training.tasks.flowtron import FlowtronTask, load_text_encoder

CONFIGS = Path(__file__).resolve().parents[2] / "moksori" / "recipes"


def _series(run_dir, key):
    return [record[key] for record in read_metrics(run_dir, "train") if key in record]


@pytest.fixture(scope="module")
def flowtron_run(sample_data, tmp_path_factory):
    """A tiny Flowtron trained for 80 steps through ``moksori train`` (the first flow alone for 40)."""
    root = tmp_path_factory.mktemp("flowtron")
    recipe = yaml.safe_load((CONFIGS / "tiny_flowtron.yaml").read_text())
    recipe["data"]["dir"] = str(sample_data)
    recipe["train"].update(log_interval=1, progress=False, eval_interval=80, checkpoint_interval=80)
    recipe["options"]["single_flow_steps"] = 40
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run_dir = root / "run"
    assert main(["train", str(path), "--run-dir", str(run_dir), "--max-steps", "80"]) == 0
    return run_dir


def test_tiny_flowtron_overfits_with_the_curriculum(flowtron_run):
    run_dir = flowtron_run
    nll, gate, flows = _series(run_dir, "nll"), _series(run_dir, "gate"), _series(run_dir, "flows")
    assert len(nll) == 80
    assert flows[:40] == [1.0] * 40 and flows[40:] == [2.0] * 40
    # Measured (means of the first and last five steps): nll 14.9 -> 1.9; the gate is trained
    # once the second flow (which holds it) joins: 0.55 at step 40 -> 0.05.
    first, last = np.mean(nll[:5]), np.mean(nll[-5:])
    assert last < first - 8.0, (first, last)
    assert gate[:40] == [0.0] * 40 and gate[-1] < 0.5 * gate[40], (gate[40], gate[-1])
    val = read_metrics(run_dir, "val")
    assert val and np.isfinite(val[-1]["loss"]) and "attention_diagonality" in val[-1]
    # The recipe keeps the prior on, so validation also says how diagonal the attention is without it.
    assert 0.0 <= val[-1]["attention_diagonality_without_prior"] <= 1.0
    assert load_checkpoint(run_dir)["model_config"]["n_flows"] == 2


def test_two_flows_warm_start_from_one(make_recipe, tmp_path):
    one = make_recipe("flowtron", tmp_path / "one", single_flow_steps=0)
    one.model_config["n_flows"] = 1
    source = train(one, max_steps=2) / "latest.pt"
    two = make_recipe("flowtron", tmp_path / "two", single_flow_steps=0)
    two.init_from = str(source)
    run_dir = train(two, max_steps=1)
    first = load_checkpoint(source)["model"]
    warm = load_checkpoint(run_dir)["model"]
    assert "flows.1.ar_step.conv.weight" in warm and "flows.0.gate_layer.linear_layer.weight" in first
    # one step later the first flow is still close to its source; the second started as the identity
    assert torch.allclose(warm["flows.0.conv.weight"], first["flows.0.conv.weight"], atol=0.05)


def test_text_encoder_from_a_tacotron2(make_recipe, sample_data, tmp_path):
    info = DatasetInfo.from_dir(sample_data)
    tacotron = Tacotron2(Tacotron2Config.tiny(info.n_vocab))
    path = tmp_path / "tacotron2.pt"
    torch.save({"model": tacotron.state_dict()}, path)
    c = tacotron.config
    recipe = make_recipe("flowtron", tmp_path / "run", text_encoder_from=str(path))
    recipe.model_config.update(n_text_dim=c.encoder_embedding_dim, encoder_n_convolutions=c.encoder_n_convolutions,
                               encoder_kernel_size=c.encoder_kernel_size)
    task = FlowtronTask(recipe, info, torch.device("cpu"))
    assert "embedding.weight" in task.text_encoder_loaded and "encoder.lstm.weight_ih_l0" in task.text_encoder_loaded
    assert torch.equal(task.model.embedding.weight, tacotron.embedding.weight)
    assert torch.equal(task.model.encoder.convolutions[0][0].conv.weight, tacotron.encoder.convolutions[0][0].conv.weight)

    # the tiny preset's encoder (2 convolutions of width 3) does not fit this Tacotron2's
    with pytest.raises(RecipeError, match="text_encoder_from.*n_text_dim"):
        load_text_encoder(FlowtronTask(make_recipe("flowtron", tmp_path / "r2"), info, torch.device("cpu")).model, path)


# --- the trained voice: bundle, say with style controls, style transfer ---------------------------


@pytest.fixture(scope="module")
def flowtron_voice(flowtron_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("voice") / "tiny_flowtron"
    assert main(["bundle", str(flowtron_run), "--out", str(out)]) == 0
    return out


def test_say_with_sigma_and_a_style_reference(flowtron_voice, sample_data, tmp_path, capsys):
    import soundfile

    from moksori.audio import save_wav
    from moksori.synthesis import Synthesizer

    reference = tmp_path / "ref.wav"
    save_wav(reference, 0.3 * np.sin(np.linspace(0, 800 * np.pi, 22050)).astype(np.float32), 22050)
    out = tmp_path / "out.wav"
    args = ["say", "안녕하세요.", "--voice", str(flowtron_voice), "-o", str(out), "--seed", "1", "--sigma", "0.5",
            "--style-ref", str(reference), "--style-strength", "0.7", "--style-segments", "2"]
    assert main(args) == 0
    info = soundfile.info(str(out))
    assert info.samplerate == 22050 and info.frames > 0
    plain = tmp_path / "plain.wav"
    assert main(["say", "안녕하세요.", "--voice", str(flowtron_voice), "-o", str(plain), "--seed", "1", "--sigma", "0.5"]) == 0
    assert not np.array_equal(soundfile.read(str(out))[0][:1000], soundfile.read(str(plain))[0][:1000])
    # the same seed and sigma give the same audio
    again = tmp_path / "again.wav"
    assert main(["say", "안녕하세요.", "--voice", str(flowtron_voice), "-o", str(again), "--seed", "1", "--sigma", "0.5"]) == 0
    assert np.array_equal(soundfile.read(str(again))[0], soundfile.read(str(plain))[0])

    capsys.readouterr()
    assert main(args[:-4] + ["--style-strength", "1.5"]) == 2
    assert "style_strength must be in [0, 1]" in capsys.readouterr().err
    assert main(["say", "안녕", "--voice", str(flowtron_voice), "-o", str(out), "--style-component", "1"]) == 2
    assert "style_component" in capsys.readouterr().err
    assert main(["say", "안녕", "--voice", str(flowtron_voice), "-o", str(out), "--style-strength", "0.5"]) == 2
    assert "need a style reference" in capsys.readouterr().err
    synthesizer = Synthesizer(flowtron_voice)
    with pytest.raises(ValueError, match="unknown Flowtron style key"):
        synthesizer.synthesize("안녕.", style={"loudness": 2})


def test_style_transfer_moves_the_output_toward_the_reference(flowtron_voice, sample_data):
    """On the tiny trained voice, generated with sigma 0: the level of the output mel moves from
    the prior's toward the reference's as the strength grows, and a reference raised by 1.5
    (louder everywhere) raises the output by about as much. Measured on this 80-step model:
    reference level -4.9 -> output -3.1, -4.0, -4.9 at strength 0, 0.5, 1; raised reference
    -3.4 -> -3.1, -3.3, -3.4."""
    from moksori.data.dataset import TTSDataset
    from moksori.synthesis import Synthesizer

    adapter = Synthesizer(flowtron_voice).voice.acoustic_model
    item = TTSDataset(sample_data, "train")[0]
    ids = torch.as_tensor(item["ids"]).unsqueeze(0)
    lengths = torch.tensor([ids.size(1)])

    def level(reference: torch.Tensor, strength: float) -> float:
        style = {"ref_mel": reference, "ref_ids": ids[0], "strength": strength}
        zeros = lambda row, frames, channels: np.zeros((channels, frames), np.float32)  # noqa: E731
        out = adapter.infer(ids, lengths, Controls(noise_scale=0.0, style=style), zeros)
        return float(out.mel[0, :, : int(out.lengths[0])].mean())

    finals = []
    for reference in (item["mel"], item["mel"] + 1.5):
        target = float(reference.mean())
        levels = [level(reference, strength) for strength in (0.0, 0.5, 1.0)]
        gaps = [abs(value - target) for value in levels]
        assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.3, (levels, target)
        finals.append(levels[2])
    assert 1.0 < finals[1] - finals[0] < 2.0, finals


def test_finetune_from_a_flowtron_voice(flowtron_voice, sample_data, tmp_path):
    from moksori.synthesis import Synthesizer
    from moksori.training.finetune import finetune

    result = finetune(sample_data, flowtron_voice, out=tmp_path / "mine", run_dir=tmp_path / "runs",
                      acoustic_steps=2, vocoder_steps=0, progress=False)
    checkpoint = load_checkpoint(tmp_path / "runs" / "acoustic")
    assert checkpoint["model_name"] == "flowtron" and checkpoint["step"] == 2
    # the family's own learning rate, not the shipped recipe's Glow-TTS Noam scale
    assert result.summary["acoustic_lr"] is None
    wave = Synthesizer(result.voice_dir).synthesize("안녕.", noise_scale=0.5, seed=0)
    assert wave.size > 0 and np.isfinite(wave).all()


def test_exported_flowtron_voice_speaks_the_same_through_onnxruntime(flowtron_voice, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import shutil

    from moksori.synthesis import Synthesizer

    copy = tmp_path / "flowtron_onnx"
    shutil.copytree(flowtron_voice, copy)
    assert main(["export", str(copy), "--onnx"]) == 0
    assert {"acoustic.onnx", "acoustic.flow0.onnx", "acoustic.flow1.onnx"} <= {p.name for p in copy.iterdir()}
    text = "안녕하세요. 반가워요."
    torch_result = Synthesizer(copy, use_onnx=False).synthesize_report(text, noise_scale=0.5, seed=3)
    onnx_synth = Synthesizer(copy, use_onnx=True)
    assert onnx_synth.uses_onnx
    onnx_result = onnx_synth.synthesize_report(text, noise_scale=0.5, seed=3)
    assert onnx_result.wave.shape == torch_result.wave.shape
    # This tiny voice babbles to max_decoder_steps (800 autoregressive frames), so rounding
    # differences between the two runtimes grow along the sentence: measured max 2.3e-3 under
    # pytest-xdist, 1e-6 typical. A wrong graph differs by the signal itself (~0.1-0.4).
    difference = abs(onnx_result.wave - torch_result.wave)
    assert difference.max() < 1e-2 and difference.mean() < 1e-3, (difference.max(), difference.mean())
    assert onnx_result.alignment_summary() == torch_result.alignment_summary()


def test_resume_across_the_curriculum_matches_an_uninterrupted_run(make_recipe, tmp_path):
    def recipe(run_dir):
        r = make_recipe("flowtron", run_dir, single_flow_steps=3, checkpoint_interval=2, eval_interval=100)
        r.data.batch_size = 3
        return r

    straight = train(recipe(tmp_path / "straight"), max_steps=6)
    resumed = tmp_path / "resumed"
    train(recipe(resumed), max_steps=2)
    train(recipe(resumed), max_steps=6, resume=True)
    loss_a, loss_b = _series(straight, "loss"), _series(resumed, "loss")
    assert _series(resumed, "flows") == [1.0] * 3 + [2.0] * 3
    assert np.allclose(loss_a, loss_b, atol=1e-5), (loss_a, loss_b)


def test_mixture_prior_trains_and_its_components_are_selectable(make_recipe, tmp_path):
    recipe = make_recipe("flowtron", tmp_path / "run", single_flow_steps=0, eval_interval=100)
    recipe.model_config.update(n_components=2, mean_scale=1.0, n_flows=1)
    run_dir = train(recipe, max_steps=6)
    nll = _series(run_dir, "nll")
    assert len(nll) == 6 and np.isfinite(nll).all() and nll[-1] < nll[0]
    checkpoint = load_checkpoint(run_dir)
    assert "gaussian_mixture.prob_layer.linear_layer.weight" in checkpoint["model"]
    from moksori.models.flowtron import Flowtron, FlowtronAcoustic, FlowtronConfig

    model = Flowtron(FlowtronConfig.from_dict(checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])
    adapter = FlowtronAcoustic(model.eval())
    ids, lengths = torch.ones(1, 4, dtype=torch.long), torch.tensor([4])
    zeros = lambda row, frames, channels: np.zeros((channels, frames), np.float32)  # noqa: E731
    a = adapter.infer(ids, lengths, Controls(noise_scale=0.0, style={"component": 0}), zeros)
    b = adapter.infer(ids, lengths, Controls(noise_scale=0.0, style={"component": 1}), zeros)
    assert a.mel.shape != b.mel.shape or not torch.allclose(a.mel, b.mel)


def test_guided_attention_trains_the_attention_itself(make_recipe, tmp_path):
    """Without the prior, the guided attention loss falls as a tiny model trains: the attention
    itself moves onto the diagonal (the prior only multiplies it, and inference has no prior)."""
    recipe = make_recipe("flowtron", tmp_path / "run", single_flow_steps=0, use_attn_prior=False,
                         guided_attention_weight=20.0, eval_interval=100)
    train(recipe, max_steps=300)
    guided = _series(tmp_path / "run", "guided_attention")
    # Measured: 0.578 (a uniform attention) over the first ten steps, 0.318 over the last ten.
    assert len(guided) == 300 and np.mean(guided[-10:]) < 0.75 * np.mean(guided[:10]), (guided[:10], guided[-10:])
    nll = _series(tmp_path / "run", "nll")
    loss = _series(tmp_path / "run", "loss")
    gate = _series(tmp_path / "run", "gate")
    assert loss[0] == pytest.approx(nll[0] + gate[0] + 20.0 * guided[0], rel=1e-5)
    # Off by default (the reference has none).
    plain = make_recipe("flowtron", tmp_path / "plain", single_flow_steps=0)
    train(plain, max_steps=1)
    assert not _series(tmp_path / "plain", "guided_attention")
    with pytest.raises(ValueError, match="guided_attention"):
        make_recipe("flowtron", tmp_path / "bad", guided_attention_weight=-1.0)
    with pytest.raises(ValueError, match="gate_pos_weight"):
        make_recipe("flowtron", tmp_path / "bad", gate_pos_weight=0.0)


def test_cumulative_attention_trains_through_the_loop(make_recipe, tmp_path):
    """use_cumm_attention: the training pass runs its attention frame by frame; the likelihood
    falls, the location layer is trained and saved, and the voice synthesises from the checkpoint."""
    recipe = make_recipe("flowtron", tmp_path / "run", single_flow_steps=4, eval_interval=100, lr=0.01)
    recipe.model_config.update(use_cumm_attention=True)
    run_dir = train(recipe, max_steps=16)
    nll = _series(run_dir, "nll")
    assert len(nll) == 16 and np.mean(nll[-3:]) < np.mean(nll[:3]) - 1.0, nll
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint["model_config"]["use_cumm_attention"]
    from moksori.models.flowtron import Flowtron, FlowtronAcoustic, FlowtronConfig

    fresh = Flowtron(FlowtronConfig.from_dict(checkpoint["model_config"]))
    key = "flows.1.ar_step.attn_cond_layer.location_conv_out.conv.weight"
    assert not torch.equal(checkpoint["model"][key], fresh.state_dict()[key])  # trained, not the initial weights
    fresh.load_state_dict(checkpoint["model"])
    out = FlowtronAcoustic(fresh.eval()).infer(torch.ones(1, 5, dtype=torch.long), torch.tensor([5]),
                                               Controls(noise_scale=0.5), lambda row, frames, channels:
                                               np.random.default_rng(0).standard_normal((channels, frames)).astype(np.float32))
    assert out.mel.shape[1] == checkpoint["model_config"]["n_mel_channels"] and int(out.lengths[0]) >= 1


def test_say_with_a_style_reference_on_an_onnx_export_without_reference_encoder(
    make_recipe, tmp_path, capsys
):
    """A cumulative-attention Flowtron exports no reference encoder: ``say`` runs ONNX without a
    reference, and its PyTorch models (saying so) with one; the server refuses one by name."""
    pytest.importorskip("onnxruntime")
    from moksori.audio import save_wav
    from moksori.server.style import StyleRequest, acoustic_controls
    from moksori.synthesis import Synthesizer

    recipe = make_recipe("flowtron", tmp_path / "run", single_flow_steps=0)
    recipe.model_config.update(use_cumm_attention=True, max_decoder_steps=60)
    run_dir = train(recipe, max_steps=1)
    voice = tmp_path / "voice"
    assert main(["bundle", str(run_dir), "--out", str(voice)]) == 0
    assert main(["export", str(voice), "--onnx"]) == 0
    onnx = Synthesizer(voice)
    assert onnx.uses_onnx and not onnx.onnx_style_references
    assert Synthesizer(voice, use_onnx=False).onnx_style_references

    reference = tmp_path / "ref.wav"
    save_wav(reference, 0.3 * np.sin(np.linspace(0, 800 * np.pi, 22050)).astype(np.float32), 22050)
    out = tmp_path / "out.wav"
    capsys.readouterr()
    assert main(["say", "안녕.", "--voice", str(voice), "-o", str(out), "--seed", "1", "--style-ref", str(reference)]) == 0
    assert "cannot encode a style reference; using its PyTorch models" in capsys.readouterr().err
    assert out.is_file()
    assert main(["say", "안녕.", "--voice", str(voice), "-o", str(out), "--seed", "1", "--sigma", "0.5"]) == 0
    assert "PyTorch" not in capsys.readouterr().err

    request = acoustic_controls(style_ref_wav=base64.b64encode(reference.read_bytes()).decode())["style"]
    assert isinstance(request, StyleRequest)
    with pytest.raises(ApiError, match="cannot encode a style reference") as error:
        request.controls(onnx)
    assert error.value.status == 422


def test_text_encoder_from_another_family_says_it_needs_a_tacotron2(glow_checkpoint, make_recipe, sample_data, tmp_path):
    model = FlowtronTask(make_recipe("flowtron", tmp_path / "run"), DatasetInfo.from_dir(sample_data), torch.device("cpu")).model
    with pytest.raises(RecipeError, match=r"^options\.text_encoder_from: .*latest\.pt holds a glow_tts model, not a tacotron2"):
        load_text_encoder(model, glow_checkpoint)
