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


def test_flops_rows_count_the_graph_and_compare_with_the_peak() -> None:
    import torch

    from moksori.bench.flops import count_flops

    conv = torch.nn.Conv1d(8, 4, 3)
    assert count_flops(lambda: conv(torch.zeros(1, 8, 102))) == 2 * 8 * 4 * 3 * 100  # 2 per multiply-add
    rows = run_synth_benchmark(configs=("glow_tts tiny + vocos tiny",), threads=1, repeats=1, onnx=False,
                               flops=True, precisions=("fp32", "int8"))
    assert [(r["precision"], r["speech_s"] > 10) for r in rows] == [
        ("fp32", False), ("fp32", True), ("int8", False), ("int8", True)
    ]
    for row in rows:
        assert row["peak_fp32_gflops"] > 0 and row["peak_bf16_gflops"] > 0
        for model in ("acoustic", "vocoder"):
            assert row[f"{model}_gflop_per_audio_s"] > 0 and row[f"{model}_gflops"] > 0
            assert row[f"{model}_peak_share"] == pytest.approx(
                row[f"{model}_gflops"] / max(row["peak_fp32_gflops"], row["peak_bf16_gflops"]))
    # FLOPs per second of audio do not depend on the length (a convolutional vocoder is linear in it).
    assert rows[0]["vocoder_gflop_per_audio_s"] == pytest.approx(rows[1]["vocoder_gflop_per_audio_s"], rel=0.05)
    table = format_table(rows)
    assert "GFLOP/audio s" in table and "pytorch/int8" in table


def test_precision_that_applies_to_nothing_is_skipped() -> None:
    rows = run_synth_benchmark(configs=("glow_tts tiny + hifigan tiny",), threads=1, repeats=1, onnx=False,
                               precisions=("int8",))
    assert rows == []  # Glow-TTS's decoder and HiFi-GAN have no Linear layers to quantise
