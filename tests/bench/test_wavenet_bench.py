"""benchmarks/wavenet_incremental.py end to end on the tiny preset and a few samples."""

from __future__ import annotations

import json
from pathlib import Path

from support.benchmarks import load_benchmark


def _load_script():
    return load_benchmark("wavenet_incremental.py")


def test_wavenet_benchmark_reports_ratio_latency_and_same_output(tmp_path: Path, capsys) -> None:
    bench = _load_script()
    code = bench.main(["--presets", "tiny", "--seconds", "0.03", "--naive-samples", "20", "--threads", "1",
                       "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    (row,) = results["rows"]
    assert row["preset"] == "tiny" and row["receptive_field"] == 13 and row["naive_samples"] == 20
    assert row["same_output_max_diff"] < 1e-9  # naive and incremental give the same samples
    assert row["incremental_rtf"] > 0 and row["naive_rtf"] > 0 and row["first_piece_s"] > 0
    assert row["synth_first_chunk_s"] > 0 and results["hifigan_v1_rtf"] > 0
    assert row["incremental_torch_rtf"] > 0 and row["ratio_torch"] > 0
    assert "| tiny | 13 samples |" in capsys.readouterr().out
    assert (tmp_path / "report.md").read_text().startswith("WaveNet generation on 1 CPU thread")
