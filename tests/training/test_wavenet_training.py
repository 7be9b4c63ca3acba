"""WaveNet through the real training loop and the command line: teacher-forced mels from an
acoustic model, checkpoints, exact resume, a voice bundle that speaks, and streaming that gives
the same audio as whole-sentence synthesis for the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moksori.audio.io import load_audio_with_rate
from moksori.cli import main
from moksori.models.wavenet import WaveNet, WaveNetConfig, WaveNetVocoder
from moksori.synthesis import Synthesizer, export_onnx, load_voice, read_voice_json
from moksori.synthesis.synthesizer import FADE_OUT_S
from moksori.training import load_checkpoint, train
from moksori.training.logging import read_metrics

from .conftest import CONFIGS

TEXT = "네. 좋아요."


def _series(run_dir, key, split="train"):
    return [record[key] for record in read_metrics(run_dir, split) if key in record]


@pytest.fixture(scope="module")
def wavenet_run(sample_data, glow_checkpoint, tmp_path_factory):
    """``moksori train`` of the tiny recipe for 6 steps on the Glow-TTS's aligned mels."""
    run_dir = tmp_path_factory.mktemp("wavenet") / "run"
    code = main(["train", str(CONFIGS / "tiny_wavenet.yaml"), "--data-dir", str(sample_data), "--run-dir", str(run_dir),
                 "--max-steps", "6", "--vocoder-finetune-from", str(glow_checkpoint)])
    assert code == 0
    return run_dir


def test_wavenet_trains_on_aligned_mels_and_checkpoints(wavenet_run):
    assert np.isfinite(_series(wavenet_run, "loss")).all()  # logged every 10 steps: the first
    assert len(list((wavenet_run / "aligned_mels").glob("*.npy"))) == 9  # trained on the acoustic model's mels
    checkpoint = load_checkpoint(wavenet_run)
    assert (checkpoint["model_name"], checkpoint["step"]) == ("wavenet", 6)
    config = WaveNetConfig.from_dict(checkpoint["model_config"])
    assert config == WaveNetConfig.preset("tiny")
    model = WaveNet(config)
    model.load_state_dict(checkpoint["model"])
    # r9y9/wavenet_vocoder's parameter names.
    assert {"first_conv.weight", "conv_layers.0.conv.weight", "conv_layers.3.conv1x1c.weight",
            "conv_layers.0.conv1x1_skip.bias", "last_conv_layers.3.weight",
            "upsample_net.conv_in.weight", "upsample_net.up_layers.0.weight"} <= set(checkpoint["model"])


def test_wavenet_loss_falls_overfitting_and_resume_is_exact(make_recipe, tmp_path):
    def recipe(run_dir, **overrides):
        r = make_recipe("hifigan", run_dir, **overrides)
        r.model, r.model_config, r.options = "wavenet", {"preset": "tiny"}, {"example_seconds": 0.0}
        r.train.lr, r.train.grad_clip, r.data.batch_size = 0.003, 1.0, 2
        return r

    whole = train(recipe(tmp_path / "whole", checkpoint_interval=20, eval_interval=20), max_steps=40)
    losses = _series(whole, "loss")
    assert len(losses) == 40 and np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.2, losses[::5]
    resumed = tmp_path / "resumed"
    train(recipe(resumed, checkpoint_interval=20, eval_interval=20), max_steps=20)
    train(recipe(resumed, checkpoint_interval=20, eval_interval=20), max_steps=40, resume=True)
    np.testing.assert_allclose(_series(resumed, "loss"), losses, rtol=1e-5)


def test_wavenet_voice_says_and_streams_the_same_audio(wavenet_run, glow_checkpoint, tmp_path):
    voice_dir = tmp_path / "voice"
    assert main(["bundle", str(glow_checkpoint), "--vocoder", str(wavenet_run), "--out", str(voice_dir)]) == 0
    assert read_voice_json(voice_dir)["vocoder"]["model_name"] == "wavenet"
    voice = load_voice(voice_dir)
    assert isinstance(voice.vocoder_model, WaveNetVocoder) and voice.vocoder_model.context_frames is None

    out = tmp_path / "out.wav"
    options = {"seed": 3, "speed": 2.0}
    assert main(["say", TEXT, "--voice", str(voice_dir), "-o", str(out), "--seed", "3", "--speed", "2", "--no-onnx"]) == 0
    said, rate = load_audio_with_rate(out)
    assert rate == 22050 and said.size > 0 and np.abs(said).max() > 0

    # One sentence per acoustic call, as stream() does, so the mels are bit-identical.
    synth = Synthesizer(voice_dir, use_onnx=False, batch_size=1)
    synth._vocoder.chunk_samples = 1024
    whole = synth.synthesize(TEXT, **options)
    chunks = list(synth.stream(TEXT, **options))
    # More pieces than sentences: the first audio leaves after 1,024 samples, not a sentence (less
    # the sentence-end fade's samples, held back until the sentence ends).
    assert len(chunks) > 2 and chunks[0].size == 1024 - round(FADE_OUT_S * 22050)
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    # The CLI's wav (16-bit; sentences batched through the acoustic model) is the same audio.
    assert said.size == whole.size
    np.testing.assert_allclose(said, whole, atol=2e-3)

    # ONNX: the acoustic model exports; WaveNet has no single graph and stays in PyTorch.
    written = export_onnx(voice_dir)
    assert [p.name for p in written if p.name.startswith("vocoder")] == []
    onnx_synth = Synthesizer(voice_dir, batch_size=1)
    assert onnx_synth.uses_onnx
    onnx_synth._vocoder.chunk_samples = 1024
    first = next(iter(onnx_synth.stream(TEXT, **options)))
    assert first.size == chunks[0].size
    # ONNX Runtime's mel differs from PyTorch's in the last bits; the sampled audio follows it.
    assert np.mean(np.abs(first - chunks[0]) < 1e-3) > 0.99


def test_wavenet_examples_give_tensorboard_audio(make_recipe, sample_data, tmp_path):
    from moksori.training import RecipeError
    from moksori.training.tasks.base import DatasetInfo
    from moksori.training.tasks.wavenet import WaveNetTask

    recipe = make_recipe("hifigan", tmp_path / "run")
    recipe.model, recipe.model_config, recipe.options = "wavenet", {"preset": "tiny"}, {"example_seconds": 0.05}
    info = DatasetInfo.from_dir(sample_data)
    task = WaveNetTask(recipe, info, torch.device("cpu"))
    batch = {"mel": torch.full((1, 80, 20), -5.0), "mel_lengths": torch.tensor([20]),
             "wave": torch.zeros(1, 20 * 256), "wave_lengths": torch.tensor([20 * 256])}
    examples = task.examples(batch, 0)
    assert examples.audio["generated/0"].shape == (4 * 256,)  # 0.05 s → 4 frames, sampled
    assert "mel" in examples.images
    recipe.model_config = {"preset": "tiny", "upsample_scales": [4, 4]}
    with pytest.raises(RecipeError, match=r"model_config: WaveNetConfig.upsample_scales: product \[4, 4\] = 16"):
        WaveNetTask(recipe, info, torch.device("cpu"))
    recipe.model_config, recipe.options = {"preset": "tiny"}, {"example_seconds": -1}
    with pytest.raises(RecipeError, match="example_seconds must be >= 0"):
        WaveNetTask(recipe, info, torch.device("cpu"))


def test_wavenet_trains_without_clipping_as_r9y9s_mixture_of_logistics():
    """r9y9/wavenet_vocoder has clip_thresh=-1 since its mixture-of-logistics version. Its gradient
    norms run at 50-150 (small preset, sample set): a clip at 1 rescaled every step and the loss
    over steps 20-40 was 10.6 against 9.5 unclipped (11.3 against 9.3 with another seed)."""
    from moksori.training.recipe import load_recipe
    from moksori.training.tasks.wavenet import WaveNetTask

    assert WaveNetTask.default_grad_clip == 0.0
    vocoder = load_recipe(CONFIGS / "wavenet_ko.yaml", stage="vocoder")
    assert vocoder.model == "wavenet" and vocoder.train.grad_clip == 0
