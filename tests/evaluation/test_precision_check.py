"""The reduced-precision quality guard on a tiny voice (untrained weights: plumbing and verdicts)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from moksori.cli import main
from moksori.evaluation.precision_check import (
    PrecisionCheck,
    SentenceComparison,
    check_voice_precision,
    compare_waves,
    format_check,
    record_checks,
)
from moksori.synthesis import Synthesizer
from moksori.synthesis import precision as precision_module

SENTENCES = ["안녕하세요.", "오늘 날씨가 좋네요."]


@pytest.fixture()
def voice(tmp_path: Path, tiny_voice: Path) -> Path:
    return Path(shutil.copytree(tiny_voice, tmp_path / "voice"))


def _row(mcd: float = 0.1, same: bool = True, f0: float = math.nan) -> SentenceComparison:
    return SentenceComparison("문장", same, 1.0, mcd, f0, 0.0)


def test_bf16_check_keeps_durations_and_measures_the_difference(voice: Path) -> None:
    check = check_voice_precision(voice, "bf16", sentences=SENTENCES, rounds=1, f0=False)
    assert [row.text for row in check.rows] == SENTENCES
    assert all(row.same_durations and row.duration_ratio == 1.0 for row in check.rows)
    assert all(math.isfinite(row.mcd_db) and row.mcd_db >= 0 for row in check.rows)
    assert check.fp32_s > 0 and check.reduced_s > 0 and "acoustic.model.decoder" in check.modules
    summary = check.summary()
    assert summary["identical_durations"] and summary["safe"] == (not check.failures)


def test_compare_waves_is_zero_for_the_same_wave_and_grows_with_noise() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    wave = (0.5 * np.sin(2 * np.pi * 150 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    same = compare_waves(wave, wave, 22050, f0=False)
    assert same["mcd_db"] == 0.0
    noisy = compare_waves(wave, wave + 0.05 * rng.standard_normal(wave.size).astype(np.float32), 22050, f0=False)
    assert noisy["mcd_db"] > 0.3
    shorter = compare_waves(wave, wave[:-2000], 22050, f0=False)  # different lengths: DTW
    assert math.isfinite(shorter["mcd_db"]) and math.isnan(shorter["f0_rmse_cents"])


def test_verdicts_follow_the_limits() -> None:
    assert PrecisionCheck("bf16", [_row(), _row(0.2, f0=5.0)], 1.0, 0.5).safe
    loud = PrecisionCheck("bf16", [_row(), _row(0.45)], 1.0, 0.5)
    assert not loud.safe and loud.failures == ["mcd_db 0.45 >= 0.3"]
    moved = PrecisionCheck("int8", [_row(same=False), _row()], 1.0, 0.5)
    assert moved.failures == ["durations changed in 1 of 2 sentences"]
    pitch = PrecisionCheck("bf16", [_row(f0=35.0)], 1.0, 0.5)
    assert pitch.failures == ["f0_rmse_cents 35 >= 20"]


def test_record_recommends_the_fastest_safe_precision(voice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = record_checks(voice, [PrecisionCheck("bf16", [_row()], 1.0, 0.5), PrecisionCheck("int8", [_row(0.9)], 1.0, 0.25)])
    assert section["recommended"] == "bf16"  # int8 is faster but failed
    assert section["checked"]["int8"]["safe"] is False and section["checked"]["bf16"]["speedup"] == 2.0
    assert isinstance(section["machine"]["native_bf16"], bool)
    monkeypatch.setattr(precision_module, "native_bf16", lambda: True)
    assert Synthesizer(voice, precision="auto").precision == "bf16"
    # On a CPU without bf16 instructions the bf16 recommendation (measured elsewhere) is not taken.
    monkeypatch.setattr(precision_module, "native_bf16", lambda: False)
    assert Synthesizer(voice, precision="auto").precision == "fp32"
    # A later check that finds bf16 not faster here drops the recommendation back to fp32.
    section = record_checks(voice, [PrecisionCheck("bf16", [_row()], 1.0, 1.2)])
    assert section["recommended"] == "fp32" and section["checked"]["int8"]["safe"] is False
    stored = json.loads((voice / "voice.json").read_text(encoding="utf-8"))["precision"]
    assert stored["limits"]["mcd_db"] == 0.3 and stored["limits"]["identical_durations"] is True


def test_cli_checks_records_and_refuses_a_missing_dataset(
    voice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    out_json = tmp_path / "check.json"
    with caplog.at_level("WARNING"):
        assert main(["evaluate", str(voice), "--precision", "bf16", "--limit", "1", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "bf16 vs fp32" in out and "recommended precision" in out
    assert "not checked" not in caplog.text  # the check itself does not warn about being unchecked
    assert json.loads(out_json.read_text())["precision_checks"][0]["precision"] == "bf16"
    assert "bf16" in json.loads((voice / "voice.json").read_text(encoding="utf-8"))["precision"]["checked"]
    assert main(["evaluate", str(voice)]) != 0
    assert "needs a preprocessed DATASET_DIR" in capsys.readouterr().err


def _ar_row(mcd: float, spread: float, ratio: float = 1.0, ok: bool = True, fp32_ok: bool = True) -> SentenceComparison:
    return SentenceComparison("문장", False, ratio, mcd, math.nan, math.nan, alignment_ok_fp32=fp32_ok,
                              alignment_ok_reduced=ok, reseed_mcd_db=spread, reseed_log_duration=0.05)


def test_an_autoregressive_voice_is_judged_against_fp32s_own_spread() -> None:
    """Durations may move (fp32 moves them itself for another noise draw); the reduced precision
    must stay within that spread and keep every alignment fp32 gets right."""
    within = PrecisionCheck("int8", [_ar_row(1.0, 1.5), _ar_row(1.4, 1.3, ratio=1.03)], 1.0, 0.5)
    assert within.autoregressive and within.safe
    assert within.summary()["criterion"].startswith("within fp32's own spread")
    assert within.summary()["fp32_spread_mcd_db"] == pytest.approx(1.4)
    wider = PrecisionCheck("int8", [_ar_row(2.0, 1.5), _ar_row(1.9, 1.3)], 1.0, 0.5)
    assert wider.failures == ["mean MCD to fp32 1.95 dB > fp32's own spread 1.4 dB"]
    slower = PrecisionCheck("int8", [_ar_row(1.0, 1.5, ratio=1.2)], 1.0, 0.5)
    assert len(slower.failures) == 1 and slower.failures[0].startswith("mean duration change 20.00%")
    lost = PrecisionCheck("int8", [_ar_row(1.0, 1.5, ok=False), _ar_row(1.0, 1.5, ok=False, fp32_ok=False)], 1.0, 0.5)
    assert lost.failures == ["the alignment fails in 1 of the 1 sentences fp32 reads"]
    # A deterministic voice has no spread: then any change at all is too much.
    assert not PrecisionCheck("int8", [_ar_row(0.01, 0.0)], 1.0, 0.5).safe


def test_a_tacotron2_voice_gets_the_spread_check(tmp_path: Path) -> None:
    import torch

    from moksori.bench.serve import write_untrained_checkpoint
    from moksori.models import registry
    from moksori.models.tacotron2 import Tacotron2Config
    from moksori.synthesis import make_bundle
    from moksori.text import TextFrontend

    frontend = TextFrontend("ko")
    torch.manual_seed(0)
    model = registry.get("tacotron2").build(Tacotron2Config.tiny(len(frontend.symbols), max_decoder_steps=60))
    voice = make_bundle(write_untrained_checkpoint(tmp_path / "acoustic.pt", model, "tacotron2", frontend),
                        tmp_path / "voice", name="t2")
    check = check_voice_precision(voice, "int8", sentences=SENTENCES, rounds=1, f0=False)
    assert check.autoregressive
    for row in check.rows:
        assert row.alignment_ok_fp32 is not None and row.alignment_ok_reduced is not None
        assert row.reseed_mcd_db is not None and row.reseed_mcd_db >= 0 and row.reseed_log_duration >= 0
    assert "autoregressive voice: compared with fp32's own spread over 2 other seeds" in format_check(check)
    assert check.summary()["criterion"].startswith("within fp32's own spread")
