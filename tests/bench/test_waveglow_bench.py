"""benchmarks/waveglow.py end to end on tiny settings, and its hiss score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from support.benchmarks import load_benchmark


def _bench():
    return load_benchmark("waveglow.py")


def test_hiss_score_is_the_output_level_where_the_reference_is_silent():
    bench = _bench()
    rng = np.random.default_rng(0)
    reference = np.zeros(256 * 40, dtype=np.float32)
    reference[: 256 * 20] = 0.5 * np.sin(np.arange(256 * 20) * 0.3)  # speech, then 20 silent frames
    hiss = 0.01 * rng.standard_normal(reference.size).astype(np.float32)
    assert abs(bench.hiss_db(reference, reference + hiss) - 20 * np.log10(0.01)) < 0.5
    assert bench.hiss_db(reference, reference) < -200  # no hiss at all
    assert np.isnan(bench.hiss_db(np.ones(2560, dtype=np.float32), np.ones(2560, dtype=np.float32)))


def _fake_data(root: Path, clips: int = 2) -> Path:
    """A preprocessed-folder stand-in: val.jsonl with clips (a tone with a silent tail) and their mels."""
    import soundfile

    from moksori.audio import mel_spectrogram

    root.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(clips):
        wave = np.zeros(256 * 30, dtype=np.float32)
        wave[: 256 * 20] = 0.3 * np.sin(np.arange(256 * 20) * (0.05 + 0.02 * i))
        soundfile.write(root / f"c{i}.wav", wave, 22050)
        np.save(root / f"c{i}.npy", mel_spectrogram(wave).numpy())
        records.append({"id": f"c{i}", "audio": f"c{i}.wav", "mel": f"c{i}.npy"})
    (root / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def test_speed_and_denoiser_rows_and_the_report(tmp_path):
    import torch

    from moksori.audio import MelConfig
    from moksori.checkpoint import write_imported_checkpoint
    from moksori.models.waveglow import WaveGlow, WaveGlowConfig

    bench = _bench()
    data = _fake_data(tmp_path / "data")
    speed = bench.speed_rows(bench.tiled_mel(data, 0.2), 1, ["tiny"])
    assert [(r["vocoder"], r["denoise"]) for r in speed] == [
        ("hifigan v1", None), ("waveglow tiny", 0.0), ("waveglow tiny", 0.01)]
    assert all(r["rtf"] > 0 and abs(r["audio_s"] - 18 * 256 / 22050) < 1e-9 for r in speed)

    torch.manual_seed(0)
    config = WaveGlowConfig.preset("tiny")
    checkpoint = write_imported_checkpoint(tmp_path / "wg.pt", "waveglow", config.to_dict(),
                                           WaveGlow(config).state_dict(), MelConfig().to_dict())
    denoise = bench.denoiser_rows(data, checkpoint, [0.0, 0.5], clips=2, f0=False, sigmas=(0.0,))
    assert [(r["sigma"], r["denoise"], r["clips"]) for r in denoise] == [(0.666, 0.0, 2), (0.666, 0.5, 2), (0.0, 0.0, 2)]
    assert all(np.isfinite(r["mcd"]) and np.isfinite(r["hiss_db"]) for r in denoise[:2])
    assert np.isnan(denoise[2]["mcd"])  # sigma 0 on a random-weight flow: silence, nothing to align
    text = bench.report(speed, denoise, {"threads": 1, "repeats": 1, "train_preset": "tiny", "train_steps": 0})
    assert "| waveglow tiny | 3.5M | 0.01 |" in text and "| 0.666 | 0.5 |" in text and "| 0.0 | 0.0 |" in text
