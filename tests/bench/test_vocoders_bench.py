"""benchmarks/vocoders.py end to end on tiny presets and a budget of a few CPU seconds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from support.benchmarks import load_benchmark


def _bench():
    return load_benchmark("vocoders.py")


def test_held_out_sentences_are_in_no_prompt_pool() -> None:
    bench = _bench()
    assert not bench._prompt_pool().intersection(bench.HELD_OUT)


def test_whole_run_on_tiny_vocoders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import moksori.voices as shipped

    if not shipped.default_voice_available():
        pytest.skip("no shipped default voice in this installation")
    bench = _bench()
    # WaveGlow only: the shipped voice is a Vocos, and the other families take its path.
    monkeypatch.setattr(bench, "TRAINEES", tuple(
        bench.Trainee(f"{t.family} tiny", t.family, "tiny", t.lr, {}, t.options, t.grad_clip)
        for t in bench.TRAINEES if t.family == "waveglow"))
    work = tmp_path / "work"
    assert bench.main(["--work", str(work), "--train-clips", "6", "--clips", "1", "--max-seconds", "1", "--budget-cpu-s", "1",
                       "--jobs", "1", "--strengths", "0.1", "--hiss-strengths", "1", "--no-dnsmos",
                       "--no-first-audio"]) == 0
    results = json.loads((work / "results.json").read_text())
    labels = [row["label"] for row in results["rows"]]
    assert labels == ["Griffin-Lim", "ko_default Vocos", "waveglow tiny, denoiser off", "waveglow tiny, denoiser 0.1"]
    for run in results["settings"]["training"]:
        # The first segment (5 steps), then more until less than one step's CPU time of the budget is left.
        assert run["steps"] >= 5 and run["cpu_s"] * (1 + 1 / run["steps"]) >= 1.0
    rows = {row["label"]: row for row in results["rows"]}
    assert all(row["rtf"] > 0 and math.isfinite(row["scores"]["hiss_db"]) for row in rows.values())
    # The shipped vocoder (trained for hours) beats five-step ones on held-out copy synthesis.
    assert rows["ko_default Vocos"]["scores"]["mcd"] < rows["waveglow tiny, denoiser off"]["scores"]["mcd"]
    assert rows["Griffin-Lim"]["params_m"] == 0 and rows["ko_default Vocos"]["params_m"] > 1
    study = results["denoiser"]
    assert set(study["hiss_db"]) == {"0.666", "0"} and set(study["subtracted_vs_hiss_db"]) == {"0.1"}
    assert study["hiss_profile_rows"]["1.0"]["hiss_db"] < rows["waveglow tiny, denoiser off"]["scores"]["hiss_db"]
    report = (work / "report.md").read_text()
    assert "| ko_default Vocos | shipped (hours) | 3.58M |" in report
    assert "strength 0.1 against the hiss" in report


def test_hiss_profile_subtraction_removes_stationary_noise() -> None:
    import torch

    from moksori.models.waveglow import Denoiser

    rng = np.random.default_rng(0)
    noise = torch.from_numpy(0.05 * rng.standard_normal(22050).astype(np.float32))
    tone = torch.from_numpy(0.5 * np.sin(np.arange(22050) * 2 * np.pi * 440 / 22050).astype(np.float32))
    other_noise = torch.from_numpy(0.05 * rng.standard_normal(22050).astype(np.float32))
    cleaned = Denoiser(noise)(tone + other_noise, 1.0)
    residual = cleaned - tone
    assert residual.pow(2).mean() < 0.5 * other_noise.pow(2).mean()
