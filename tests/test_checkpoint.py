"""moksori.checkpoint: hostile and damaged files get a clear error, and a pickle's code never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from moksori.checkpoint import CheckpointError, read_checkpoint, read_pickled_module, read_state_dict, torch_load



class Exploit:
    """Unpickling this calls ``open(marker, "w")``: the classic code-execution pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_runs_code_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": "moksori-checkpoint-1", "model_name": "glow_tts", "model": Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil.pt: cannot read the checkpoint"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"evil.pt: cannot read the weights"):
        read_state_dict(path)
    assert not marker.exists()


def test_damaged_and_foreign_files_name_the_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"format": "moksori-checkpoint-1", "model_name": "glow_tts", "model_config": {}, "model": {},
                "mel_config": {}, "step": 3, "rng": {"numpy": __import__("numpy").arange(3)}}, good)
    assert read_checkpoint(good)["step"] == 3  # NumPy arrays (a run's RNG state) are allowed
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"cut.pt: cannot read the checkpoint"):
        read_checkpoint(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign.pt: field 'format' is None"):
        read_checkpoint(foreign)
    with pytest.raises(CheckpointError, match=r"missing.pt: checkpoint not found"):
        read_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"model_name' is 'glow_tts'; expected one of hifigan"):
        read_checkpoint(good, kinds=["hifigan"])
    assert torch_load(good)["format"] == "moksori-checkpoint-1"


def test_a_compressed_archive_is_refused_before_it_unpacks(tmp_path: Path) -> None:
    """A decompression bomb: torch reads deflated zip entries too, so 32 KB could become 32 MB of
    zeros (or 511 KB, 512 MB); torch.save never compresses, so a compressed entry is refused."""
    import zipfile

    plain = tmp_path / "plain.pt"
    torch.save({"format": "moksori-checkpoint-1", "model": {"w": torch.zeros(8 * 1024 * 1024)}}, plain)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(entry.filename, source.read(entry.filename))
    assert bomb.stat().st_size < plain.stat().st_size / 100
    with pytest.raises(CheckpointError, match=r"bomb.pt: \d+ compressed archive entries"):
        torch_load(bomb)
    with pytest.raises(CheckpointError, match=r"bomb.pt: cannot read the checkpoint \(.*compressed archive entries"):
        read_checkpoint(bomb)
    with pytest.raises(CheckpointError, match=r"compressed archive entries"):
        read_pickled_module(bomb, ["glow.WaveGlow"])
    assert torch_load(plain)["model"]["w"].numel() == 8 * 1024 * 1024  # what torch.save wrote still reads


def test_a_refused_pickle_never_advises_running_its_code(tmp_path: Path) -> None:
    """torch's own message says to retry with weights_only=False, which runs the file's code."""
    path = tmp_path / "evil.pt"
    torch.save({"model": Exploit(tmp_path / "ran")}, path)
    with pytest.raises(CheckpointError) as refused:
        read_checkpoint(path)
    message = str(refused.value)
    assert "weights_only" not in message and "trust" not in message
    assert "never runs a checkpoint's pickled code" in message and "(it names io.open)" in message
