"""moksori.checkpoint: hostile and damaged files get a clear error, and a pickle's code never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from moksori.checkpoint import CheckpointError, read_checkpoint, read_state_dict, torch_load



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
