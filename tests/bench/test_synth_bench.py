import math

import pytest

from moksori.bench.synth import _random_voice, format_table, main, run_synth_benchmark
from moksori.synthesis import read_voice_json


def test_vocos_and_small_glow_tts_configurations_build(tmp_path):
    voice = read_voice_json(_random_voice("glow_tts small + vocos small", tmp_path / "small"))
    assert voice["acoustic"]["model_config"]["hidden_channels"] == 128  # GlowTTSConfig.small
    assert voice["vocoder"]["model_name"] == "vocos"
    assert (voice["vocoder"]["model_config"]["dim"], voice["vocoder"]["model_config"]["num_layers"]) == (256, 8)
    hifigan = read_voice_json(_random_voice("glow_tts  tiny+hifigan tiny", tmp_path / "hifigan"))
    assert hifigan["vocoder"]["model_name"] == "hifigan"
    griffin_lim = read_voice_json(_random_voice("glow_tts tiny + griffin_lim", tmp_path / "gl"))
    assert griffin_lim["vocoder"] == {"name": "griffin_lim"}
    for bad in ("glow_tts small + vocos v1", "glow_tts huge + vocos small", "glow_tts tiny + hifigan small"):
        with pytest.raises(ValueError, match="unknown configuration.*vocos base\\|small\\|tiny"):
            _random_voice(bad, tmp_path / "bad")


def test_benchmark_rows_for_a_tiny_vocos_voice():
    rows = run_synth_benchmark(configs=("glow_tts tiny + vocos tiny",), threads=1, repeats=1, onnx=True)
    assert [(r["backend"], r["speech_s"] > 10) for r in rows] == [
        ("pytorch", False), ("pytorch", True), ("onnxruntime", False), ("onnxruntime", True)
    ]
    for row in rows:
        assert 4.0 < row["speech_s"] < 6.0 or 18.0 < row["speech_s"] < 22.0
        for key in ("acoustic_rtf", "vocoder_rtf", "total_rtf", "first_chunk_s", "export_s"):
            assert math.isfinite(row[key]) and row[key] > 0, key
    assert "glow_tts tiny + vocos tiny" in format_table(rows)


def test_main_accepts_a_vocos_config(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert main(["--config", "glow_tts tiny + vocos tiny", "--no-onnx", "--threads", "1", "--repeats", "1",
                 "--json", str(out)]) == 0
    assert "glow_tts tiny + vocos tiny" in capsys.readouterr().out
    assert out.read_text().count('"backend": "pytorch"') == 2


def test_waveglow_configurations_build(tmp_path):
    voice = read_voice_json(_random_voice("glow_tts tiny + waveglow tiny", tmp_path / "waveglow"))
    assert voice["vocoder"]["model_name"] == "waveglow" and voice["vocoder"]["model_config"]["n_flows"] == 4


@pytest.mark.parametrize("flag", ["--repeats", "--threads"])
def test_zero_repeats_or_threads_are_refused_by_name(flag, capsys):
    """--repeats 0 ran, then said only "no median for empty data"."""
    with pytest.raises(SystemExit):
        main([flag, "0"])
    assert f"{flag} must be at least 1, got 0" in capsys.readouterr().err
