"""benchmarks/flowtron_style.py's z separation: the classifier, and the measurement on a Flowtron whose
flows are still the identity (so its z is the mel, and both rows must agree)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from moksori.checkpoint import CHECKPOINT_FORMAT, SCHEMA_KEYS
from moksori.training.checkpoint import save_checkpoint
from moksori.models.flowtron import Flowtron, FlowtronConfig

from support.benchmarks import load_benchmark

STYLES = ["low_slow", "low_fast", "high_slow", "high_fast"]


def _bench():
    return load_benchmark("flowtron_style.py")


def test_centroid_accuracy_is_one_for_separate_classes_and_chance_for_identical_ones():
    bench = _bench()
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 6)
    separate = np.eye(4)[labels] * 10 + 0.1 * rng.standard_normal((24, 4))
    assert bench.centroid_accuracy(separate, labels) == 1.0
    noise = rng.standard_normal((24, 4))
    assert bench.centroid_accuracy(noise, labels) < 0.6
    assert bench.centroid_accuracy(separate, np.array(["a", "b"] * 12)) < 0.7  # labels unrelated to the features


def _fake_run(tmp_path: Path) -> tuple[Path, Path]:
    """A processed folder of 3 clips per style (pitch moves the low channels, rate the high ones) and
    the checkpoint of an untrained tiny Flowtron (zero-initialised couplings: z equals the mel)."""
    rng = np.random.default_rng(1)
    data, run_dir = tmp_path / "processed", tmp_path / "run"
    (data / "mels").mkdir(parents=True)
    config = FlowtronConfig.tiny(n_text=20, n_flows=2)
    records = []
    for style in STYLES:
        for i in range(3):
            mel = rng.standard_normal((config.n_mel_channels, 30)).astype(np.float32)
            mel[:40] += 2.0 if style.startswith("high") else -2.0
            mel[40:] += 2.0 if style.endswith("fast") else -2.0
            np.save(data / "mels" / f"{style}_{i}.npy", mel)
            records.append({"id": f"{style}_{i}", "mel": f"mels/{style}_{i}.npy", "ids": [3, 5, 7, 2, 9]})
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    torch.manual_seed(0)
    model = Flowtron(config)
    base = {key: None for key in SCHEMA_KEYS}
    save_checkpoint(run_dir, base | {"format": CHECKPOINT_FORMAT, "model_name": "flowtron", "step": 0,
                                     "model_config": config.to_dict(), "model": model.state_dict()})
    return run_dir, data


def test_z_separation_of_an_identity_flow_equals_the_mels(tmp_path):
    run_dir, data = _fake_run(tmp_path)
    result = _bench().z_separation(run_dir, data, STYLES, per_style=3)
    assert result["z"] == result["mel"]
    assert result["z"]["styles_accuracy"] == result["z"]["pitch_accuracy"] == result["z"]["rate_accuracy"] == 1.0
    assert abs(result["z"]["centroid_spread"] - 2.0) < 0.1  # every channel's centroids sit at ±2
