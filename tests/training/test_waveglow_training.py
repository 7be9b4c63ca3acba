"""WaveGlow through the real training loop: maximum likelihood falls when overfitting the tiny
sample set, checkpoints hold the model, a resumed run continues exactly, teacher-forced mels."""

import numpy as np
import pytest
import torch

from moksori.models.waveglow import WaveGlow, WaveGlowConfig
from moksori.training import load_checkpoint, train
from moksori.training.logging import read_metrics


def _series(run_dir, key):
    return [record[key] for record in read_metrics(run_dir, "train") if key in record]


def waveglow_recipe(make_recipe, run_dir, **overrides):
    recipe = make_recipe("waveglow", run_dir, **overrides)
    recipe.data.batch_size = 2
    return recipe


@pytest.fixture(scope="module")
def waveglow_run(make_recipe, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("waveglow") / "run"
    return train(waveglow_recipe(make_recipe, run_dir, checkpoint_interval=3, eval_interval=3), max_steps=6)


def test_tiny_waveglow_likelihood_rises_when_overfitting(make_recipe, tmp_path):
    recipe = waveglow_recipe(make_recipe, tmp_path / "run", eval_interval=20, lr=2e-3)
    run_dir = train(recipe, max_steps=20)
    loss = _series(run_dir, "loss")
    assert len(loss) == 20 and np.isfinite(loss).all()
    # A negative log-likelihood per sample (0 at the start: the flow begins as an orthogonal map of
    # near-silent audio) falls by nats, not by a ratio. Measured: means of the first and last five
    # steps -0.12 -> -0.93.
    assert np.mean(loss[-5:]) < np.mean(loss[:5]) - 0.5, (loss[:5], loss[-5:])
    assert np.isfinite(read_metrics(run_dir, "val")[-1]["loss"])


def test_waveglow_checkpoint_holds_the_model(waveglow_run):
    checkpoint = load_checkpoint(waveglow_run)
    assert (checkpoint["model_name"], checkpoint["step"]) == ("waveglow", 6)
    assert checkpoint["text_frontend"] is None
    config = WaveGlowConfig.from_dict(checkpoint["model_config"])
    assert config == WaveGlowConfig.preset("tiny")
    model = WaveGlow(config)
    model.load_state_dict(checkpoint["model"])
    assert model.eval().infer(torch.zeros(1, 80, 10), sigma=0.5).shape == (1, 10 * 256)
    assert set(checkpoint["train_state"]["optimizers"]) == {"model"}


def test_waveglow_resume_matches_uninterrupted_run(make_recipe, waveglow_run, tmp_path):
    resumed = tmp_path / "resumed"
    train(waveglow_recipe(make_recipe, resumed, checkpoint_interval=3, eval_interval=3), max_steps=3)
    train(waveglow_recipe(make_recipe, resumed, checkpoint_interval=3, eval_interval=3), max_steps=6, resume=True)
    loss_a, loss_b = _series(waveglow_run, "loss"), _series(resumed, "loss")
    assert len(loss_b) == 6
    np.testing.assert_allclose(loss_b, loss_a, rtol=1e-5)
    state_a, state_b = load_checkpoint(waveglow_run)["model"], load_checkpoint(resumed)["model"]
    assert all(torch.allclose(state_a[key], state_b[key], atol=1e-6) for key in state_a)


def test_waveglow_recipe_errors_name_the_field(make_recipe, tmp_path):
    from moksori.training import RecipeError

    recipe = waveglow_recipe(make_recipe, tmp_path / "run")
    recipe.model_config = {"preset": "v1"}
    with pytest.raises(RecipeError, match=r"model_config.preset: unknown WaveGlow preset 'v1'"):
        train(recipe, max_steps=1)
    recipe.model_config = {"preset": "tiny", "n_group": 7}
    with pytest.raises(RecipeError, match=r"model_config: WaveGlowConfig.n_group: must be even"):
        train(recipe, max_steps=1)


def test_waveglow_trains_on_teacher_forced_glow_tts_mels(make_recipe, glow_checkpoint, tmp_path):
    recipe = waveglow_recipe(make_recipe, tmp_path / "run", eval_interval=100)
    recipe.vocoder_finetune_from = str(glow_checkpoint)
    run_dir = train(recipe, max_steps=2)
    assert len(list((run_dir / "aligned_mels").glob("*.npy"))) == 9
    assert np.isfinite(_series(run_dir, "loss")).all() and len(_series(run_dir, "loss")) == 2
