from support.benchmarks import load_benchmark


def _script():
    return load_benchmark("vocoder_memory.py")


def test_whole_and_chunked_runs_agree_and_report_peak_memory(tmp_path):
    row = _script().measure("glow_tts tiny + hifigan tiny", tmp_path)
    assert row["whole_audio_s"] == row["chunked_audio_s"] > 10  # one long sentence: spans are used
    assert row["max_abs_difference"] < 1e-4
    for mode in ("whole", "chunked"):
        assert row[f"{mode}_peak_rss_mb"] >= row[f"{mode}_rss_before_mb"] > 0
