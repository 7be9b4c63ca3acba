"""WaveGlow on the CPU, side by side with HiFi-GAN V1 on the same mels, and what its denoiser does.

1. Speed: real-time factor (seconds of work per second of audio) of WaveGlow base (NVIDIA's
   published config) and small, each with the denoiser off and at its default strength 0.01, and of
   HiFi-GAN V1, all vocoding the same mel (a sample clip's, tiled to ``--seconds``) in one run at
   ``--threads`` threads. Weights are random: speed does not depend on them.
2. Denoiser: a WaveGlow (``--train-preset``) trained for ``--train-steps`` on an espeak-ng sample
   set copy-synthesises held-out clips from their real mels at sigma 0.666, with the denoiser at each
   of ``--strengths``. The noise score the denoiser is meant to improve is the hiss in silence: the
   output's level (dBFS) over the frames where the reference clip is silent (40 dB below its loudest
   frame). Reported with the mel-cepstral distortion (MCD, DTW-aligned) and F0 RMSE against the
   reference, so a denoiser that also eats speech shows.

Timings on a shared machine are noisy: compare the rows of one run (ratios), not runs. The two
denoiser settings of a preset run on one model, timed in turns.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/waveglow.py            # results in out/waveglow_bench
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/waveglow.py --check    # exit 1 unless the denoiser lowers the hiss
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moksori.audio import MelConfig, load_audio
from moksori.data.manifest import read_manifest
from moksori.models import registry
from moksori.models.interfaces import Controls
from moksori.models.waveglow import DEFAULT_SIGMA, WaveGlowVocoder
from moksori.synthesis.bundle import prepare_for_inference
from moksori.synthesis.synthesizer import configure_allocator

SILENCE_DB = -40.0  # a reference frame this far below its loudest frame counts as silence


# --- data --------------------------------------------------------------------------------------


def sample_data(work: Path, clips: int) -> Path:
    """An espeak-ng sample set, preprocessed (cached in ``work``)."""
    from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
    from moksori.data.sample_dataset import make_sample_dataset

    processed = work / "data_processed"
    if not (processed / "config.json").is_file():
        raw = make_sample_dataset(work / "data_raw", n=clips, workers=1, progress=False)
        config = PreprocessConfig(language="ko", val_fraction=0.15, min_val=4)
        preprocess_dataset(raw, processed, config, workers=1, progress=False)
    return processed


def tiled_mel(data: Path, seconds: float) -> np.ndarray:
    """The first validation clip's mel, repeated until it covers ``seconds``."""
    record = read_manifest(data, "val")[0]
    mel = np.load(data / record["mel"])
    frames = math.ceil(seconds * MelConfig().sample_rate / MelConfig().hop_length)
    return np.tile(mel, (1, math.ceil(frames / mel.shape[1])))[:, :frames].astype(np.float32)


# --- 1. speed ----------------------------------------------------------------------------------


def _vocoder(family_name: str, preset: str) -> torch.nn.Module:
    family = registry.get(family_name, registry.VOCODER)
    torch.manual_seed(0)
    model = prepare_for_inference(family.build(family.config(preset)))
    return family.inference(model, MelConfig()).eval()


def _median_seconds(runs: list[Any], repeats: int) -> list[float]:
    """Median time of each of ``runs``, measured in turns (run 1, run 2, …, run 1, …) so that the
    machine's load and the allocator's state weigh on all alike; one warm-up call each first (it
    also computes WaveGlow's denoiser bias, once per voice)."""
    for run in runs:
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, column in zip(runs, times):
            started = time.perf_counter()
            run()
            column.append(time.perf_counter() - started)
    return [statistics.median(column) for column in times]


def speed_rows(mel: np.ndarray, repeats: int, presets: list[str]) -> list[dict[str, Any]]:
    """HiFi-GAN V1, then each WaveGlow preset with the denoiser off and at 0.01 (one model each,
    the two settings timed in turns)."""
    audio_s = mel.shape[1] * MelConfig().hop_length / MelConfig().sample_rate
    mel_t = torch.from_numpy(mel)
    rows = []
    groups: list[tuple[str, str, list[float | None]]] = [("hifigan", "v1", [None])]
    groups += [("waveglow", preset, [0.0, 0.01]) for preset in presets]
    for family, preset, strengths in groups:
        vocoder = _vocoder(family, preset)
        runs = [lambda c=Controls(denoise=strength): vocoder.infer(mel_t, c) for strength in strengths]
        with torch.inference_mode():
            seconds = _median_seconds(runs, repeats)
        parameters = sum(p.numel() for p in vocoder.parameters())
        for strength, elapsed in zip(strengths, seconds):
            rows.append({"vocoder": f"{family} {preset}", "denoise": strength, "parameters_m": parameters / 1e6,
                         "audio_s": audio_s, "seconds": elapsed, "rtf": elapsed / audio_s})
            print(f"  {family} {preset:<5} denoise {strength if strength is not None else '-':<5} "
                  f"RTF {elapsed / audio_s:.3f}", flush=True)
        del vocoder, runs
    return rows


# --- 2. denoiser -------------------------------------------------------------------------------


def train_waveglow(data: Path, work: Path, preset: str, steps: int, batch_size: int) -> Path:
    from moksori.training import train
    from moksori.training.checkpoint import list_checkpoints
    from moksori.training.recipe import load_recipe

    run_dir = work / f"waveglow_{preset}"
    done = [p for p in list_checkpoints(run_dir)] if run_dir.is_dir() else []
    recipe = load_recipe(Path(__file__).resolve().parents[1] / "moksori" / "recipes" / "tiny_waveglow.yaml")
    recipe.data.dir, recipe.run_dir = str(data), str(run_dir)
    recipe.model_config = {"preset": preset}
    recipe.data.batch_size = batch_size
    recipe.train.progress = False
    recipe.train.eval_interval = recipe.train.checkpoint_interval = max(1, steps // 2)
    train(recipe, max_steps=steps, resume=bool(done))
    return run_dir / "latest.pt"


def hiss_db(reference: np.ndarray, output: np.ndarray, hop: int = 256) -> float:
    """The output's RMS level (dBFS) over the frames where the reference is silent."""
    n = min(reference.size, output.size) // hop
    frame_rms = lambda wave: np.sqrt(np.mean(wave[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    ref, out = frame_rms(reference), frame_rms(output)
    silent = 20 * np.log10(ref + 1e-12) < 20 * np.log10(ref.max() + 1e-12) + SILENCE_DB
    if not silent.any():
        return math.nan
    return float(20 * np.log10(np.sqrt(np.mean(out[silent] ** 2)) + 1e-12))


def denoiser_rows(
    data: Path, checkpoint: Path, strengths: list[float], clips: int, f0: bool, sigmas: tuple[float, ...] = ()
) -> list[dict[str, Any]]:
    """Scores at sigma 0.666 for each denoiser strength, then at each of ``sigmas`` without the denoiser."""
    from moksori.evaluation.metrics import align, f0_metrics_of_alignment, mcd_of_alignment
    from moksori.training import load_checkpoint

    state = load_checkpoint(checkpoint)
    family = registry.get("waveglow")
    model = family.build(state["model_config"])
    model.load_state_dict(state["model"])
    vocoder = WaveGlowVocoder(prepare_for_inference(model)).eval()
    records = read_manifest(data, "val")[:clips]
    cases = [(DEFAULT_SIGMA, s) for s in strengths] + [(sigma, 0.0) for sigma in sigmas]
    per_case: dict[tuple[float, float], list[dict[str, float]]] = {case: [] for case in cases}
    for record in records:
        reference = load_audio(data / record["audio"])
        mel = torch.from_numpy(np.load(data / record["mel"]))
        for sigma, strength in cases:
            with torch.inference_mode():
                output = vocoder.infer(mel, Controls(sigma=sigma, denoise=strength)).numpy()
            scores = {"hiss_db": hiss_db(reference, output), "mcd": math.nan}
            if f0:
                scores["f0_rmse_cents"] = math.nan
            try:
                alignment = align(reference, output, 22050)
            except ValueError:  # (nearly) silent output, e.g. sigma 0 early in training: no MCD
                per_case[(sigma, strength)].append(scores)
                continue
            scores["mcd"] = mcd_of_alignment(alignment)
            if f0:
                scores["f0_rmse_cents"] = f0_metrics_of_alignment(alignment, 22050)["f0_rmse_cents"]
            per_case[(sigma, strength)].append(scores)
    rows = []
    for (sigma, strength), scores in per_case.items():
        row = {"sigma": sigma, "denoise": strength, "clips": len(scores)}
        for key in scores[0]:
            values = [s[key] for s in scores if math.isfinite(s[key])]
            row[key] = statistics.mean(values) if values else math.nan
        rows.append(row)
        print(f"  sigma {sigma:<5} denoise {strength:<5} hiss {row['hiss_db']:7.2f} dBFS  MCD {row['mcd']:6.2f} dB", flush=True)
    return rows


# --- report ------------------------------------------------------------------------------------


def report(speed: list[dict[str, Any]], denoise: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    hifigan = next(r for r in speed if r["vocoder"].startswith("hifigan"))
    lines = [f"Speed ({settings['threads']} threads, {speed[0]['audio_s']:.1f} s of audio, median of "
             f"{settings['repeats']}; random weights):", "",
             "| vocoder | params | denoiser | RTF | × HiFi-GAN V1 |", "| --- | ---: | --- | ---: | ---: |"]
    for row in speed:
        denoiser = "-" if row["denoise"] is None else ("off" if row["denoise"] == 0 else f"{row['denoise']}")
        lines.append(f"| {row['vocoder']} | {row['parameters_m']:.1f}M | {denoiser} | {row['rtf']:.3f} | "
                     f"{row['rtf'] / hifigan['rtf']:.1f} |")
    if denoise:
        lines += ["", f"Denoiser (WaveGlow {settings['train_preset']} after {settings['train_steps']} steps, "
                  f"copy synthesis of {denoise[0]['clips']} held-out clips at sigma 0.666):", "",
                  "| sigma | denoise | hiss in silence (dBFS, lower is better) | MCD (dB) |"
                  + (" F0 RMSE (cents) |" if "f0_rmse_cents" in denoise[0] else ""),
                  "| ---: | ---: | ---: | ---: |" + (" ---: |" if "f0_rmse_cents" in denoise[0] else "")]
        for row in denoise:
            f0 = f" {row['f0_rmse_cents']:.0f} |" if "f0_rmse_cents" in row else ""
            lines.append(f"| {row['sigma']} | {row['denoise']} | {row['hiss_db']:.2f} | {row['mcd']:.2f} |{f0}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("out/waveglow_bench"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0, help="audio length of the speed test")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--presets", default="base,small", help="WaveGlow presets of the speed test")
    parser.add_argument("--clips", type=int, default=40, help="sample clips to make (15%% held out)")
    parser.add_argument("--train-preset", default="small")
    parser.add_argument("--train-steps", type=int, default=400, help="0: skip the denoiser study")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--strengths", default="0,0.01,0.05,0.1")
    parser.add_argument("--sigmas", default="0.3,0", help="sigmas scored without the denoiser, beside 0.666")
    parser.add_argument("--eval-clips", type=int, default=6)
    parser.add_argument("--no-f0", dest="f0", action="store_false", help="skip the (slow) F0 metric")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the default denoiser lowers the hiss")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    configure_allocator()  # as moksori say and the server do: large buffers stay on the heap
    args.work.mkdir(parents=True, exist_ok=True)
    data = sample_data(args.work, args.clips)

    print("speed:", flush=True)
    speed = speed_rows(tiled_mel(data, args.seconds), args.repeats, args.presets.split(","))
    denoise: list[dict[str, Any]] = []
    if args.train_steps > 0:
        print(f"training WaveGlow {args.train_preset} for {args.train_steps} steps ...", flush=True)
        started = time.perf_counter()
        checkpoint = train_waveglow(data, args.work, args.train_preset, args.train_steps, args.batch_size)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
        print("denoiser:", flush=True)
        strengths = [float(s) for s in args.strengths.split(",")]
        sigmas = tuple(float(s) for s in args.sigmas.split(",") if s)
        denoise = denoiser_rows(data, checkpoint, strengths, args.eval_clips, args.f0, sigmas)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    text = report(speed, denoise, settings)
    print(text)
    (args.work / "results.json").write_text(json.dumps({"settings": settings, "speed": speed, "denoise": denoise}, indent=1))
    (args.work / "report.md").write_text(text + "\n")
    if args.check and denoise:
        off = next(r for r in denoise if r["denoise"] == 0 and r["sigma"] == DEFAULT_SIGMA)
        default = next((r for r in denoise if r["denoise"] == 0.01 and r["sigma"] == DEFAULT_SIGMA), None)
        if default is None or not default["hiss_db"] < off["hiss_db"]:
            print("check failed: the denoiser at 0.01 does not lower the hiss", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
