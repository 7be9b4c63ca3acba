"""benchmarks/transfer_learning.py end to end on a tiny base voice, tiny data and a few steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from moksori.bench import write_untrained_checkpoint
from moksori.models import build_model
from moksori.models.glow_tts import GlowTTSConfig
from moksori.models.vocos import VocosConfig
from moksori.synthesis import make_bundle, read_voice_json
from moksori.text import TextFrontend

from support.benchmarks import load_benchmark


def _load_script():
    return load_benchmark("transfer_learning.py")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A tiny Glow-TTS (untrained, with a few frames per token) and a tiny Vocos, bundled."""
    root = tmp_path_factory.mktemp("base")
    frontend = TextFrontend("ko")
    torch.manual_seed(0)
    glow = build_model("glow_tts", GlowTTSConfig.tiny(len(frontend.symbols)).to_dict())
    with torch.no_grad():
        glow.encoder.proj_w.proj.bias.fill_(math.log(4.0))
    vocos = build_model("vocos", VocosConfig.preset("tiny").to_dict())
    return make_bundle(
        write_untrained_checkpoint(root / "glow.pt", glow, "glow_tts", frontend),
        root / "voice",
        vocoder_ckpt=write_untrained_checkpoint(root / "vocos.pt", vocos, "vocos", None),
    )


def test_both_arms_are_trained_evaluated_and_tabulated(tiny_base, tmp_path, capsys):
    bench = _load_script()
    # Held-out sentences from a "pretraining validation split" the base never trained on.
    held = tmp_path / "pretrain_val.jsonl"
    sentences = ["오늘은 날씨가 맑습니다.", "내일 다시 만나요.", "고양이가 창가에 앉아 있다.",
                 "버스가 곧 도착합니다.", "책을 천천히 읽었다.", "바람이 시원하게 분다."]
    held.write_text("".join(json.dumps({"id": f"v{i}", "text": t}, ensure_ascii=False) + "\n"
                            for i, t in enumerate(sentences)), encoding="utf-8")
    prompts = tmp_path / "prompts.txt"  # the training pool: the built-in list plus this (not ../shared/data)
    prompts.write_text("짧은 문장입니다.\n", encoding="utf-8")
    work = tmp_path / "work"
    argv = ["--base", str(tiny_base), "--train-minutes", "0.2", "--held-out", "4", "--held-out-from", str(held),
            "--extra-prompts", str(prompts), "--steps", "2,4", "--work", str(work), "--quiet", "--seed", "3"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out

    results = json.loads((work / "results.json").read_text(encoding="utf-8"))
    assert [row["step"] for row in results["rows"]] == [2, 4]
    for row in results["rows"]:
        for arm in ("finetune", "scratch"):
            entry = row[arm]
            assert entry["voice"] == str(work / "voices" / f"{arm}_{row['step']:06d}")
            assert entry["n"] == 4 and entry["errors"] == 0
            for metric in ("mcd_db", "vuv_error", "duration_ratio"):
                assert entry[metric] is not None and math.isfinite(entry[metric]), (arm, metric, entry)
            assert entry["mcd_db"] > 0 and entry["duration_ratio"] > 0
            # An untrained tiny vocoder may voice no frame at all: then there is no F0 error to give.
            assert entry["f0_rmse_cents"] is None or math.isfinite(entry["f0_rmse_cents"])
    assert math.isfinite(results["base_voice"]["mcd_db"])
    # The data: exactly the held-out sentences as val, ~12 s of other sentences as train.
    data = results["data"]
    assert data["held_out"] == 4 and data["caveat"] is None
    assert data["train_minutes"] >= 0.2 and data["train_clips"] >= 1
    val = [json.loads(line) for line in Path(data["dir"], "val.jsonl").read_text("utf-8").splitlines()]
    train = [json.loads(line) for line in Path(data["dir"], "train.jsonl").read_text("utf-8").splitlines()]
    assert {r["text"] for r in val} <= set(sentences) and len(val) == 4
    assert not {r["text"] for r in val} & {r["text"] for r in train}
    # Both arms share the base's model and vocoder; only the fine-tune arm is warm-started.
    for arm in ("finetune", "scratch"):
        voice = read_voice_json(work / "voices" / f"{arm}_000004")
        assert voice["acoustic"]["model_config"] == read_voice_json(tiny_base)["acoustic"]["model_config"]
        assert voice["vocoder"]["model_name"] == "vocos"
        assert results["wall_time"][arm]["complete"] and results["wall_time"][arm]["s_per_step"] > 0
    assert results["schedules"]["finetune"]["init_from"] == "base"
    assert results["schedules"]["scratch"]["init_from"] is None
    answer = results["answer"]
    assert answer["budget"] == 4 and answer["scratch_final_mcd_db"] == results["rows"][-1]["scratch"]["mcd_db"]
    if answer["finetune_reaches_at_step"] is not None:
        assert answer["fraction_of_budget"] == answer["finetune_reaches_at_step"] / 4

    # The printed markdown table: a header, a base row and one row per step count.
    assert "| step | fine-tune MCD dB | fine-tune F0 RMSE cents | fine-tune duration ratio | scratch MCD dB" in out
    assert "| 0 (base voice) |" in out and "\n| 2 |" in out and "\n| 4 |" in out
    assert "scratch's final MCD" in out

    # A second run reuses everything: no training, same numbers.
    stamp = (work / "runs" / "finetune" / "latest.pt").stat().st_mtime_ns
    assert bench.main(argv) == 0
    assert (work / "runs" / "finetune" / "latest.pt").stat().st_mtime_ns == stamp
    again = json.loads((work / "results.json").read_text(encoding="utf-8"))
    assert again["rows"] == results["rows"]
    # Other settings in the same work folder are refused.
    with pytest.raises(SystemExit, match="other settings"):
        bench.main(argv + ["--variant", "ko+m3"])



def test_without_an_unseen_source_the_held_out_sentences_come_from_the_pool_with_a_caveat(tiny_base, tmp_path):
    bench = _load_script()
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("짧은 문장입니다.\n", encoding="utf-8")
    args = bench.build_parser().parse_args(
        ["--base", str(tiny_base), "--train-minutes", "0.1", "--held-out", "3", "--held-out-from", "none",
         "--extra-prompts", str(prompts), "--quiet"]
    )
    data = bench.build_dataset(tmp_path / "data", args, read_voice_json(tiny_base), None)
    assert data["held_out"] == 3 and "CAVEAT" in data["caveat"] and data["train_minutes"] >= 0.1
    val = [json.loads(line) for line in Path(data["dir"], "val.jsonl").read_text("utf-8").splitlines()]
    train = [json.loads(line) for line in Path(data["dir"], "train.jsonl").read_text("utf-8").splitlines()]
    assert len(val) == 3 and train
    assert not {r["text"] for r in val} & {r["text"] for r in train}
    # Cached: a second call reads dataset.json and synthesises nothing.
    assert bench.build_dataset(tmp_path / "data", args, read_voice_json(tiny_base), None) == data


def test_a_pretrained_tacotron2_base_and_its_two_arms(tiny_base, tmp_path, monkeypatch, capsys):
    """--pretrain-tacotron2: the base is trained on espeak-ng ``ko`` with its own held-out split,
    bundled with the template voice's vocoder, then fine-tuned (the Tacotron2 fine-tune recipe) and
    matched by a from-scratch arm; the table gains the alignment-failure share."""
    bench = _load_script()
    monkeypatch.setattr(bench, "PRETRAIN_TACOTRON2_CONFIG", {"preset": "tiny", "n_frames_per_step": 2,
                                                             "max_decoder_steps": 30})
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("짧은 문장입니다.\n", encoding="utf-8")
    work = tmp_path / "work"
    argv = ["--base", str(tiny_base), "--pretrain-tacotron2", "--pretrain-minutes", "0.2", "--pretrain-steps", "2",
            "--train-minutes", "0.15", "--held-out", "2", "--extra-prompts", str(prompts), "--steps", "1,2",
            "--work", str(work), "--quiet", "--seed", "3", "--batch-size", "2"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    results = json.loads((work / "results.json").read_text(encoding="utf-8"))

    base = read_voice_json(work / "base" / "voice")
    assert base["acoustic"]["model_name"] == "tacotron2" and base["training"]["acoustic"]["step"] == 2
    assert base["vocoder"]["model_name"] == "vocos"  # the template's vocoder
    # The held-out sentences are the base's own held-out split: neither the base nor an arm trained on them.
    base_data = Path(work / "base" / "data" / "processed")
    base_train = {json.loads(line)["text"] for line in (base_data / "train.jsonl").read_text("utf-8").splitlines()}
    base_val = {json.loads(line)["text"] for line in (base_data / "val.jsonl").read_text("utf-8").splitlines()}
    val = {json.loads(line)["text"] for line in Path(results["data"]["dir"], "val.jsonl").read_text("utf-8").splitlines()}
    assert val <= base_val and not val & base_train and results["data"]["caveat"] is None

    assert results["family"] == "tacotron2"
    assert results["schedules"]["finetune"]["options"]["guided_attention_weight"] == 0.5  # the fine-tune recipe's
    assert results["schedules"]["scratch"]["options"] == bench.PRETRAIN_TACOTRON2_OPTIONS
    assert results["settings"]["pretrain"]["steps"] == 2
    for row in results["rows"]:
        for arm in ("finetune", "scratch"):
            assert row[arm]["alignment_checked"] == 2
            assert 0.0 <= row[arm]["alignment_failed"] <= 1.0
            voice = read_voice_json(work / "voices" / f"{arm}_{row['step']:06d}")
            assert voice["acoustic"]["model_config"] == base["acoustic"]["model_config"]
    assert results["base_voice"]["alignment_checked"] == 2
    assert set(results["answer"]["aligned_at_step"]) == {"finetune", "scratch"}
    assert "## Transfer learning (tacotron2)" in out and "scratch alignment failed |" in out
    assert "the held-out alignments pass the check" in out


def test_aligned_at_is_the_first_step_after_which_every_evaluation_passes():
    bench = _load_script()
    entries = lambda *shares: [(step, {"alignment_failed": share}) for step, share in zip((10, 20, 30), shares)]
    assert bench.aligned_at(None, entries(1.0, 0.0, 0.04)) == 20
    assert bench.aligned_at(None, entries(0.0, 0.5, 0.0)) == 30  # a relapse resets it
    assert bench.aligned_at(None, entries(0.0, 0.0, 0.5)) is None
    assert bench.aligned_at({"alignment_failed": 0.0}, entries(0.0, 0.0, 0.0)) == 0  # the base already aligns
    assert bench.aligned_at(None, [(10, {"alignment_failed": None})]) is None  # Glow-TTS: nothing to check
