import pytest
import torch

from moksori.models import build_model
from moksori.text import TextFrontend
from moksori.training import TrainingError, train
from moksori.training.checkpoint import (
    CHECKPOINT_FORMAT,
    SCHEMA_KEYS,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def short_run(make_recipe, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ckpt") / "run"
    recipe = make_recipe("glowtts", run_dir, checkpoint_interval=2, keep_last=2, eval_interval=100)
    return train(recipe, max_steps=7)


def test_checkpoints_follow_the_schema_and_keep_last(short_run):
    names = sorted(p.name for p in short_run.iterdir() if p.suffix == ".pt")
    # Every 2 steps plus the final step 7, of which the newest two are kept.
    assert names == ["ckpt_00000006.pt", "ckpt_00000007.pt", "latest.pt"]
    assert not [p for p in short_run.rglob("*") if p.name.endswith(".tmp")]
    checkpoint = torch.load(short_run / "ckpt_00000007.pt", map_location="cpu", weights_only=False)
    assert set(SCHEMA_KEYS) <= set(checkpoint)
    assert checkpoint["format"] == CHECKPOINT_FORMAT
    assert (checkpoint["model_name"], checkpoint["step"]) == ("glow_tts", 7)
    assert checkpoint["speakers"] == []
    assert checkpoint["mel_config"]["n_mels"] == 80
    state = checkpoint["train_state"]
    assert {"optimizers", "rng", "recipe", "batch_in_epoch", "modules"} <= set(state)


def test_checkpoint_rebuilds_the_model_without_outside_files(short_run):
    checkpoint = load_checkpoint(short_run)
    model = build_model(checkpoint["model_name"], checkpoint["model_config"])
    model.load_state_dict(checkpoint["model"])
    frontend = TextFrontend.from_settings(checkpoint["text_frontend"])
    ids = torch.tensor([frontend.to_ids("안녕하세요.")])
    mel, lengths, _ = model.eval().infer(ids, torch.tensor([ids.shape[1]]))
    assert mel.shape[1] == 80 and int(lengths[0]) > 0


def test_existing_run_needs_resume_and_resume_needs_a_checkpoint(short_run, make_recipe, tmp_path):
    with pytest.raises(TrainingError, match="resume"):
        train(make_recipe("glowtts", short_run), max_steps=8)
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        train(make_recipe("glowtts", tmp_path / "empty"), max_steps=2, resume=True)


def test_save_is_atomic_and_prunes(tmp_path):
    base = {key: None for key in SCHEMA_KEYS} | {"format": CHECKPOINT_FORMAT, "model": {"w": torch.ones(2)}}
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, base | {"step": step}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_00000002.pt", "ckpt_00000003.pt"]
    assert load_checkpoint(tmp_path)["step"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_00000002.pt", "ckpt_00000003.pt", "latest.pt"]
    assert [p.name for p in prune_checkpoints(tmp_path, 1)] == ["ckpt_00000002.pt"]
    with pytest.raises(ValueError, match="schema key"):
        save_checkpoint(tmp_path, {"step": 4})


def test_failed_write_leaves_no_temp_file_and_keeps_old_latest(tmp_path, monkeypatch):
    base = {key: None for key in SCHEMA_KEYS} | {"format": CHECKPOINT_FORMAT}
    save_checkpoint(tmp_path, base | {"step": 1})

    def broken_save(value, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, base | {"step": 2})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_00000001.pt", "latest.pt"]
    assert load_checkpoint(tmp_path)["step"] == 1


def test_a_full_disk_is_an_os_error_naming_the_checkpoint(tmp_path, monkeypatch):
    import builtins
    import errno
    import io

    from moksori.training import checkpoint as checkpoint_module

    class FullDisk(io.FileIO):
        def write(self, data):
            if self.tell() + len(data) > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    def open_on_full_disk(file, mode="r", *args, **kwargs):
        return FullDisk(file, "wb") if mode == "wb" else builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "open", open_on_full_disk, raising=False)
    base = {key: None for key in SCHEMA_KEYS} | {"format": CHECKPOINT_FORMAT, "model": {"w": torch.ones(1000)}}
    with pytest.raises(OSError) as caught:
        save_checkpoint(tmp_path, base | {"step": 1})
    # torch raised "RuntimeError: [enforce fail at inline_container.cc] unexpected pos", a traceback
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(tmp_path / "ckpt_00000001.pt")
    assert "No space left on device" in caught.value.strerror
    assert list(tmp_path.iterdir()) == []


def test_resume_without_latest_uses_the_newest_numbered_checkpoint(short_run, make_recipe, tmp_path):
    # A full disk can stop a run after ckpt_N.pt and before latest.pt; "resume it (--resume)"
    # then answered "cannot resume: no latest.pt".
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(short_run, run_dir)
    (run_dir / "latest.pt").unlink()
    newest = list_checkpoints(run_dir)[-1]
    resumed_from = torch.load(newest, weights_only=False)["step"]
    train(make_recipe("glowtts", run_dir), max_steps=resumed_from + 1, resume=True)
    assert load_checkpoint(run_dir)["step"] == resumed_from + 1


def test_a_save_removes_temp_files_of_writes_a_killed_run_left(tmp_path):
    # kill -9 during torch.save leaves .ckpt_N.pt.XXXX.tmp (a whole checkpoint) for good.
    left = [tmp_path / ".ckpt_00000001.pt._uxd381u.tmp", tmp_path / ".latest.pt.k2j4h1.tmp"]
    others = [tmp_path / ".notes.txt.abc.tmp", tmp_path / "ckpt_00000001.pt.tmp"]
    for path in left + others:
        path.write_bytes(b"partial")
    base = {key: None for key in SCHEMA_KEYS} | {"format": CHECKPOINT_FORMAT}
    save_checkpoint(tmp_path, base | {"step": 2})
    assert not any(path.exists() for path in left)
    assert all(path.exists() for path in others)


def test_load_checkpoint_rejects_other_files(tmp_path):
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a moksori-checkpoint-1"):
        load_checkpoint(tmp_path / "other.pt")


def test_a_refused_resume_keeps_the_runs_recipe(short_run, make_recipe):
    kept = (short_run / "recipe.yaml").read_text("utf-8")
    with pytest.raises(TrainingError, match="cannot resume: the run's checkpoint is a glow_tts model"):
        train(make_recipe("tacotron2", short_run), max_steps=9, resume=True)
    assert (short_run / "recipe.yaml").read_text("utf-8") == kept


def test_a_damaged_latest_checkpoint_is_named_with_the_reason(short_run, tmp_path):
    damaged = tmp_path / "latest.pt"
    damaged.write_bytes((short_run / "latest.pt").read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"latest\.pt: cannot read the checkpoint \(\w+"):
        load_checkpoint(damaged)


def test_resume_from_a_checkpoint_without_training_state_says_so(short_run, make_recipe, tmp_path):
    """An imported checkpoint (step 0, no optimizer state) written over a run's latest.pt."""
    run = tmp_path / "run"
    run.mkdir()
    checkpoint = torch.load(short_run / "latest.pt", map_location="cpu", weights_only=False)
    torch.save(checkpoint | {"train_state": None}, run / "latest.pt")
    with pytest.raises(TrainingError, match=r"cannot resume: .*latest\.pt holds no training state .*--init-from"):
        train(make_recipe("glowtts", run), max_steps=9, resume=True)


def test_resume_with_a_changed_model_config_names_the_keys(short_run, make_recipe):
    recipe = make_recipe("glowtts", short_run)
    recipe.model_config["hidden_channels"] = 24
    with pytest.raises(TrainingError, match=r"cannot resume: the model the recipe and data make differs from the "
                                            r"run's: hidden_channels \d+ in the run, 24 now"):
        train(recipe, max_steps=9, resume=True)
