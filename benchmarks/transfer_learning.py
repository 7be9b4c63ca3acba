"""Transfer learning: fine-tune the default voice on a new voice vs train the same model from scratch.

The experiment (run from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/transfer_learning.py

1. **Data.** A second voice is made with another espeak-ng voice variant (``--variant``, default
   ``ko+f3``: another pitch and formant set than the ``ko`` voice the default voice was trained on).
   ``--train-minutes`` of it (trimmed speech, as preprocessing keeps it) become ``train.jsonl`` and
   ``--held-out`` other sentences ``val.jsonl``; no sentence is in both. The held-out sentences are
   taken, where it exists, from the validation split of the base voice's pretraining folder
   (``data/pretrain_ko_processed/val.jsonl``): sentences the base acoustic model never trained on.
   Without it they come from the same prompt pool as the training sentences, which the default
   voice was pretrained on (spoken by ``ko``); the script then prints that caveat.
   The audio is preprocessed with the base voice's own text front end and mel settings.
2. **Two arms, one step budget** (the last of ``--steps``), same model, data, batch size and seed:

   * *fine-tune*: ``moksori/recipes/finetune_ko.yaml`` (acoustic stage) warm-started from ``--base``;
   * *scratch*: no warm start; a from-scratch Noam schedule with the peak learning rate of
     ``moksori/recipes/default_ko.yaml`` reached after ``--scratch-warmup-fraction`` of the budget.

   Each arm trains in segments ending at every step of ``--steps`` (``--resume`` between them is
   exact, so this is the same run as one uninterrupted one); each segment's checkpoint is bundled
   with the base voice's vocoder, so only the acoustic model differs between arms.
3. **Evaluation** (``moksori.evaluation.evaluate_voice``) of every bundle, and of the base voice
   itself, on the held-out sentences: MCD, F0 RMSE, V/UV error, duration ratio. A markdown table,
   the step at which fine-tuning first reaches the from-scratch final MCD (as a fraction of the
   budget), and the wall time of each arm are printed; everything is written to ``results.json``.

**Tacotron2** (``--pretrain-tacotron2``). There is no shipped Tacotron2 voice, so the script first
pretrains one in ``WORK/base``: ``--pretrain-minutes`` of espeak-ng ``ko`` (the voice the default
voice was trained on) from the same prompt pool, ``--pretrain-steps`` steps of a 2.0M-parameter
Tacotron2 (``PRETRAIN_TACOTRON2_CONFIG``) at batch 16, bundled with ``--base``'s vocoder; that base's
own held-out split gives the held-out sentences. The arms are then those of Glow-TTS with
Tacotron2's recipes: *fine-tune* is the acoustic stage of ``moksori/recipes/finetune_tacotron2_ko.yaml``;
*scratch* takes the pretraining's learning rate and options (the ones that aligned the base). The
evaluation adds the share of held-out sentences whose free-running alignment fails the check
(after the synthesizer's one retry), and the report says from which step on each arm's held-out
alignments pass (at most ``ALIGNED_FAILURE_SHARE`` failing). ``--base`` may also name a trained
Tacotron2 voice directly. For Glow-TTS beside it on the same sentences, run the Glow-TTS experiment
with ``--held-out-from WORK/base/data/processed/val.jsonl`` and the same ``--steps`` (the commands
are in ``benchmarks/README.md``).

Everything is cached in ``--work``: the dataset, each finished training segment (its bundle) and
each evaluation; an interrupted run resumes. The settings that shape the runs are stored in
``spec.json`` there; a different setting needs another ``--work`` folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from moksori.audio import MelConfig, resample, save_wav
from moksori.data.manifest import read_jsonl, write_json, write_jsonl
from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
from moksori.data.prompt_sets import builtin_prompts, read_prompt_file
from moksori.espeak import synthesize
from moksori.evaluation import evaluate_voice, to_json
from moksori.synthesis import make_bundle, read_voice_json
from moksori.training import train
from moksori.training.recipe import DataRecipe, Recipe, TrainRecipe, load_recipe

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASE = REPO / "moksori" / "voices" / "ko_default"
FINETUNE_RECIPE = REPO / "moksori" / "recipes" / "finetune_ko.yaml"
PRETRAIN_RECIPE = REPO / "moksori" / "recipes" / "default_ko.yaml"
TACOTRON2_FINETUNE_RECIPE = REPO / "moksori" / "recipes" / "finetune_tacotron2_ko.yaml"
FAMILIES = ("glow_tts", "tacotron2")
DEFAULT_PRETRAIN_DATA = REPO / "data" / "pretrain_ko_processed"
SHARED_DATA = Path(os.environ.get("MOKSORI_SHARED_DATA", REPO.parent / "shared" / "data"))
ARMS = ("finetune", "scratch")
ARM_LABELS = {"finetune": "fine-tune", "scratch": "scratch"}
# metric key → (column label, format)
COLUMNS = {
    "mcd_db": ("MCD dB", ".2f"),
    "f0_rmse_cents": ("F0 RMSE cents", ".1f"),
    "duration_ratio": ("duration ratio", ".3f"),
}
# Attention models only: the share of held-out sentences whose free-running alignment failed.
ALIGNMENT_COLUMN = {"alignment_failed": ("alignment failed", ".2f")}
SUMMARY_METRICS = ("mcd_db", "f0_rmse_cents", "vuv_error", "duration_ratio", "alignment_failed")
# A voice "aligns" on the held-out sentences when at most this share of them fail the alignment check.
ALIGNED_FAILURE_SHARE = 0.05

log = logging.getLogger("transfer_learning")


# --------------------------------------------------------------------------- command line


def parse_steps(text: str) -> list[int]:
    try:
        steps = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--steps: comma-separated whole numbers, got {text!r}") from None
    if not steps or steps[0] < 1:
        raise argparse.ArgumentTypeError(f"--steps: positive step counts needed, got {text!r}")
    return steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Fine-tune the default voice on a new espeak voice variant vs train from scratch; "
        "evaluate both at several step counts.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--base", type=Path, default=DEFAULT_BASE,
                        help="the voice folder to fine-tune from (Glow-TTS or Tacotron2); with --pretrain-tacotron2, "
                        "the voice whose text front end, mel settings and vocoder the pretrained base takes")
    parser.add_argument("--pretrain-tacotron2", action="store_true",
                        help="first pretrain a Tacotron2 base voice (WORK/base) on espeak-ng ko, and fine-tune that")
    parser.add_argument("--pretrain-minutes", type=float, default=40.0, help="minutes of ko speech for the pretraining")
    parser.add_argument("--pretrain-steps", type=int, default=3000, help="steps of the pretraining (batch 16)")
    parser.add_argument("--variant", default="ko+f3", help="espeak-ng voice (variant) of the new voice")
    parser.add_argument("--train-minutes", type=float, default=15.0, help="minutes of (trimmed) training speech")
    parser.add_argument("--held-out", type=int, default=50, help="held-out sentences to evaluate on")
    parser.add_argument("--held-out-from", default="auto",
                        help="where the held-out sentences come from: a preprocessed folder (its val.jsonl) or a "
                        ".jsonl file with 'text' fields (sentences the base voice did not train on); 'none' = the "
                        f"training prompt pool; 'auto' = {DEFAULT_PRETRAIN_DATA.relative_to(REPO)} if it exists, "
                        "else none")
    parser.add_argument("--extra-prompts", type=Path, action="append", default=None,
                        help="prompt files added to the built-in list for the training sentences (repeatable; "
                        "default: ../shared/data/korean_corpus.csv when it exists)")
    parser.add_argument("--steps", type=parse_steps, default=parse_steps("100,250,500,1000"),
                        help="evaluation points, comma-separated; the last is the step budget of both arms")
    parser.add_argument("--work", type=Path, default=Path("out/transfer_learning"), help="work and cache folder")
    parser.add_argument("--json", type=Path, default=None, help="results file (default: WORK/results.json)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the sentence choice and of both training runs")
    parser.add_argument("--eval-limit", type=int, default=None, help="evaluate only the first N held-out sentences")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size of both arms (default: the fine-tune recipe's)")
    parser.add_argument("--scratch-warmup-fraction", type=float, default=0.1,
                        help="from-scratch Noam warmup as a fraction of the budget")
    parser.add_argument("--no-base-row", action="store_true", help="do not evaluate the base voice itself (step 0)")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 unless fine-tuning reaches the from-scratch final MCD "
                        "before the budget")
    parser.add_argument("--judges", action="store_true",
                        help="also score with the third-party judges (Whisper CER, DNSMOS; the judges extra): slow, and "
                        "Whisper cannot read espeak-ng Korean, so off by default here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run_experiment(args)
    print(results["report"])
    print(f"results written to {results['json']}")
    if args.check and not results["answer"]["reached_before_budget"]:
        return 1
    return 0


# --------------------------------------------------------------------------- the experiment


def run_experiment(args: argparse.Namespace) -> dict[str, Any]:
    """Build the data, train both arms, evaluate; return the results dict (also written as JSON)."""
    if args.held_out < 1 or args.train_minutes <= 0:
        raise SystemExit("--held-out and --train-minutes must be positive")
    torch.set_num_threads(max(1, args.threads))
    base = Path(args.base)
    if not (base / "voice.json").is_file():
        raise SystemExit(
            f"{base}: no voice there (voice.json missing). Train and bundle the default voice first, "
            "or pass --base VOICE_DIR"
        )
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.pretrain_tacotron2:
        base = pretrain_tacotron2_base(work / "base", args, base)
        if args.held_out_from == "auto":
            args.held_out_from = str(work / "base" / "data" / "processed" / "val.jsonl")
    base_info = read_voice_json(base)
    family = base_info["acoustic"]["model_name"]
    if family not in FAMILIES:
        raise SystemExit(f"{base}: the acoustic model is {family}; this needs one of {', '.join(FAMILIES)}")
    held_source = _held_out_source(args.held_out_from)
    schedules = _schedules(args, base_info)
    spec = _spec(args, base, base_info, held_source, schedules)
    _check_spec(work, spec)

    data = build_dataset(work / "data", args, base_info, held_source)
    data_dir = Path(data["dir"])
    vocoder = base if "model_name" in base_info["vocoder"] else None

    timing = _read_json(work / "timing.json") or {}
    for arm in ARMS:
        recipe = make_recipe(arm, base, base_info, data_dir, work / "runs" / arm, args, schedules[arm])
        timing[arm] = train_arm(arm, recipe, args.steps, work, vocoder, timing.get(arm, {}))
        write_json(work / "timing.json", timing)

    evaluations: dict[str, dict[str, Any]] = {arm: {} for arm in ARMS}
    base_eval = None if args.no_base_row else evaluate_cached(work, "base", base, data_dir, args)
    for arm in ARMS:
        for step in args.steps:
            bundle = _bundle_dir(work, arm, step)
            evaluations[arm][str(step)] = evaluate_cached(work, bundle.name, bundle, data_dir, args)

    results = collect_results(args, spec, data, schedules, timing, base_eval, evaluations)
    results["family"] = family
    results["report"] = format_report(results)
    json_path = Path(args.json) if args.json is not None else work / "results.json"
    results["json"] = str(json_path)
    write_json(json_path, results)
    (work / "report.md").write_text(results["report"] + "\n", encoding="utf-8")
    return results


def _schedules(args: argparse.Namespace, base_info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Learning-rate schedules and batch size of both arms (Noam: scale × hidden^-0.5 × min(n^-0.5, n × w^-1.5))."""
    if base_info["acoustic"]["model_name"] == "tacotron2":
        return _tacotron2_schedules(args)
    budget = args.steps[-1]
    finetune = load_recipe(FINETUNE_RECIPE, stage="acoustic")
    pretrain = load_recipe(PRETRAIN_RECIPE, stage="acoustic")
    batch = args.batch_size or finetune.data.batch_size
    # Same peak learning rate as the default voice's pretraining, reached after a share of the budget.
    warmup = max(1, round(args.scratch_warmup_fraction * budget))
    scale = pretrain.train.lr * math.sqrt(warmup / pretrain.train.warmup_steps)
    config = base_info["acoustic"]["model_config"]
    hidden = config.get("hidden_channels_enc") or config["hidden_channels"]
    return {
        "finetune": {"recipe": str(FINETUNE_RECIPE.relative_to(REPO)), "lr": finetune.train.lr,
                     "warmup_steps": finetune.train.warmup_steps, "batch_size": batch, "init_from": "base",
                     "peak_lr": noam_peak(finetune.train.lr, hidden, finetune.train.warmup_steps)},
        "scratch": {"recipe": f"{FINETUNE_RECIPE.relative_to(REPO)} without init_from; schedule as "
                    f"{PRETRAIN_RECIPE.relative_to(REPO)} (peak lr) with warmup scaled to the budget",
                    "lr": scale, "warmup_steps": warmup, "batch_size": batch, "init_from": None,
                    "peak_lr": noam_peak(scale, hidden, warmup)},
    }


def _tacotron2_schedules(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Tacotron2's arms: the fine-tune recipe's acoustic stage (linear warm-up to a constant rate),
    and from scratch the pretraining's rate and options (which aligned the base), its warm-up
    scaled to the budget."""
    finetune = load_recipe(TACOTRON2_FINETUNE_RECIPE, stage="acoustic")
    batch = args.batch_size or finetune.data.batch_size
    warmup = max(1, round(args.scratch_warmup_fraction * args.steps[-1]))
    return {
        "finetune": {"recipe": str(TACOTRON2_FINETUNE_RECIPE.relative_to(REPO)), "lr": finetune.train.lr,
                     "warmup_steps": finetune.train.warmup_steps, "batch_size": batch, "init_from": "base",
                     "peak_lr": finetune.train.lr, "options": dict(finetune.options)},
        "scratch": {"recipe": f"{TACOTRON2_FINETUNE_RECIPE.relative_to(REPO)} without init_from; the base's "
                    "pretraining rate and options, warm-up scaled to the budget",
                    "lr": PRETRAIN_TACOTRON2_LR, "warmup_steps": warmup, "batch_size": batch, "init_from": None,
                    "peak_lr": PRETRAIN_TACOTRON2_LR, "options": dict(PRETRAIN_TACOTRON2_OPTIONS)},
    }


def noam_peak(scale: float, hidden: int, warmup: int) -> float:
    return scale * hidden**-0.5 * max(warmup, 1) ** -0.5


# --------------------------------------------------------------------------- cache spec


def _spec(args, base: Path, base_info: dict[str, Any], held_source: Path | None, schedules) -> dict[str, Any]:
    files = base_info.get("files") or {}
    return {
        "base": str(base.resolve()),
        "base_acoustic_sha256": (files.get("acoustic.pt") or {}).get("sha256"),
        "base_vocoder_sha256": (files.get("vocoder.pt") or {}).get("sha256"),
        "variant": args.variant,
        "train_minutes": args.train_minutes,
        "held_out": args.held_out,
        "held_out_from": str(held_source.resolve()) if held_source else None,
        "extra_prompts": [str(p) for p in _extra_prompt_files(args, base_info)],
        "steps": list(args.steps),
        "seed": args.seed,
        "schedules": {arm: {k: v for k, v in s.items() if k != "recipe"} for arm, s in schedules.items()},
        **({"pretrain": {"minutes": args.pretrain_minutes, "steps": args.pretrain_steps,
                         "config": PRETRAIN_TACOTRON2_CONFIG, "options": PRETRAIN_TACOTRON2_OPTIONS}}
           if args.pretrain_tacotron2 else {}),
    }


def _check_spec(work: Path, spec: dict[str, Any]) -> None:
    path = work / "spec.json"
    old = _read_json(path)
    if old is None:
        write_json(path, spec)
        return
    changed = sorted(key for key in set(old) | set(spec) if old.get(key) != spec.get(key))
    if changed:
        raise SystemExit(
            f"{work} holds an experiment with other settings ({', '.join(changed)} differ); "
            "choose another --work folder or delete it"
        )


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# --------------------------------------------------------------------------- data


def _held_out_source(option: str) -> Path | None:
    if option == "none":
        return None
    if option == "auto":
        return DEFAULT_PRETRAIN_DATA / "val.jsonl" if (DEFAULT_PRETRAIN_DATA / "val.jsonl").is_file() else None
    path = Path(option)
    if path.is_dir():
        path = path / "val.jsonl"
    if not path.is_file():
        raise SystemExit(f"--held-out-from: {path} not found")
    return path


def _extra_prompt_files(args: argparse.Namespace, base_info: dict[str, Any]) -> list[Path]:
    if args.extra_prompts is not None:
        return list(args.extra_prompts)
    corpus = SHARED_DATA / "korean_corpus.csv"
    return [corpus] if base_info["text_frontend"]["language"] == "ko" and corpus.is_file() else []


def _unique(texts) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


def build_dataset(data_root: Path, args: argparse.Namespace, base_info: dict[str, Any],
                  held_source: Path | None) -> dict[str, Any]:
    """The preprocessed folder with ``train.jsonl`` (≈ train-minutes) and ``val.jsonl`` (the held-out
    sentences), spoken by ``args.variant``; cached in ``data_root/dataset.json``."""
    info_path = data_root / "dataset.json"
    cached = _read_json(info_path)
    if cached is not None:
        log.info("dataset: reusing %s", cached["dir"])
        return cached
    shutil.rmtree(data_root, ignore_errors=True)  # a half-built folder from an interrupted run
    started = time.perf_counter()
    text_settings = base_info["text_frontend"]
    language = text_settings["language"]
    mel = MelConfig.from_dict(base_info["audio"]["mel"])
    rng = random.Random(args.seed)

    extra = [text for path in _extra_prompt_files(args, base_info) for text in read_prompt_file(path)]
    pool = _unique(builtin_prompts(language) + extra)
    if held_source is not None:
        held_candidates = _unique(str(r.get("text", "")) for r in read_jsonl(held_source))
        rng.shuffle(held_candidates)
        note = (f"held-out sentences: from {held_source}, the base voice's pretraining validation split, so "
                "neither the base voice nor either arm trained on them (the training sentences come from the "
                "prompts the base voice was pretrained on, spoken there in its own voice)")
        caveat = None
    else:
        held_candidates = list(pool)
        rng.shuffle(held_candidates)
        held_candidates = held_candidates[: args.held_out * 2 + 10]
        note = "held-out sentences: from the training prompt pool (the sentences themselves never train either arm)"
        caveat = ("CAVEAT: the base voice was pretrained on this prompt pool (spoken by espeak 'ko'), so the "
                  "fine-tune arm has seen the held-out sentences' text in another voice; the scratch arm has not")
    held_set = set(held_candidates)
    train_candidates = [t for t in pool if t not in held_set]
    rng.shuffle(train_candidates)

    raw, processed = data_root / "raw", data_root / "processed"
    (raw / "wavs").mkdir(parents=True, exist_ok=True)
    clips: dict[str, str] = {}  # id → text, in synthesis order
    durations: dict[str, float] = {}
    target_s = args.train_minutes * 60.0

    def add(utt_id: str, text: str) -> None:
        wave, rate = synthesize(text, voice=args.variant)
        if rate != mel.sample_rate:
            wave = resample(wave, rate, mel.sample_rate)
        save_wav(raw / "wavs" / f"{utt_id}.wav", wave, mel.sample_rate)
        clips[utt_id] = text
        durations[utt_id] = wave.size / mel.sample_rate

    n_held = min(len(held_candidates), args.held_out + max(2, args.held_out // 10))
    n_train = 0
    raw_goal = target_s * 1.05
    while True:
        for i in range(n_held):
            if f"held{i:04d}" not in clips:
                add(f"held{i:04d}", held_candidates[i])
        while n_train < len(train_candidates) and _train_seconds(durations) < raw_goal:
            add(f"train{n_train:05d}", train_candidates[n_train])
            n_train += 1
        lines = "".join(f"{k}|{t.replace('|', ' ')}|{t.replace('|', ' ')}\n" for k, t in clips.items())
        (raw / "metadata.csv").write_text(lines, encoding="utf-8")
        config = PreprocessConfig(
            mel=mel, language=language, add_blank=bool(text_settings.get("add_blank", False)),
            use_pronunciation=bool(text_settings.get("use_pronunciation", True)), seed=args.seed,
        )
        log.info("dataset: preprocessing %d clips (%s)", len(clips), args.variant)
        preprocess_dataset(raw, processed, config, workers=1, progress=not args.quiet)
        kept = {r["id"]: r for r in read_jsonl(processed / "manifest.jsonl")}
        val = [kept[k] for k in clips if k.startswith("held") and k in kept][: args.held_out]
        train_records, total = [], 0.0
        for k in clips:
            if k.startswith("train") and k in kept and total < target_s:
                train_records.append(kept[k])
                total += float(kept[k]["duration_s"])
        held_short = len(val) < args.held_out and n_held < len(held_candidates)
        train_short = total < target_s and n_train < len(train_candidates)
        if not (held_short or train_short):
            break
        if held_short:
            n_held = min(len(held_candidates), n_held + args.held_out - len(val) + 2)
        if train_short:
            raw_goal += (target_s - total) * 1.1 + 5.0
    if len(val) < args.held_out:
        raise SystemExit(f"only {len(val)} held-out sentences survived preprocessing (asked for {args.held_out})")
    if total < target_s:
        log.warning("dataset: the prompt pool ran out at %.1f of %.1f training minutes", total / 60, args.train_minutes)
    _check_symbols(processed, text_settings)
    write_jsonl(processed / "train.jsonl", train_records)
    write_jsonl(processed / "val.jsonl", val)
    overlap = {r["text"] for r in train_records} & {r["text"] for r in val}
    assert not overlap, f"train and held-out sentences overlap: {sorted(overlap)[:3]}"
    info = {
        "dir": str(processed),
        "variant": args.variant,
        "train_clips": len(train_records),
        "train_minutes": total / 60.0,
        "held_out": len(val),
        "held_out_minutes": sum(float(r["duration_s"]) for r in val) / 60.0,
        "held_out_source": str(held_source) if held_source else "prompt pool",
        "note": note,
        "caveat": caveat,
        "build_s": time.perf_counter() - started,
    }
    write_json(info_path, info)
    log.info("dataset: %d training clips (%.1f min), %d held-out sentences", info["train_clips"],
             info["train_minutes"], info["held_out"])
    return info


def _train_seconds(durations: dict[str, float]) -> float:
    return sum(seconds for utt_id, seconds in durations.items() if utt_id.startswith("train"))


def _check_symbols(processed: Path, text_settings: dict[str, Any]) -> None:
    ours = json.loads((processed / "config.json").read_text(encoding="utf-8"))["text"].get("symbol_table")
    theirs = text_settings.get("symbol_table")
    if theirs is not None and ours != theirs:
        raise SystemExit("the data's symbol table differs from the base voice's; update moksori or the voice")


# --------------------------------------------------------------------------- the Tacotron2 base voice

# A Tacotron2 that trains on 2 CPU cores in about half an hour (2.0M parameters; the `small` preset
# is 7.3M and 5-8x slower per step): NVIDIA's architecture at a fraction of its widths, two frames
# per decoder step (half the steps, and the attention finds the diagonal sooner).
PRETRAIN_TACOTRON2_CONFIG: dict[str, Any] = {
    "preset": "tiny", "n_frames_per_step": 2, "symbols_embedding_dim": 128, "encoder_embedding_dim": 128,
    "encoder_n_convolutions": 3, "attention_rnn_dim": 256, "decoder_rnn_dim": 256, "prenet_dim": 128,
    "attention_dim": 64, "attention_location_n_filters": 16, "attention_location_kernel_size": 31,
    "postnet_embedding_dim": 128, "postnet_n_convolutions": 5, "max_decoder_steps": 600,
    "p_attention_dropout": 0.0, "p_decoder_dropout": 0.0,
}
# Its training options: the tacotron2_ko recipe's, with a stronger, faster-decaying guided attention
# loss for a short run on little data (as tiny_tacotron2 does).
PRETRAIN_TACOTRON2_OPTIONS: dict[str, Any] = {
    "gate_pos_weight": 10.0, "guided_attention_weight": 2.0, "guided_attention_half_life": 1500,
}
PRETRAIN_TACOTRON2_LR = 1e-3  # NVIDIA's learning_rate


def pretrain_tacotron2_base(work: Path, args: argparse.Namespace, template: Path) -> Path:
    """Train the Tacotron2 base voice: ``--pretrain-minutes`` of espeak-ng ``ko`` (the voice the
    default voice was trained on), its own held-out split (the sentences the experiment evaluates
    on, so neither the base nor an arm ever trains on them), ``--pretrain-steps`` steps, bundled with
    ``template``'s vocoder. Cached in ``work``; returns the voice folder."""
    voice = work / "voice"
    if (voice / "voice.json").is_file():
        return voice
    template_info = read_voice_json(template)
    spec = argparse.Namespace(variant="ko", train_minutes=args.pretrain_minutes, held_out=args.held_out,
                              seed=args.seed, extra_prompts=args.extra_prompts, quiet=args.quiet)
    data = build_dataset(work / "data", spec, template_info, None)
    recipe = Recipe(
        model="tacotron2",
        model_config=dict(PRETRAIN_TACOTRON2_CONFIG),
        data=DataRecipe(dir=data["dir"], batch_size=16, max_val_batches=2),
        train=TrainRecipe(steps=args.pretrain_steps, lr=PRETRAIN_TACOTRON2_LR, warmup_steps=200, grad_clip=1.0,
                          eval_interval=500, checkpoint_interval=500, keep_last=2, seed=args.seed,
                          log_interval=50, progress=not args.quiet),
        options=dict(PRETRAIN_TACOTRON2_OPTIONS),
        run_dir=str(work / "run"),
    )
    recipe.check()
    resume = (work / "run" / "latest.pt").is_file()
    log.info("pretraining the Tacotron2 base on %.1f min of espeak-ng ko%s", data["train_minutes"],
             " (resuming)" if resume else "")
    started = time.perf_counter()
    train(recipe, resume=resume)
    write_json(work / "timing.json", {"train_s": time.perf_counter() - started, "steps": args.pretrain_steps,
                                      "resumed": resume, "data": data})
    checkpoint = work / "run" / f"ckpt_{args.pretrain_steps:08d}.pt"
    vocoder = template if "model_name" in template_info["vocoder"] else None
    make_bundle(checkpoint, voice, vocoder_ckpt=vocoder, name="tacotron2_base", overwrite=True,
                description=f"transfer-learning experiment: Tacotron2 pretrained {args.pretrain_steps} steps on "
                f"{data['train_minutes']:.1f} min of espeak-ng ko")
    return voice


# --------------------------------------------------------------------------- training


def make_recipe(arm: str, base: Path, base_info: dict[str, Any], data_dir: Path, run_dir: Path,
                args: argparse.Namespace, schedule: dict[str, Any]) -> Recipe:
    """The fine-tune recipe's acoustic stage with the base voice's exact model config; the scratch arm
    drops the warm start and takes its own schedule."""
    tacotron2 = base_info["acoustic"]["model_name"] == "tacotron2"
    recipe = load_recipe(TACOTRON2_FINETUNE_RECIPE if tacotron2 else FINETUNE_RECIPE, stage="acoustic")
    budget = args.steps[-1]
    if tacotron2:
        recipe.options = dict(schedule["options"])
    recipe.data.dir = str(data_dir)
    recipe.data.batch_size = schedule["batch_size"]
    recipe.run_dir = str(run_dir)
    recipe.model_config = dict(base_info["acoustic"]["model_config"])  # all keys: no preset needed
    recipe.init_from = str(base) if arm == "finetune" else None
    recipe.freeze = list(recipe.freeze) if arm == "finetune" else []
    recipe.train.steps = budget
    recipe.train.lr = schedule["lr"]
    recipe.train.warmup_steps = schedule["warmup_steps"]
    recipe.train.seed = args.seed
    recipe.train.checkpoint_interval = budget  # plus the end of every segment
    recipe.train.eval_interval = budget + 1  # no validation pass while training: evaluation is ours
    recipe.train.keep_last = 1  # each segment's checkpoint is bundled before the next segment starts
    recipe.train.log_interval = max(1, min(recipe.train.log_interval, args.steps[0]))
    recipe.train.progress = not args.quiet
    recipe.check()
    return recipe


def _bundle_dir(work: Path, arm: str, step: int) -> Path:
    return work / "voices" / f"{arm}_{step:06d}"


def train_arm(arm: str, recipe: Recipe, steps: list[int], work: Path, vocoder: Path | None,
              segments: dict[str, float]) -> dict[str, float]:
    """Train ``arm`` up to every step of ``steps`` in turn and bundle each; returns the training
    seconds of each segment (kept from earlier runs for finished segments)."""
    run_dir = Path(recipe.run_dir)
    segments = dict(segments)
    for step in steps:
        bundle = _bundle_dir(work, arm, step)
        if (bundle / "voice.json").is_file():
            continue
        checkpoint = run_dir / f"ckpt_{step:08d}.pt"
        if not checkpoint.is_file():
            resume = (run_dir / "latest.pt").is_file()
            log.info("%s: training to step %d%s", arm, step, " (resuming)" if resume else "")
            started = time.perf_counter()
            train(recipe, resume=resume, max_steps=step)
            segments[str(step)] = time.perf_counter() - started
            if not checkpoint.is_file():
                raise SystemExit(f"{run_dir} is past step {step} and its checkpoint is gone; delete {run_dir} "
                                 "(and its bundles) to train this arm again")
        make_bundle(checkpoint, bundle, vocoder_ckpt=vocoder, name=f"{arm}_{step}", overwrite=True,
                    description=f"transfer-learning experiment: {ARM_LABELS[arm]} arm at step {step}")
    return segments


# --------------------------------------------------------------------------- evaluation


def evaluate_cached(work: Path, name: str, voice: Path, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Summary of ``evaluate_voice(voice, data_dir, split="val")``, cached per voice and --eval-limit."""
    path = work / "evals" / f"{name}_{args.eval_limit or 'all'}.json"
    cached = _read_json(path)
    if cached is not None:
        return cached
    log.info("evaluating %s", voice)
    started = time.perf_counter()
    result = evaluate_voice(voice, data_dir, split="val", limit=args.eval_limit, seed=0, progress=not args.quiet,
                            dnsmos=args.judges, asr=args.judges)
    data = to_json(result)
    summary = data["summary"]
    entry = {
        "voice": str(voice),
        "n": len(result.rows),
        "errors": sum(1 for row in result.rows if row.error),
        **{metric: summary[metric]["mean"] for metric in SUMMARY_METRICS},
        "alignment_checked": summary["alignment_failed"]["n"],
        "median": {metric: summary[metric]["median"] for metric in SUMMARY_METRICS},
        "eval_s": time.perf_counter() - started,
    }
    write_json(path, entry)
    write_json(path.with_suffix(".rows.json"), data)
    return entry


def collect_results(args, spec, data, schedules, timing, base_eval, evaluations) -> dict[str, Any]:
    steps = list(args.steps)
    budget = steps[-1]
    rows = [{"step": step, **{arm: evaluations[arm][str(step)] for arm in ARMS}} for step in steps]
    scratch_final = evaluations["scratch"][str(budget)]["mcd_db"]
    reached = None
    candidates = ([(0, base_eval)] if base_eval else []) + [(s, evaluations["finetune"][str(s)]) for s in steps]
    if scratch_final is not None:
        for step, entry in candidates:
            if entry["mcd_db"] is not None and entry["mcd_db"] <= scratch_final:
                reached = step
                break
    wall = {}
    for arm in ARMS:
        segments = timing.get(arm, {})
        complete = all(str(s) in segments for s in steps)
        seconds = sum(segments.values())
        wall[arm] = {
            "train_s": seconds,
            "s_per_step": seconds / budget if complete else None,
            "segments_s": segments,
            "complete": complete,  # False when some segments ran in an earlier, interrupted invocation
        }
    return {
        "experiment": "transfer_learning",
        "settings": {**spec, "eval_limit": args.eval_limit, "threads": args.threads},
        "data": data,
        "schedules": schedules,
        "wall_time": wall,
        "base_voice": base_eval,
        "rows": rows,
        "answer": {
            "scratch_final_mcd_db": scratch_final,
            "budget": budget,
            "finetune_reaches_at_step": reached,
            "fraction_of_budget": None if reached is None else reached / budget,
            "reached_before_budget": reached is not None and reached < budget,
            "aligned_at_step": {arm: aligned_at(base_eval if arm == "finetune" else None,
                                                [(s, evaluations[arm][str(s)]) for s in steps]) for arm in ARMS},
        },
    }


def aligned_at(base_eval: dict[str, Any] | None, evaluated: list[tuple[int, dict[str, Any]]]) -> int | None:
    """The first step from which every later evaluation's held-out alignment-failure share is at
    most ALIGNED_FAILURE_SHARE (0 = the base voice already does); None when it never settles there
    or the model has no alignment to check."""
    points = ([(0, base_eval)] if base_eval else []) + evaluated
    if not points or any(entry.get("alignment_failed") is None for _, entry in points):
        return None
    found = None
    for step, entry in points:
        if entry["alignment_failed"] <= ALIGNED_FAILURE_SHARE:
            found = step if found is None else found
        else:
            found = None
    return found


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def format_report(results: dict[str, Any]) -> str:
    settings, data, answer = results["settings"], results["data"], results["answer"]
    budget = answer["budget"]
    columns = dict(COLUMNS)
    if any(row[arm].get("alignment_failed") is not None for row in results["rows"] for arm in ARMS):
        columns.update(ALIGNMENT_COLUMN)
    header = ["step"] + [f"{ARM_LABELS[arm]} {label}" for arm in ARMS for label, _ in columns.values()]
    lines = [
        f"## Transfer learning ({results.get('family', 'glow_tts')}): {data['variant']}, {data['train_minutes']:.1f} min of training speech "
        f"({data['train_clips']} clips), {data['held_out']} held-out sentences"
        + (f" (first {settings['eval_limit']} evaluated)" if settings.get("eval_limit") else ""),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---:"] * len(header)) + "|",
    ]
    base = results.get("base_voice")
    if base:
        cells = [_fmt(base.get(m), spec) for m, (_, spec) in columns.items()] + ["–"] * len(columns)
        lines.append("| 0 (base voice) | " + " | ".join(cells) + " |")
    for row in results["rows"]:
        cells = [_fmt(row[arm].get(m), spec) for arm in ARMS for m, (_, spec) in columns.items()]
        lines.append(f"| {row['step']} | " + " | ".join(cells) + " |")
    lines.append("")
    for arm in ARMS:
        wall = results["wall_time"][arm]
        schedule = results["schedules"][arm]
        rate = f", {wall['s_per_step']:.2f} s/step" if wall["s_per_step"] is not None else " (partly in an earlier run)"
        lines.append(
            f"- {ARM_LABELS[arm]}: {wall['train_s']:.0f} s of training{rate}; batch {schedule['batch_size']}, "
            f"Noam scale {schedule['lr']:.3g} (peak lr {schedule['peak_lr']:.2g} at step {schedule['warmup_steps']})"
            + (", warm start from the base voice" if schedule["init_from"] else ", from scratch")
        )
    lines.append(f"- {data['note']}")
    if data.get("caveat"):
        lines.append(f"- {data['caveat']}")
    lines.append("")
    final = answer["scratch_final_mcd_db"]
    reached = answer["finetune_reaches_at_step"]
    if final is None:
        lines.append("Scratch's final MCD could not be computed (every evaluation failed).")
    elif reached is None:
        lines.append(f"Fine-tuning does NOT reach scratch's final MCD ({final:.2f} dB at step {budget}) "
                     f"at any evaluated step up to {budget}.")
    else:
        where = "step 0 (the base voice unchanged)" if reached == 0 else f"step {reached}"
        lines.append(f"Fine-tuning first reaches scratch's final MCD ({final:.2f} dB at step {budget}) at {where}: "
                     f"{answer['fraction_of_budget']:.0%} of the {budget}-step budget.")
    if "alignment_failed" in columns:
        for arm in ARMS:
            step = answer["aligned_at_step"][arm]
            held = (f"from step {step} on" if step is not None else f"at no evaluated step up to {budget} "
                    "(or not at every later one)")
            lines.append(f"{ARM_LABELS[arm]}: the held-out alignments pass the check (at most "
                         f"{ALIGNED_FAILURE_SHARE:.0%} fail) {held}.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
