import json
import logging

import pytest
import torch

from moksori.training import load_checkpoint, train
from moksori.training.tasks import DatasetInfo, build_task
from moksori.training.warm_start import WarmStartReport, apply_freeze, read_init_source, warm_start


@pytest.fixture()
def source_checkpoint(glow_checkpoint):
    return glow_checkpoint


@pytest.fixture()
def other_vocab_checkpoint(source_checkpoint, tmp_path):
    """The source checkpoint as if trained with a symbol table of 7 more symbols."""
    checkpoint = torch.load(source_checkpoint, map_location="cpu", weights_only=False)
    emb = checkpoint["model"]["encoder.emb.weight"]
    checkpoint["model"]["encoder.emb.weight"] = torch.cat([emb, torch.randn(7, emb.shape[1])])
    checkpoint["model_config"]["n_vocab"] += 7
    path = tmp_path / "other_vocab.pt"
    torch.save(checkpoint, path)
    return path


def test_different_vocabulary_skips_only_the_embedding(make_recipe, sample_data, other_vocab_checkpoint, tmp_path):
    recipe = make_recipe("glowtts", tmp_path / "run")
    task = build_task(recipe, DatasetInfo.from_dir(sample_data), torch.device("cpu"))
    report = warm_start(task, other_vocab_checkpoint)
    assert [entry.split(":")[0] for entry in report.skipped] == ["encoder.emb.weight"]
    assert "shape" in report.skipped[0] and "encoder.emb.weight" in report.describe()
    assert report.not_in_source == ["encoder.emb.weight"]
    source = torch.load(other_vocab_checkpoint, map_location="cpu", weights_only=False)["model"]
    state = task.inference_module().state_dict()
    assert len(report.loaded) == len(state) - 1
    for name in report.loaded:
        assert torch.equal(state[name], source[name]), name
    assert not torch.equal(state["encoder.emb.weight"], source["encoder.emb.weight"][: state["encoder.emb.weight"].shape[0]])


def test_train_with_init_from_reports_skipped_weights(make_recipe, other_vocab_checkpoint, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="moksori.training"):
        run_dir = train(make_recipe("glowtts", tmp_path / "run"), init_from=str(other_vocab_checkpoint), max_steps=2)
    assert f"TensorBoard logs: {run_dir / 'logs'} (view them: tensorboard --logdir" in caplog.text
    (line,) = [r.getMessage() for r in caplog.records if "warm start" in r.getMessage()]
    assert "skipped 1 (encoder.emb.weight: " in line and "\n" not in line
    names = json.loads((run_dir / "warm_start.json").read_text())
    assert names["skipped"][0].startswith("encoder.emb.weight") and len(names["loaded"]) > 10
    assert load_checkpoint(run_dir)["step"] == 2


def test_warm_start_summary_is_one_line_with_the_first_names():
    report = WarmStartReport("base.pt", loaded=["a"] * 34, skipped=[f"w{i}: shape" for i in range(273)],
                             not_in_source=[f"n{i}" for i in range(5)])
    assert report.describe() == (
        "warm start from base.pt: loaded 34 tensors, skipped 273 (w0: shape; w1: shape; w2: shape, and 270 more), "
        "5 kept at their initial values (not in the source) (n0; n1; n2, and 2 more)")
    assert WarmStartReport("x").describe() == (
        "warm start from x: loaded 0 tensors, skipped 0, 0 kept at their initial values (not in the source)")


def test_loader_workers_follow_the_cpu_count(monkeypatch):
    from moksori.training import loop

    monkeypatch.setattr(loop, "usable_cpus", lambda: 2)
    assert loop.loader_workers(4) == 1 and loop.loader_workers(0) == 0 and loop.loader_workers(4, world_size=2) == 0
    monkeypatch.setattr(loop, "usable_cpus", lambda: 32)
    assert loop.loader_workers(4) == 4 and loop.loader_workers(16, world_size=4) == 7


def test_freeze_keeps_frozen_parameters_unchanged(make_recipe, source_checkpoint, tmp_path):
    recipe = make_recipe("glowtts", tmp_path / "run")
    recipe.freeze = ["decoder"]
    run_dir = train(recipe, init_from=str(source_checkpoint), max_steps=4)
    before = load_checkpoint(source_checkpoint)["model"]
    after = load_checkpoint(run_dir)["model"]
    decoder = [k for k in after if k.startswith("decoder.")]
    encoder = [k for k in after if k.startswith("encoder.") and after[k].is_floating_point()]
    assert decoder and encoder
    assert all(torch.equal(before[k], after[k]) for k in decoder)
    assert any(not torch.equal(before[k], after[k]) for k in encoder)


def test_freeze_prefixes_match_whole_names(make_recipe, sample_data, tmp_path):
    task = build_task(make_recipe("glowtts", tmp_path / "run"), DatasetInfo.from_dir(sample_data), torch.device("cpu"))
    frozen = apply_freeze(task.nets, task.inference_name, ["encoder.encoder"])
    assert frozen and all(name.startswith("encoder.encoder.") for name in frozen)
    assert all(p.requires_grad for n, p in task.model.named_parameters() if not n.startswith("encoder.encoder."))
    with pytest.raises(ValueError, match="'encod'"):
        apply_freeze(task.nets, task.inference_name, ["encod"])


def test_voice_bundle_folder_is_a_warm_start_source(source_checkpoint, tmp_path):
    bundle = tmp_path / "voice"
    bundle.mkdir()
    (bundle / "voice.json").write_text("{}")
    state = load_checkpoint(source_checkpoint)["model"]
    torch.save(state, bundle / "acoustic.pt")
    loaded, others = read_init_source(bundle, "glow_tts")
    assert set(loaded) == set(state) and others == {}
    with pytest.raises(ValueError, match="holds a glow_tts model"):
        read_init_source(source_checkpoint, "hifigan")


@pytest.mark.parametrize("content", [b"hello world\n", b"PK\x03\x04 truncated"])
def test_a_file_that_is_no_checkpoint_is_named_with_the_reason(content, tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"junk\.pt: cannot read the weights \(\w+"):
        read_init_source(path, "glow_tts")


def test_a_voice_of_another_family_is_refused_as_a_checkpoint_is(source_checkpoint, tmp_path):
    """A Flowtron voice into a Tacotron2 run loaded 12 of 56 tensors (a Vocos voice into WaveGlow: 0)
    and trained on as if warm-started."""
    bundle = tmp_path / "voice"
    bundle.mkdir()
    (bundle / "voice.json").write_text(json.dumps({"acoustic": {"model_name": "glow_tts"}, "vocoder": {"model_name": "vocos"}}))
    torch.save(load_checkpoint(source_checkpoint)["model"], bundle / "acoustic.pt")
    with pytest.raises(ValueError, match=r"voice's acoustic model is a glow_tts model, not a tacotron2 one"):
        read_init_source(bundle, "tacotron2")
    with pytest.raises(ValueError, match=r"voice's vocoder model is a vocos model, not a waveglow one"):
        read_init_source(bundle, "waveglow")
    assert set(read_init_source(bundle, "glow_tts")[0]) == set(load_checkpoint(source_checkpoint)["model"])


def test_a_source_with_no_fitting_weights_is_refused(make_recipe, sample_data, tmp_path):
    """A state dict of other names (or a checkpoint of another model saved bare) warm-started
    nothing and trained on from scratch, reporting 'loaded 0 tensors'."""
    path = tmp_path / "unrelated.pt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, path)
    task = build_task(make_recipe("glowtts", tmp_path / "run"), DatasetInfo.from_dir(sample_data), torch.device("cpu"))
    with pytest.raises(ValueError, match=r"unrelated\.pt: no weight in it fits this glow_tts model"):
        warm_start(task, path)
