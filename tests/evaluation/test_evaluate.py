import json
import math
import shutil
import sys
import types
from pathlib import Path

import pytest

from moksori.data.manifest import read_manifest
from moksori.cli import main as cli_main
from moksori.evaluation.evaluate import EvaluationResult, evaluate_voice, format_table, to_json


@pytest.fixture(scope="module")
def result(tiny_voice, tiny_dataset) -> EvaluationResult:
    return evaluate_voice(tiny_voice, tiny_dataset, progress=False, asr=False, dnsmos=False)


def test_every_val_utterance_gets_finite_figures(result, tiny_dataset):
    val_ids = [record["id"] for record in read_manifest(tiny_dataset, "val")]
    assert [row.id for row in result.rows] == val_ids
    for row in result.rows:
        assert row.error is None
        for value in (row.mcd_db, row.vuv_error, row.duration_ratio, row.recording_s, row.synthesis_s):
            assert value is not None and math.isfinite(value)
        assert row.mcd_db > 0.0 and row.duration_ratio > 0.0 and 0.0 <= row.vuv_error <= 1.0
        # An untrained voice babbles: F0 RMSE exists only where both clips have voiced frames.
        assert (row.f0_rmse_cents is None) == (row.f0_voiced_frames == 0)
        assert row.cer_synthesis is None and row.cer_recording is None  # the judges are off
        assert row.dnsmos_ovrl_synthesis is None
    assert "--no-asr" in result.asr_note and "--no-dnsmos" in result.dnsmos_note


def test_summary_is_mean_and_median_over_rows(result):
    summary = result.summary
    mcds = [row.mcd_db for row in result.rows]
    assert summary["mcd_db"]["n"] == len(mcds)
    assert summary["mcd_db"]["mean"] == pytest.approx(sum(mcds) / len(mcds))
    assert summary["cer_synthesis"] == {"mean": None, "median": None, "n": 0}


def test_synthesis_is_reproducible_with_the_seed(result, tiny_voice, tiny_dataset):
    again = evaluate_voice(tiny_voice, tiny_dataset, limit=1, progress=False, asr=False, dnsmos=False)
    assert again.rows[0].mcd_db == result.rows[0].mcd_db


def test_split_all_and_limit(tiny_voice, tiny_dataset):
    three = evaluate_voice(tiny_voice, tiny_dataset, split="all", limit=3, progress=False, asr=False, dnsmos=False)
    assert [row.id for row in three.rows] == [r["id"] for r in read_manifest(tiny_dataset, "all")[:3]]


def test_table_lists_utterances_and_summary(result):
    table = format_table(result)
    for row in result.rows:
        assert row.id in table
    assert "MCD dB" in table and "median" in table
    assert f"{result.summary['mcd_db']['mean']:.2f}" in table
    assert "CER not computed" in table and "DNSMOS not computed" in table


def test_table_compares_two_voices(result):
    table = format_table(result, result)
    assert "mean / median" in table
    mcd = result.summary["mcd_db"]
    assert table.count(f"{mcd['mean']:.2f} / {mcd['median']:.2f}") == 2
    mcd_line = next(line for line in table.splitlines() if line.startswith("MCD dB"))
    assert mcd_line.rstrip().endswith("=")


def test_json_is_serialisable(result):
    data = json.loads(json.dumps(to_json(result)))
    assert data["split"] == "val" and len(data["rows"]) == len(result.rows)
    assert data["summary"]["mcd_db"]["n"] == len(result.rows)


def test_cer_with_an_asr_model(tiny_voice, tiny_dataset, tmp_path, monkeypatch):
    # A fake faster_whisper that "hears" the utterance's own text in every clip: CER 0 for both.
    texts = iter([])

    class EchoModel:
        def __init__(self, path, **options):
            pass

        def transcribe(self, audio, **options):
            return iter([types.SimpleNamespace(text=next(texts))]), None

    monkeypatch.setitem(sys.modules, "faster_whisper", types.SimpleNamespace(WhisperModel=EchoModel))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.bin").write_bytes(b"\0")
    record = read_manifest(tiny_dataset, "val")[0]
    texts = iter([record["text"], record["text"][:-3]])  # synthesis heard exactly, recording cut short

    evaluated = evaluate_voice(tiny_voice, tiny_dataset, limit=1, asr_model=model_dir, progress=False, dnsmos=False)
    (row,) = evaluated.rows
    assert evaluated.asr_note is None
    assert row.asr_synthesis == record["text"]
    assert row.cer_synthesis == 0.0
    assert 0.0 < row.cer_recording < 1.0
    assert "CER synthesis" in format_table(evaluated)


def test_main_prints_the_table_and_writes_json(tiny_voice, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "eval" / "result.json"
    code = cli_main(["evaluate", str(tiny_voice), str(tiny_dataset), "--limit", "1", "--json", str(out), "--compare", str(tiny_voice), "--no-asr", "--no-dnsmos"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "mean / median" in printed and str(out) in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert len(data["evaluations"]) == 2
    assert data["evaluations"][0]["rows"][0]["mcd_db"] == data["evaluations"][1]["rows"][0]["mcd_db"]


def test_missing_dataset_is_a_clear_error(tiny_voice, tmp_path):
    with pytest.raises(FileNotFoundError, match="preprocessed folder"):
        evaluate_voice(tiny_voice, tmp_path, progress=False, asr=False, dnsmos=False)


def test_a_missing_recording_is_an_error_row_and_the_rest_go_on(tiny_voice, tiny_dataset, tmp_path):
    dataset = Path(shutil.copytree(tiny_dataset, tmp_path / "copy"))
    first, _ = read_manifest(dataset, "val")
    (dataset / first["audio"]).unlink()
    evaluated = evaluate_voice(tiny_voice, dataset, progress=False, asr=False, dnsmos=False)
    assert "file not found" in evaluated.rows[0].error and evaluated.rows[0].mcd_db is None
    assert evaluated.rows[1].error is None and evaluated.rows[1].mcd_db is not None
    assert evaluated.summary["mcd_db"]["n"] == 1
    assert "error: " in format_table(evaluated)


def test_an_attention_voice_reports_its_failed_alignments(tiny_dataset, tmp_path):
    """Tacotron2 voices get an ``alignment_failed`` per utterance (its mean is the failure rate);
    Glow-TTS, which has no alignment to check, gets None."""
    import torch

    from moksori.bench.serve import write_untrained_checkpoint
    from moksori.models import registry
    from moksori.models.tacotron2 import Tacotron2Config
    from moksori.synthesis import make_bundle
    from moksori.text import TextFrontend

    frontend = TextFrontend("ko")
    torch.manual_seed(0)
    model = registry.get("tacotron2").build(Tacotron2Config.tiny(len(frontend.symbols), max_decoder_steps=40))
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.bias.fill_(-50.0)  # never stops: every sentence fails
    voice = make_bundle(write_untrained_checkpoint(tmp_path / "acoustic.pt", model, "tacotron2", frontend),
                        tmp_path / "voice", name="t2")
    failing = evaluate_voice(voice, tiny_dataset, limit=2, progress=False, asr=False, dnsmos=False)
    assert [row.alignment_failed for row in failing.rows] == [1.0, 1.0]
    assert failing.summary["alignment_failed"] == {"mean": 1.0, "median": 1.0, "n": 2}
    assert "alignment failed" in format_table(failing)



def test_a_voice_without_attention_has_no_alignment_figure(result):
    assert all(row.alignment_failed is None for row in result.rows)
    assert result.summary["alignment_failed"]["n"] == 0
    assert "alignment failed" not in format_table(result).splitlines()[0]


def test_a_reduced_precision_is_scored_against_the_same_recordings(tiny_voice, tiny_dataset):
    reduced = evaluate_voice(tiny_voice, tiny_dataset, limit=2, progress=False, asr=False, dnsmos=False,
                             precision="bf16")
    fp32 = evaluate_voice(tiny_voice, tiny_dataset, limit=2, progress=False, asr=False, dnsmos=False)
    assert [row.id for row in reduced.rows] == [row.id for row in fp32.rows]
    assert all(row.error is None and math.isfinite(row.mcd_db) for row in reduced.rows)
    assert [row.mcd_db for row in reduced.rows] != [row.mcd_db for row in fp32.rows]  # bf16 really ran
    with pytest.raises(ValueError, match="precision"):
        evaluate_voice(tiny_voice, tiny_dataset, limit=1, progress=False, asr=False, dnsmos=False, precision="fp8")


def test_a_dataset_of_another_language_is_refused(tiny_voice, tmp_path):
    """A Korean voice scored on English sentences ran, and its figures described the wrong front end."""
    from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
    from moksori.data.sample_dataset import make_sample_dataset

    raw = make_sample_dataset(tmp_path / "raw", language="en", n=2, workers=1, progress=False)
    preprocess_dataset(raw, tmp_path / "en", PreprocessConfig(language="en", val_fraction=0.5), workers=1, progress=False)
    with pytest.raises(ValueError, match=r"holds 'en' speech, and voice .* reads 'ko'"):
        evaluate_voice(tiny_voice, tmp_path / "en", asr=False, dnsmos=False, progress=False)
