"""The Vocos vocoder through the real training loop: spectral losses, checkpoints, exact resume,
and a voice bundle that the Synthesizer speaks with."""

import numpy as np
import pytest
import torch

from moksori.models.vocos import Vocos, VocosConfig
from moksori.synthesis import Synthesizer, load_voice, make_bundle, read_voice_json
from moksori.synthesis.synthesizer import HEAD_FRAMES
from moksori.training import load_checkpoint, train
from moksori.training.logging import read_metrics

THREE = "안녕하세요. 오늘은 날씨가 좋네요.\n\n같이 산책하러 갈까요?"


def _series(run_dir, key):
    return [record[key] for record in read_metrics(run_dir, "train") if key in record]


def vocos_recipe(make_recipe, run_dir, **train_overrides):
    """moksori/recipes/tiny_hifigan.yaml as a Vocos recipe: ``model: vocos``, tiny preset, mel + MR-STFT only."""
    recipe = make_recipe("hifigan", run_dir, adversarial=False, stft_loss=True, **train_overrides)
    recipe.model = "vocos"
    recipe.model_config = {"preset": "tiny"}
    recipe.data.batch_size = 2
    return recipe


@pytest.fixture(scope="module")
def vocos_run(make_recipe, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("vocos") / "run"
    return train(vocos_recipe(make_recipe, run_dir, checkpoint_interval=3, eval_interval=3), max_steps=6)


def test_vocos_trains_with_spectral_losses_and_checkpoints(vocos_run):
    mel, stft = _series(vocos_run, "mel_l1"), _series(vocos_run, "stft")
    assert len(mel) == len(stft) == 6 and np.isfinite(mel).all() and np.isfinite(stft).all()
    assert not _series(vocos_run, "disc") and not _series(vocos_run, "gen_adv")
    assert np.isfinite(read_metrics(vocos_run, "val")[-1]["mel_l1"])
    checkpoint = load_checkpoint(vocos_run)
    assert (checkpoint["model_name"], checkpoint["step"]) == ("vocos", 6)
    assert checkpoint["text_frontend"] is None
    config = VocosConfig.from_dict(checkpoint["model_config"])
    assert config == VocosConfig.preset("tiny")  # the data's framing is the default mel's
    model = Vocos(config)
    model.load_state_dict(checkpoint["model"])
    assert model.eval().infer(torch.zeros(80, 10)).shape == (10 * 256,)
    assert "generator" in checkpoint["train_state"]["optimizers"]


def test_vocos_resume_matches_uninterrupted_run(make_recipe, vocos_run, tmp_path):
    resumed = tmp_path / "resumed"
    train(vocos_recipe(make_recipe, resumed, checkpoint_interval=3, eval_interval=3), max_steps=3)
    train(vocos_recipe(make_recipe, resumed, checkpoint_interval=3, eval_interval=3), max_steps=6, resume=True)
    loss_a, loss_b = _series(vocos_run, "loss"), _series(resumed, "loss")
    assert len(loss_b) == 6
    np.testing.assert_allclose(loss_b, loss_a, rtol=1e-5)
    state_a, state_b = load_checkpoint(vocos_run)["model"], load_checkpoint(resumed)["model"]
    assert all(torch.allclose(state_a[key], state_b[key], atol=1e-6) for key in state_a)


def test_vocos_recipe_errors_name_the_field(make_recipe, tmp_path):
    from moksori.training import RecipeError

    recipe = vocos_recipe(make_recipe, tmp_path / "run")
    recipe.model_config = {"preset": "v1"}
    with pytest.raises(RecipeError, match=r"model_config.preset: unknown Vocos preset 'v1'"):
        train(recipe, max_steps=1)
    recipe.model_config = {"preset": "tiny", "kernel_size": 4}
    with pytest.raises(RecipeError, match=r"model_config: VocosConfig.kernel_size: must be odd"):
        train(recipe, max_steps=1)


def test_trained_vocos_bundles_into_a_voice_that_speaks_and_streams(vocos_run, glow_checkpoint, tmp_path):
    voice_dir = make_bundle(glow_checkpoint, tmp_path / "voice", vocoder_ckpt=vocos_run)
    data = read_voice_json(voice_dir)
    assert data["vocoder"]["model_name"] == "vocos" and data["training"]["vocoder"]["step"] == 6
    voice = load_voice(voice_dir)
    checkpoint = load_checkpoint(vocos_run)
    assert all(torch.equal(value, voice.vocoder.state_dict()[key]) for key, value in checkpoint["model"].items())

    synth = Synthesizer(voice_dir, use_onnx=False)
    # Slow speech: the barely trained acoustic model's first sentence must outlast head + context.
    options = {"seed": 3, "speed": 0.25, "sentence_silence_s": 0.1, "paragraph_silence_s": 0.5}
    whole = synth.synthesize(THREE, **options)
    assert whole.dtype == np.float32 and np.isfinite(whole).all() and np.abs(whole).max() > 0
    chunks = list(synth.stream(THREE, **options))
    assert len(chunks) == 4 and chunks[0].size == HEAD_FRAMES * 256  # the first sentence as head + rest
    np.testing.assert_allclose(np.concatenate(chunks), whole, atol=1e-4)
