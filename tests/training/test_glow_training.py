import logging

import numpy as np
import pytest
import torch

from moksori.data.dataset import LengthBucketSampler, TTSDataset
from moksori.training import TrainingError, load_checkpoint, train
from moksori.training.tasks import glow_tts as tasks_module
from moksori.training.logging import read_metrics


def _series(run_dir, key):
    return [record[key] for record in read_metrics(run_dir, "train") if key in record]


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_tiny_glow_tts_overfits(make_recipe, tmp_path, amp):
    # bf16: CPU autocast (matmuls and convolutions in bfloat16), as `train.amp: bf16` runs on a CPU.
    run_dir = train(make_recipe("glowtts", tmp_path / "run", eval_interval=150, amp=amp), max_steps=150)
    mle, duration = _series(run_dir, "mle"), _series(run_dir, "duration")
    assert len(mle) == 150
    first_mle, last_mle = np.mean(mle[:5]), np.mean(mle[-5:])
    first_dur, last_dur = np.mean(duration[:5]), np.mean(duration[-5:])
    # Measured over these 150 steps (means of the first and last five): mle 1.98 -> 0.33,
    # duration 1.49 -> 0.04.
    assert last_mle < first_mle - 1.0, (first_mle, last_mle)
    assert last_dur < 0.25 * first_dur, (first_dur, last_dur)
    val = read_metrics(run_dir, "val")
    assert val and np.isfinite(val[-1]["loss"])
    assert (run_dir / "logs").is_dir() and any((run_dir / "logs").iterdir())
    assert load_checkpoint(run_dir)["step"] == 150


def test_resume_matches_uninterrupted_run(make_recipe, tmp_path):
    def recipe(run_dir):
        r = make_recipe("glowtts", run_dir, warmup_steps=5, checkpoint_interval=4, eval_interval=5)
        r.data.batch_size = 3  # 8 utterances: epochs of 3 batches, so both halves cross epochs
        r.model_config.update(p_dropout=0.1, p_dropout_dec=0.05)  # dropout must repeat too
        return r

    k = 7
    straight = train(recipe(tmp_path / "straight"), max_steps=2 * k)
    resumed = tmp_path / "resumed"
    train(recipe(resumed), max_steps=k)
    assert load_checkpoint(resumed)["train_state"]["batch_in_epoch"] == 1
    # As if the first run had gone on past its last checkpoint before it was stopped.
    with open(resumed / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 8, "split": "train", "loss": 123.0}\n')
    train(recipe(resumed), max_steps=2 * k, resume=True)

    loss_a, loss_b = _series(straight, "loss"), _series(resumed, "loss")
    assert len(loss_a) == len(loss_b) == 2 * k
    assert loss_b[-1] == pytest.approx(loss_a[-1], abs=1e-5)
    assert np.allclose(loss_a, loss_b, atol=1e-5)
    state_a, state_b = load_checkpoint(straight)["model"], load_checkpoint(resumed)["model"]
    assert all(torch.allclose(state_a[key], state_b[key], atol=1e-6) for key in state_a)


def test_non_finite_loss_is_skipped_with_utterance_ids(make_recipe, sample_data, tmp_path, monkeypatch, caplog):
    real_loss = tasks_module.glow_tts_loss
    calls = {"n": 0}

    def loss_with_one_nan(outputs, x_lengths):
        calls["n"] += 1
        losses = real_loss(outputs, x_lengths)
        if calls["n"] == 3:
            losses["total"] = losses["total"] * float("nan")
        return losses

    monkeypatch.setattr(tasks_module, "glow_tts_loss", loss_with_one_nan)
    with caplog.at_level(logging.WARNING, logger="moksori.training"):
        run_dir = train(make_recipe("glowtts", tmp_path / "run", eval_interval=100), max_steps=5)

    skipped = [r.getMessage() for r in caplog.records if "step skipped" in r.getMessage()]
    assert len(skipped) == 1
    assert "step 2:" in skipped[0] and "non-finite model loss" in skipped[0]
    # The ids of the batch the loop drew at step 2: 8 utterances in batches of 4, so epoch 1's first.
    dataset = TTSDataset(sample_data, "train")
    recipe = make_recipe("glowtts", tmp_path / "unused")
    sampler = LengthBucketSampler(dataset.frame_lengths, recipe.data.batch_size, seed=recipe.train.seed)
    sampler.set_epoch(1)
    batch_ids = [dataset.records[i]["id"] for i in list(sampler)[0]]
    assert skipped[0].endswith("utterances: " + ", ".join(batch_ids))
    records = read_metrics(run_dir, "train")
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 4, 5]
    assert [r["skipped_steps"] for r in records] == [0, 0, 1, 0, 0]
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint["step"] == 5
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_too_many_bad_steps_stop_training(make_recipe, tmp_path, monkeypatch):
    def always_nan(outputs, x_lengths):
        nan = torch.tensor(float("nan"), requires_grad=True)
        return {"mle": nan, "duration": nan, "total": nan}

    monkeypatch.setattr(tasks_module, "glow_tts_loss", always_nan)
    with pytest.raises(TrainingError, match="consecutive steps"):
        train(make_recipe("glowtts", tmp_path / "run", max_bad_steps=2), max_steps=10)
