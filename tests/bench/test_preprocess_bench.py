import pytest

from moksori.bench.preprocess import main, run_preprocess_benchmark


def test_benchmark_times_both_pipelines_on_the_same_clips(tmp_path):
    result = run_preprocess_benchmark(n_clips=4, workers=2, language="ko", work_dir=tmp_path)
    assert result["n_clips"] == 4 and result["kept"] + result["rejected"] == 4
    assert result["audio_minutes"] > 0.1
    for key in ("ours_s", "baseline_s", "startup_s"):
        assert result[key] > 0
    assert result["ours_audio_min_per_s"] == pytest.approx(result["audio_minutes"] / result["ours_s"], rel=0.01)
    assert result["speedup"] == pytest.approx(result["baseline_s"] / result["ours_s"], rel=0.01)
    assert len(list((tmp_path / "baseline").glob("*.npy"))) == 4
    assert len(list((tmp_path / "ours" / "mels").glob("*.npy"))) == result["kept"]


def test_main_reuses_the_sample_dataset_and_prints_the_numbers(tmp_path, capsys):
    main(["--n", "3", "--workers", "1", "--lang", "en", "--work-dir", str(tmp_path)])
    wavs = tmp_path / "sample_en_3" / "wavs"
    stamps = {p.name: p.stat().st_mtime_ns for p in wavs.iterdir()}
    assert main(["--n", "3", "--workers", "1", "--lang", "en", "--work-dir", str(tmp_path)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in wavs.iterdir()} == stamps
    out = capsys.readouterr().out
    assert "min of audio per second" in out and "ratio" in out
    with pytest.raises(SystemExit):
        main(["--lang", "fr"])
