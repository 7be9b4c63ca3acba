"""benchmarks/device_check.py, the GPU machine's prepared checks, run here on a CPU: the kit, the
training checks of two families, the WaveGlow fp16 comparison, and a failing check failing the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from support.benchmarks import load_benchmark


def _script():
    return load_benchmark("device_check.py")


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    kit = tmp_path_factory.mktemp("device") / "kit"
    assert _script().main(["prepare", "--kit", str(kit), "--no-wheels"]) == 0
    return kit


def test_run_trains_resumes_and_vocodes_each_family(kit, tmp_path, capsys):
    script = _script()
    assert script.main(["run", "--kit", str(kit), "--out", str(tmp_path), "--families", "glowtts,vocos"]) == 0
    report = json.loads((tmp_path / "device_check.json").read_text())
    checks = report["checks"]
    assert sorted(checks) == ["glowtts.bf16", "glowtts.fp16", "glowtts.resume",
                              "vocos.bf16", "vocos.fp16", "vocos.resume", "vocos.vocoder"]
    assert all(result["ok"] for result in checks.values())
    assert checks["glowtts.resume"]["loss_diff"] == 0.0 and checks["glowtts.resume"]["weight_diff"] == 0.0
    assert len(checks["vocos.fp16"]["losses"]) == script.STEPS
    assert checks["vocos.fp16"]["scaler"] is None  # fp16 trains in float32 on a CPU, without a scaler
    assert checks["vocos.vocoder"]["relative_max_diff"] == 0.0  # CPU against CPU here
    assert not (tmp_path / "runs").exists()  # the checkpoints stay on the machine
    assert "ok   glowtts.resume" in capsys.readouterr().out


def test_a_failing_check_fails_the_run_and_names_the_error(kit, tmp_path, monkeypatch, capsys):
    script = _script()

    def broken(*_args):
        raise RuntimeError("Expected all tensors to be on the same device")

    monkeypatch.setattr(script, "check_resume", broken)
    assert script.main(["run", "--kit", str(kit), "--out", str(tmp_path), "--families", "wavenet", "--amp", ""]) == 1
    checks = json.loads((tmp_path / "device_check.json").read_text())["checks"]
    assert checks["wavenet.resume"] == {"ok": False, "error": "RuntimeError: Expected all tensors to be on the same device",
                                        "seconds_taken": checks["wavenet.resume"]["seconds_taken"]}
    assert "FAIL wavenet.resume" in capsys.readouterr().out


def test_waveglow_half_precision_matches_float32(kit):
    result = _script().check_waveglow_half(kit, 0.3, torch.device("cpu"), presets=("tiny",))
    tiny = result["tiny"]
    assert result["ok"] and tiny["finite"]
    assert 0 < tiny["fp16_relative_max_error"] < 0.05  # half precision: close, not equal
    assert tiny["rtf_fp32"] > 0 and tiny["rtf_fp16"] > 0


def test_run_refuses_unknown_families_and_a_missing_kit(kit, tmp_path):
    script = _script()
    with pytest.raises(SystemExit):
        script.main(["run", "--kit", str(kit), "--out", str(tmp_path), "--families", "tacotron3"])
    with pytest.raises(SystemExit):
        script.main(["run", "--kit", str(tmp_path / "none"), "--out", str(tmp_path)])
