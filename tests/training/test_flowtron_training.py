"""Flowtron through the one training loop: overfitting with a falling likelihood loss, the
one-flow-then-two curriculum (in one run and by warm start), the Tacotron2 text encoder."""

import numpy as np
import pytest
import torch

from moksori.models.tacotron2 import Tacotron2, Tacotron2Config
from moksori.training import load_checkpoint, train
from moksori.training.logging import read_metrics
from moksori.training.recipe import RecipeError
from moksori.training.tasks.base import DatasetInfo
from moksori.training.tasks.flowtron import FlowtronTask, load_text_encoder


def _series(run_dir, key):
    return [record[key] for record in read_metrics(run_dir, "train") if key in record]


def test_tiny_flowtron_overfits_with_the_curriculum(make_recipe, tmp_path):
    recipe = make_recipe("flowtron", tmp_path / "run", eval_interval=80, single_flow_steps=40)
    run_dir = train(recipe, max_steps=80)
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
