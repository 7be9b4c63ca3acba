from __future__ import annotations

import math

import pytest

from moksori.bench.synth import format_table, run_synth_benchmark


def test_benchmark_rows_on_a_tiny_voice() -> None:
    rows = run_synth_benchmark(configs=("glow_tts tiny + hifigan tiny",), threads=1, repeats=1, onnx=True)
    assert [(r["backend"], r["speech_s"] > 10) for r in rows] == [
        ("pytorch", False), ("pytorch", True), ("onnxruntime", False), ("onnxruntime", True)
    ]
    for row in rows:
        assert 4.0 < row["speech_s"] < 6.0 or 18.0 < row["speech_s"] < 22.0
        assert row["audio_s"] >= row["speech_s"]  # plus the silences between sentences
        for key in ("acoustic_rtf", "vocoder_rtf", "total_rtf", "first_chunk_s", "export_s", "peak_rss_mb"):
            assert math.isfinite(row[key]) and row[key] > 0, key
    assert "glow_tts tiny + hifigan tiny" in format_table(rows)


def test_unknown_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown configuration"):
        run_synth_benchmark(configs=("tacotron9 + magic",), onnx=False)
