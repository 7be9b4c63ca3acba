"""Flowtron's style controls, measured: sigma, style transfer from a reference, interpolation.

The experiment (run from the repository root)::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/flowtron_style.py --work runs/flowtron_style

1. **Styles.** The same ``--sentences`` Korean prompt sentences spoken by espeak-ng's ``ko`` voice in
   four styles: two pitches (``--pitches``, espeak's 0-99 scale) times two speaking rates
   (``--rates``, words per minute). ``--held-out`` other sentences are never trained on; they are
   also rendered in every style (the target each style would give them).
2. **Model.** One Flowtron (``--preset`` plus ``--hidden`` overrides) trained on all four styles as
   one speaker, so style lives only in z: ``--steps`` steps, the first half with the first flow
   alone (the curriculum, when ``--flows`` is 2), the diagonal attention prior for
   ``--prior-steps``, optionally Tacotron2's guided attention loss and NVIDIA's cumulative attention
   (``--cumm-attention``); bundled with Griffin-Lim.
3. **Measurements** on the held-out sentences, from the synthesised audio: mean F0 (pyin, voiced
   frames) and speaking rate (Hangul syllables per second of speech, edge silence trimmed).

   * *sigma*: ``--seeds`` seeds at sigma 0, 0.5 and 1; the spread (standard deviation across seeds)
     of mean F0 and of rate, averaged over sentences. Sigma 0 has no spread by construction.
   * *transfer*: for each style, a reference clip of that style (a training sentence, with its
     transcript) at strength 1, z sampled around the reference's mean at ``--style-sigma`` (as
     NVIDIA's style transfer does), averaged over the seeds; *share of the gap closed* = (styled -
     plain) / (target - plain), where *plain* is the same sentence without a reference (same sigma
     and seeds) and *target* the sentence rendered by espeak-ng in that style; 1 means the output
     matches the style, 0 no change.
   * *interpolation*: z between the low-slow and the high-fast references at alpha 0, 0.25, 0.5,
     0.75, 1 (strength 1, ``--style-sigma``, the seeds): mean F0 and rate per alpha, and whether
     they change monotonically.
   * Every condition also reports the share of syntheses whose alignment failed (after the
     synthesizer's retry with other noise), e.g. because the gate never fired.
   * *z separation* (no synthesis): does the time-mean z of ``--z-clips`` training clips per style
     tell the styles apart, and how far apart are the style centroids next to the prior's std?
     The same for the clips' time-mean mel, for comparison (:func:`z_separation`).

Everything is cached in ``--work`` (data, the training run, which resumes); results go to
``results.json`` there and are printed as markdown tables. CPU timings are not the point: on a
shared 2-core machine a run takes ``--steps`` x ~0.2 s plus the synthesis.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from moksori.audio import save_wav, trim_silence
from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
from moksori.data.prompt_sets import builtin_prompts
from moksori.espeak import synthesize as espeak
from moksori.evaluation.metrics import pitch_track
from moksori.synthesis import Synthesizer, make_bundle
from moksori.training import train
from moksori.training.recipe import Recipe

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
SIGMAS = (0.0, 0.5, 1.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/flowtron_style"))
    parser.add_argument("--sentences", type=int, default=40, help="training sentences (each in every style)")
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--pitches", type=int, nargs=2, default=(25, 75))
    parser.add_argument("--rates", type=int, nargs=2, default=(130, 240))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--hidden", type=int, default=64, help="n_hidden (n_attn_channels and n_text_dim: half)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--gate-pos-weight", type=float, default=1.0,
                        help="weight of the stop frame in the gate loss (1: the reference's)")
    parser.add_argument("--flows", type=int, default=2, help="n_flows (the first trains alone for half the steps)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cumm-attention", action="store_true",
                        help="use_cumm_attention: NVIDIA's cumulative-attention conditioning (location features)")
    parser.add_argument("--guided-attention", type=float, default=0.0,
                        help="weight of Tacotron2's guided attention loss on the flows' attention (0: off)")
    parser.add_argument("--prior-steps", type=int, default=None,
                        help="steps with the diagonal attention prior (default: a quarter of --steps; 0: the whole "
                        "run). The prior must end: a model trained with it throughout never learns to attend "
                        "by itself (teacher-forced diagonality without it 0.35) and cannot align free-running")
    parser.add_argument("--style-sigma", type=float, default=0.5,
                        help="sigma of the transfer and interpolation runs (NVIDIA samples around the reference's "
                        "z; at 0 a small model's mean path stalls and never stops)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--z-clips", type=int, default=10, help="training clips per style for the z separation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.prior_steps is None:
        args.prior_steps = args.steps // 4
    return args


def styles(args: argparse.Namespace) -> dict[str, tuple[int, int]]:
    low, high = args.pitches
    slow, fast = args.rates
    return {"low_slow": (low, slow), "low_fast": (low, fast), "high_slow": (high, slow), "high_fast": (high, fast)}


def sentences(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    pool = [s for s in builtin_prompts("ko") if 8 <= len(s) <= 40]
    random.Random(args.seed).shuffle(pool)
    need = args.sentences + args.held_out
    if len(pool) < need:
        raise SystemExit(f"only {len(pool)} prompt sentences of 8-40 characters; ask for fewer")
    return pool[: args.sentences], pool[args.sentences : need]


def make_data(args: argparse.Namespace, train_texts: list[str], held_texts: list[str]) -> tuple[Path, Path]:
    """LJSpeech folder of the training clips (all styles), its preprocessed folder, and the
    held-out renderings (``held/<style>/<i>.wav``)."""
    raw, processed = args.work / "raw", args.work / "processed"
    if (processed / "config.json").is_file():
        return processed, args.work / "held"
    (raw / "wavs").mkdir(parents=True, exist_ok=True)
    lines = []
    for name, (pitch, rate) in styles(args).items():
        for i, text in enumerate(train_texts):
            wave, sr = espeak(text, "ko", rate=rate, pitch=pitch)
            save_wav(raw / "wavs" / f"{name}_{i:03d}.wav", wave, sr)
            lines.append(f"{name}_{i:03d}|{text}|{text}")
        for i, text in enumerate(held_texts):
            wave, sr = espeak(text, "ko", rate=rate, pitch=pitch)
            save_wav(args.work / "held" / name / f"{i:03d}.wav", wave, sr)
    (raw / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    preprocess_dataset(raw, processed, PreprocessConfig(language="ko", val_fraction=0.05, min_val=2),
                       workers=1, progress=False)
    return processed, args.work / "held"


def train_model(args: argparse.Namespace, data: Path) -> Path:
    run_dir = args.work / "run"
    recipe = Recipe.from_dict({
        "model": "flowtron",
        "model_config": {"preset": args.preset, "n_hidden": args.hidden, "n_attn_channels": args.hidden // 2,
                         "n_text_dim": args.hidden // 2, "max_decoder_steps": 800, "n_flows": args.flows,
                         "use_cumm_attention": args.cumm_attention},
        "data": {"dir": str(data), "batch_size": args.batch_size},
        "train": {"steps": args.steps, "lr": args.lr, "warmup_steps": 0, "grad_clip": 1.0,
                  "eval_interval": max(args.steps // 4, 1), "checkpoint_interval": max(args.steps // 10, 1),
                  "keep_last": 2, "log_interval": 50, "seed": args.seed, "progress": False},
        "options": {"single_flow_steps": args.steps // 2, "use_attn_prior": True, "n_audio_examples": 0,
                    "attn_prior_steps": args.prior_steps, "guided_attention_weight": args.guided_attention,
                    "gate_pos_weight": args.gate_pos_weight},
        "run_dir": str(run_dir),
    })
    resume = (run_dir / "latest.pt").is_file()
    train(recipe, resume=resume)
    voice = args.work / "voice"
    return make_bundle(run_dir, voice, name="flowtron_style", overwrite=True)


# --- measurements ---------------------------------------------------------------------------


def measure(wave: np.ndarray, sample_rate: int, text: str) -> dict[str, float]:
    """Mean F0 (Hz, voiced frames) and speaking rate (Hangul syllables per second of speech)."""
    speech, _ = trim_silence(np.asarray(wave, dtype=np.float32), sample_rate)
    f0, voiced = pitch_track(speech, sample_rate) if speech.size > sample_rate // 20 else (np.zeros(0), np.zeros(0, bool))
    syllables = sum("가" <= c <= "힣" for c in text)
    seconds = speech.size / sample_rate
    rate = syllables / seconds if seconds >= 0.05 else float("nan")  # nothing above the silence floor
    return {"f0": float(np.nanmean(f0[voiced])) if voiced.any() else float("nan"), "rate": rate, "seconds": seconds}


def run(synth: Synthesizer, text: str, sigma: float, seed: int, style: dict[str, Any] | None = None) -> dict[str, float]:
    """:func:`measure` of one synthesis, with ``failed`` 1.0 when its alignment failed (after the
    synthesizer's retry: e.g. it never stopped) and 0.0 otherwise."""
    result = synth.synthesize_report(text, noise_scale=sigma, seed=seed, style=style)
    return {**measure(result.wave, synth.sample_rate, text), "failed": float(not result.alignment_ok)}


def averaged(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.nanmean([r[key] for r in runs])) for key in ("f0", "rate", "failed")}


def sigma_spread(synth: Synthesizer, texts: list[str], seeds: int) -> dict[str, dict[str, float]]:
    out = {}
    for sigma in SIGMAS:
        f0_sd, rate_sd, failed = [], [], []
        for text in texts:
            runs = [run(synth, text, sigma, seed) for seed in range(seeds)]
            f0_sd.append(float(np.nanstd([r["f0"] for r in runs])))
            rate_sd.append(float(np.nanstd([r["rate"] for r in runs])))
            failed += [r["failed"] for r in runs]
        out[str(sigma)] = {"f0_sd_hz": float(np.nanmean(f0_sd)), "rate_sd": float(np.nanmean(rate_sd)),
                           "failed": float(np.mean(failed))}
    return out


def reference(args: argparse.Namespace, style: str, train_texts: list[str]) -> tuple[np.ndarray, int, str]:
    pitch, rate = styles(args)[style]
    text = train_texts[0]
    wave, sr = espeak(text, "ko", rate=rate, pitch=pitch)
    return wave, sr, text


def transfer(args: argparse.Namespace, synth: Synthesizer, held: Path, train_texts: list[str],
             held_texts: list[str]) -> dict[str, dict[str, float]]:
    """Every condition at ``--style-sigma``, averaged over ``--seeds`` seeds per sentence."""
    import soundfile

    sigma, seeds = args.style_sigma, range(args.seeds)
    plain = [averaged([run(synth, t, sigma, seed) for seed in seeds]) for t in held_texts]
    out = {}
    for style in styles(args):
        wave, sr, ref_text = reference(args, style, train_texts)
        controls = synth.style_controls(ref_wave=wave, ref_sample_rate=sr, ref_text=ref_text, strength=1.0)
        closed: dict[str, list[float]] = {"f0": [], "rate": []}
        values: dict[str, list[float]] = {"f0": [], "rate": [], "failed": [], "target_f0": [], "target_rate": []}
        for i, text in enumerate(held_texts):
            styled = averaged([run(synth, text, sigma, seed, controls) for seed in seeds])
            target_wave, target_sr = soundfile.read(str(held / style / f"{i:03d}.wav"), dtype="float32")
            target = measure(target_wave, target_sr, text)
            for key in ("f0", "rate"):
                gap = target[key] - plain[i][key]
                if np.isfinite(gap) and abs(gap) > 1e-6 and np.isfinite(styled[key]):
                    closed[key].append((styled[key] - plain[i][key]) / gap)
                values[key].append(styled[key])
                values[f"target_{key}"].append(target[key])
            values["failed"].append(styled["failed"])
        out[style] = {
            "f0_gap_closed": float(np.mean(closed["f0"])) if closed["f0"] else float("nan"),
            "rate_gap_closed": float(np.mean(closed["rate"])) if closed["rate"] else float("nan"),
            **{key: float(np.nanmean(value)) for key, value in values.items()},
        }
    out["plain"] = {key: float(np.nanmean([p[key] for p in plain])) for key in ("f0", "rate", "failed")}
    return out


def interpolation(args: argparse.Namespace, synth: Synthesizer, train_texts: list[str],
                  held_texts: list[str]) -> dict[str, Any]:
    wave_a, sr_a, text_a = reference(args, "low_slow", train_texts)
    wave_b, sr_b, text_b = reference(args, "high_fast", train_texts)
    base = synth.style_controls(ref_wave=wave_a, ref_sample_rate=sr_a, ref_text=text_a, strength=1.0)
    b = {"ref_mel_b": synth.style_reference(wave_b, sr_b), "ref_ids_b": synth.voice.frontend.to_ids(text_b)}
    rows = []
    for alpha in ALPHAS:
        style = {**base, **b, "alpha": alpha}
        runs = [run(synth, t, args.style_sigma, seed, style) for t in held_texts for seed in range(args.seeds)]
        rows.append({"alpha": alpha, **averaged(runs)})

    def monotonic(key: str) -> bool:
        values = [row[key] for row in rows]
        steps = np.diff(values)
        return bool((steps >= 0).all() or (steps <= 0).all())

    return {"rows": rows, "f0_monotonic": monotonic("f0"), "rate_monotonic": monotonic("rate")}


def centroid_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out accuracy of a nearest-centroid classifier: how well ``features`` ``[n, d]``
    tell ``labels`` apart (1/classes is chance)."""
    hits = 0
    for i in range(len(labels)):
        rest = np.arange(len(labels)) != i
        classes = np.unique(labels[rest])
        centroids = np.stack([features[rest & (labels == c)].mean(0) for c in classes])
        hits += classes[np.argmin(((centroids - features[i]) ** 2).sum(1))] == labels[i]
    return hits / len(labels)


def z_separation(run_dir: Path, data: Path, names: list[str], per_style: int) -> dict[str, dict[str, float]]:
    """Where the style is before any synthesis: the time-mean z of ``per_style`` training clips of
    each style (read with their own text), and for comparison their time-mean mel. For each: the
    leave-one-out :func:`centroid_accuracy` of the four styles, of pitch alone and of rate alone
    (styles named ``<pitch>_<rate>``), the spread of the style centroids (std over styles, mean over
    channels) and the within-style std. Transfer uses the reference's time-mean z, so a centroid
    spread far below the prior's std (1) means the reference moves z's mean very little."""
    import torch

    from moksori.data.manifest import read_manifest
    from moksori.models import registry
    from moksori.training import load_checkpoint

    checkpoint = load_checkpoint(run_dir)
    family = registry.get("flowtron", registry.ACOUSTIC)
    model = family.build(checkpoint["model_config"])
    model.load_state_dict(checkpoint["model"])
    model.eval()
    features: dict[str, list[np.ndarray]] = {"z": [], "mel": []}
    labels = []
    for index, name in enumerate(names):
        for record in [r for r in read_manifest(data, "train") if r["id"].startswith(name + "_")][:per_style]:
            mel = torch.from_numpy(np.load(data / record["mel"])).float()
            ids = torch.tensor(record["ids"])
            with torch.no_grad():
                z = model(mel[None], torch.tensor([mel.size(1)]), ids[None], torch.tensor([ids.numel()])).z[0]
            features["z"].append(z.mean(1).numpy())
            features["mel"].append(mel.mean(1).numpy())
            labels.append(index)
    style = np.array(labels)
    pitch = np.array([names[i].split("_")[0] for i in labels])
    rate = np.array([names[i].split("_")[1] for i in labels])
    out = {}
    for key, rows in features.items():
        x = np.stack(rows)
        centroids = np.stack([x[style == i].mean(0) for i in range(len(names))])
        out[key] = {"styles_accuracy": centroid_accuracy(x, style), "pitch_accuracy": centroid_accuracy(x, pitch),
                    "rate_accuracy": centroid_accuracy(x, rate), "centroid_spread": float(centroids.std(0).mean()),
                    "within_style_std": float(np.mean([x[style == i].std(0).mean() for i in range(len(names))]))}
    return out


def tables(results: dict[str, Any]) -> str:
    lines = ["| sigma | F0 spread across seeds (Hz) | rate spread (syll/s) | alignment failed |", "|---|---|---|---|"]
    for sigma, row in results["sigma"].items():
        lines.append(f"| {sigma} | {row['f0_sd_hz']:.1f} | {row['rate_sd']:.2f} | {row['failed']:.2f} |")
    plain = results["transfer"]["plain"]
    sigma = results["settings"]["style_sigma"]
    lines += ["", f"plain (no reference, sigma {sigma}): F0 {plain['f0']:.1f} Hz, rate {plain['rate']:.2f} syll/s, "
              f"alignment failed {plain['failed']:.2f}", "",
              "| style | F0 styled / target (Hz) | F0 gap closed | rate styled / target | rate gap closed | failed |",
              "|---|---|---|---|---|---|"]
    for style, row in results["transfer"].items():
        if style == "plain":
            continue
        lines.append(f"| {style} | {row['f0']:.1f} / {row['target_f0']:.1f} | {row['f0_gap_closed']:.2f} | "
                     f"{row['rate']:.2f} / {row['target_rate']:.2f} | {row['rate_gap_closed']:.2f} | {row['failed']:.2f} |")
    inter = results["interpolation"]
    lines += ["", "| alpha (low_slow → high_fast) | F0 (Hz) | rate (syll/s) | failed |", "|---|---|---|---|"]
    lines += [f"| {row['alpha']} | {row['f0']:.1f} | {row['rate']:.2f} | {row['failed']:.2f} |" for row in inter["rows"]]
    lines.append(f"\nmonotonic in alpha: F0 {inter['f0_monotonic']}, rate {inter['rate_monotonic']}")
    lines += ["", "| time-mean of the training clips | 4 styles (chance 0.25) | pitch | rate | centroid spread | "
              "within-style std |", "|---|---|---|---|---|---|"]
    for key, row in results["z_separation"].items():
        lines.append(f"| {key} | {row['styles_accuracy']:.2f} | {row['pitch_accuracy']:.2f} | {row['rate_accuracy']:.2f} | "
                     f"{row['centroid_spread']:.3f} | {row['within_style_std']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore", message="Mean of empty slice")  # a silent output has no F0: NaN
    warnings.filterwarnings("ignore", message="Degrees of freedom")
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_texts, held_texts = sentences(args)
    data, held = make_data(args, train_texts, held_texts)
    print(f"data ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    voice = train_model(args, data)
    print(f"trained in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    synth = Synthesizer(voice, use_onnx=False)
    results = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sigma": sigma_spread(synth, held_texts, args.seeds),
        "transfer": transfer(args, synth, held, train_texts, held_texts),
        "interpolation": interpolation(args, synth, train_texts, held_texts),
        "z_separation": z_separation(args.work / "run", data, list(styles(args)), args.z_clips),
        "wall_s": time.perf_counter() - started,
    }
    (args.work / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
