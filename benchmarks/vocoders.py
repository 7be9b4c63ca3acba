"""Every vocoder in one table: the same held-out clips, the same small CPU training budget.

Four vocoders train from scratch for the same CPU time (``--budget-cpu-s`` each, measured as the
training process's user + system CPU time, ``--train-threads`` threads, segments resumed until the
budget is spent): HiFi-GAN V2, Vocos small, WaveGlow small and WaveNet small. Beside them: the
shipped ``ko_default`` voice's Vocos (trained for hours: the trained reference) and Griffin-Lim
(no training: the floor). Data: espeak-ng Korean sample clips (``moksori sample-dataset``'s prompts)
for training; for evaluation, sentences written for this benchmark that are in no prompt pool, so
neither the new vocoders nor ``ko_default`` ever heard them.

Per vocoder, by copy synthesis (the held-out clip's own mel in, audio out):
MCD (DTW, dB), F0 RMSE (cents) and V/UV error against the recording; DNSMOS P.835 SIG/BAK/OVRL
(the ``judges`` extra; the recordings are scored too); real-time factor on ``--threads`` threads
(the vocoders take turns on each clip, so the machine's load weighs on all alike); the first audio
of ``Synthesizer.stream`` for a voice of ``ko_default``'s Glow-TTS with that vocoder (the same
acoustic model for all: the differences are the vocoder's; the voices timed in turns); parameters. WaveGlow is scored with
the denoiser off and at each of ``--strengths``, and the denoiser's bias spectrum is measured
against the hiss it should remove.

    OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python benchmarks/vocoders.py      # results in out/vocoders

Timings on a shared machine are noisy: compare the rows of one run (ratios), not runs.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE, HOP = 22050, 256
SILENCE_DB = -40.0  # a reference frame this far below its loudest frame counts as silence
SILENT_MEL = math.log(1e-5)  # the log-mel of digital silence (the mel transform's clamp)

# Held-out sentences written for this benchmark: in no built-in prompt set nor the shared corpus
# (checked at run time), so no vocoder here, ko_default's included, trained on their audio.
HELD_OUT = (
    "창밖으로 보이는 산이 오늘따라 푸르다.",
    "우리 동네 빵집은 일곱 시에 문을 연다.",
    "그 편지는 결국 주인에게 가지 못했다.",
    "자전거를 타고 강변을 천천히 달렸다.",
    "작은 고양이가 상자 안에서 잠들었다.",
    "바람이 불자 나뭇잎이 우수수 떨어졌다.",
    "회의는 다음 주 수요일로 미뤄졌습니다.",
    "할머니가 끓인 된장찌개가 생각난다.",
)


@dataclass(frozen=True)
class Trainee:
    """A vocoder trained here from scratch: family, preset, and what its recipe sets."""

    label: str
    family: str
    preset: str
    lr: float
    model_config: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    grad_clip: float = 0.0


# Batch 4 for all. The frame-rate and transposed-convolution vocoders take 8,192-sample segments;
# the sample-rate ones (a flow over every sample, an autoregressive stack) 2,048, or a step would
# cost most of the budget. The GAN vocoders train on their spectral losses only (mel L1 +
# multi-resolution STFT), as ko_default's Vocos did: HiFi-GAN's discriminators cost several times
# the generator per step, which a few CPU-minutes cannot pay.
TRAINEES = (
    Trainee("HiFi-GAN V2", "hifigan", "v2", 1e-3, {"segment_size": 8192},
            {"adversarial": False, "stft_loss": True}),
    Trainee("Vocos small", "vocos", "small", 1e-3, {"segment_size": 8192},
            {"adversarial": False, "stft_loss": True, "stft_loss_weight": 15.0}),
    Trainee("WaveGlow small", "waveglow", "small", 5e-4, {"segment_size": 2048}),
    Trainee("WaveNet small", "wavenet", "small", 1e-3, {"segment_size": 2048}, grad_clip=1.0),
)


# --- data --------------------------------------------------------------------------------------


def _prompt_pool() -> set[str]:
    from moksori.data.prompt_sets import builtin_prompts, read_prompt_file

    pool = set(builtin_prompts("ko"))
    corpus = ROOT.parent / "shared" / "data" / "korean_corpus.csv"
    if corpus.is_file():
        pool.update(read_prompt_file(corpus))
    return {text.strip() for text in pool}


def build_data(work: Path, train_clips: int, held_out: int) -> tuple[Path, Path]:
    """(training set, held-out set), preprocessed; cached in ``work``."""
    from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
    from moksori.data.sample_dataset import make_sample_dataset

    sentences = HELD_OUT[:held_out]
    seen = _prompt_pool().intersection(sentences)
    if seen:
        raise SystemExit(f"held-out sentences found in a prompt pool: {sorted(seen)}")
    train, test = work / "train_processed", work / "heldout_processed"
    if not (train / "config.json").is_file():
        raw = make_sample_dataset(work / "train_raw", n=train_clips, workers=1, progress=False)
        preprocess_dataset(raw, train, PreprocessConfig(language="ko", val_fraction=0.05, min_val=2),
                           workers=1, progress=False)
    if not (test / "config.json").is_file():
        raw = make_sample_dataset(work / "heldout_raw", n=len(sentences), prompts=sentences, workers=1,
                                  progress=False)
        preprocess_dataset(raw, test, PreprocessConfig(language="ko", val_fraction=0.0, min_val=1),
                           workers=1, progress=False)
    return train, test


# --- training on a CPU budget ------------------------------------------------------------------


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _recipe(trainee: Trainee, data: Path, run_dir: Path) -> Any:
    from moksori.training.recipe import load_recipe

    recipe = load_recipe({
        "model": trainee.family,
        "model_config": {"preset": trainee.preset, **trainee.model_config},
        "data": {"dir": str(data), "batch_size": 4, "num_workers": 0},
        "train": {"steps": 1, "lr": trainee.lr, "grad_clip": trainee.grad_clip, "eval_interval": 10**9,
                  "checkpoint_interval": 10**9, "keep_last": 1, "seed": 1234, "amp": "off",
                  "log_interval": 10, "progress": False},
        "options": dict(trainee.options),
        "run_dir": str(run_dir),
    })
    return recipe


def train_on_budget(trainee: Trainee, data: Path, work: Path, budget_cpu_s: float, threads: int) -> dict[str, Any]:
    """Train ``trainee`` from scratch until its process has spent ``budget_cpu_s`` CPU seconds
    (setup included), in segments resumed from the run's checkpoint: a first short one to measure
    the cost of a step, then as many steps as the rest of the budget pays for (measured again
    after each segment). Cached: a finished run with the same settings is not trained again."""
    from moksori.training import train

    run_dir = work / "runs" / trainee.family
    spec = {"trainee": trainee.__dict__, "budget_cpu_s": budget_cpu_s, "threads": threads, "data": str(data)}
    done = run_dir / "budget.json"
    if done.is_file() and json.loads(done.read_text())["spec"] == spec:
        return json.loads(done.read_text())
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    torch.set_num_threads(threads)
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    steps, target = 0, 5
    while True:
        train(_recipe(trainee, data, run_dir), max_steps=target, resume=steps > 0)
        steps = target
        spent = _cpu_seconds() - cpu0
        per_step = spent / steps
        more = int((budget_cpu_s - spent) / per_step)
        print(f"  {trainee.label}: {steps} steps, {spent:.0f}/{budget_cpu_s:.0f} CPU s", flush=True)
        if more < 1:
            break
        target = steps + (more if more <= 20 else max(1, int(more * 0.8)))
    result = {"spec": spec, "label": trainee.label, "steps": steps, "cpu_s": _cpu_seconds() - cpu0,
              "wall_s": time.perf_counter() - wall0, "checkpoint": str(run_dir / "latest.pt")}
    done.write_text(json.dumps(result, indent=1))
    return result


def train_all(data: Path, work: Path, budget_cpu_s: float, threads: int, jobs: int) -> list[dict[str, Any]]:
    """Every trainee, ``jobs`` at a time in their own processes (spawned: each measures its own CPU
    time), or one after the other in this process when ``jobs`` is 1."""
    if jobs <= 1:
        return [train_on_budget(t, data, work, budget_cpu_s, threads) for t in TRAINEES]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(train_on_budget, t, data, work, budget_cpu_s, threads) for t in TRAINEES]
        return [future.result() for future in futures]


# --- voices: ko_default's Glow-TTS with each vocoder --------------------------------------------


def _reference_acoustic_checkpoint(work: Path) -> Path:
    """ko_default's acoustic model as a training checkpoint, so make_bundle can pair it."""
    from moksori.synthesis.bundle import read_voice_json
    import moksori.voices as shipped

    voice_dir = shipped.resolve_voice("ko_default")
    data = read_voice_json(voice_dir)
    section = data["acoustic"]
    path = work / "ko_default_acoustic.pt"
    torch.save({
        "format": "moksori-checkpoint-1", "model_name": section["model_name"],
        "model_config": section["model_config"],
        "model": torch.load(voice_dir / section.get("file", "acoustic.pt"), map_location="cpu", weights_only=True),
        "step": 0, "epoch": 0, "text_frontend": data["text_frontend"], "mel_config": data["audio"]["mel"],
        "speakers": data.get("speakers") or [], "train_state": {},
    }, path)
    return path


def build_voices(work: Path, trained: list[dict[str, Any]]) -> dict[str, Path]:
    """label → voice folder, each ko_default's Glow-TTS with one vocoder (every pair is also a
    check that the families pair and synthesise)."""
    from moksori.synthesis.bundle import make_bundle
    import moksori.voices as shipped

    acoustic = _reference_acoustic_checkpoint(work)
    voices = {"Griffin-Lim": make_bundle(acoustic, work / "voices" / "griffin_lim", overwrite=True),
              "ko_default Vocos": make_bundle(acoustic, work / "voices" / "ko_default_vocos", overwrite=True,
                                              vocoder_ckpt=shipped.resolve_voice("ko_default"))}
    for run in trained:
        folder = work / "voices" / Path(run["checkpoint"]).parent.name
        voices[run["label"]] = make_bundle(acoustic, folder, vocoder_ckpt=run["checkpoint"], overwrite=True)
    return voices


# --- scoring -----------------------------------------------------------------------------------


@dataclass
class Case:
    """One row of the table: a voice's vocoder with fixed controls."""

    label: str
    voice: str
    denoise: float | None = None
    scores: list[dict[str, float]] = field(default_factory=list)
    vocode_s: float = 0.0
    audio_s: float = 0.0


def hiss_db(reference: np.ndarray, output: np.ndarray) -> float:
    """The output's RMS level (dBFS) over the frames where the reference is silent."""
    mask = silent_frames(reference, min(reference.size, output.size))
    if not mask.any():
        return math.nan
    out = _frame_rms(output[: mask.size * HOP])
    return float(20 * np.log10(np.sqrt(np.mean(out[mask] ** 2)) + 1e-12))


def _frame_rms(wave: np.ndarray) -> np.ndarray:
    n = wave.size // HOP
    return np.sqrt(np.mean(wave[: n * HOP].reshape(n, HOP).astype(np.float64) ** 2, axis=1))


def silent_frames(reference: np.ndarray, samples: int) -> np.ndarray:
    ref = _frame_rms(reference[:samples])
    return 20 * np.log10(ref + 1e-12) < 20 * np.log10(ref.max() + 1e-12) + SILENCE_DB


def clip_scores(reference: np.ndarray, output: np.ndarray, dnsmos: bool) -> dict[str, float]:
    from moksori.evaluation.judges import dnsmos_scores
    from moksori.evaluation.metrics import align, f0_metrics_of_alignment, mcd_of_alignment

    scores = {"hiss_db": hiss_db(reference, output), "mcd": math.nan, "f0_rmse_cents": math.nan,
              "vuv_error": math.nan}
    try:
        alignment = align(reference, output, SAMPLE_RATE)
        scores["mcd"] = mcd_of_alignment(alignment)
        f0 = f0_metrics_of_alignment(alignment, SAMPLE_RATE)
        scores["f0_rmse_cents"], scores["vuv_error"] = f0["f0_rmse_cents"], f0["vuv_error"]
    except ValueError:  # (nearly) silent output: nothing to align
        pass
    if dnsmos:
        try:
            judged = dnsmos_scores(output, SAMPLE_RATE)
            scores.update(sig=judged.sig, bak=judged.bak, ovrl=judged.ovrl)
        except ValueError:
            scores.update(sig=math.nan, bak=math.nan, ovrl=math.nan)
    return scores


def copy_synthesis(cases: list[Case], loaded: dict[str, Any], clips: list[tuple[np.ndarray, np.ndarray]],
                   dnsmos: bool) -> dict[str, list[torch.Tensor]]:
    """Each clip's mel through every case in turn (timed), scored against the clip. WaveGlow's flow
    runs once per clip and voice (its noise is seeded, so every denoiser setting would get the same
    flow output): each setting is timed as that flow time plus its own denoising, as ``infer`` does
    it. Returns each WaveGlow voice's flow outputs (sigma 0.666, no denoiser), per clip."""
    from moksori.models.interfaces import Controls

    warm_mel = torch.from_numpy(clips[0][1][:, :8])
    for voice in dict.fromkeys(case.voice for case in cases):  # first calls (and WaveGlow's bias) untimed
        with torch.inference_mode():
            loaded[voice].vocoder_model.infer(warm_mel, Controls(seed=0))
    flow_outputs: dict[str, list[torch.Tensor]] = {}
    for index, (reference, mel) in enumerate(clips):
        mel_t = torch.from_numpy(mel)
        flow_time: dict[str, float] = {}
        for case in cases:
            vocoder = loaded[case.voice].vocoder_model
            started = time.perf_counter()
            with torch.inference_mode():
                if case.denoise is None:
                    output = vocoder.infer(mel_t, Controls(seed=0))
                else:  # WaveGlow: the flow once, then this case's denoiser strength
                    if case.voice not in flow_time:
                        raw = vocoder.infer(mel_t, Controls(seed=0, denoise=0.0))
                        flow_outputs.setdefault(case.voice, []).append(raw)
                        flow_time[case.voice] = time.perf_counter() - started
                        started = time.perf_counter()
                    output = vocoder.finish(flow_outputs[case.voice][index], case.denoise)
            case.vocode_s += time.perf_counter() - started + flow_time.get(case.voice, 0.0)
            output = output.numpy().reshape(-1)
            case.audio_s += output.size / SAMPLE_RATE
            case.scores.append(clip_scores(reference, output, dnsmos))
        print(f"  clip {index + 1}/{len(clips)} done", flush=True)
    return flow_outputs


def first_audio_s(voices: dict[str, Any], threads: int, repeats: int = 3) -> dict[str, float]:
    """label → median seconds from ``Synthesizer.stream`` to its first chunk, the voices timed in
    turns (voice 1, voice 2, …, voice 1, …) after a warm-up of each, so load changes weigh on all."""
    from moksori.synthesis import Synthesizer

    synths = {label: Synthesizer(voice, use_onnx=False, num_threads=threads) for label, voice in voices.items()}
    text = "오늘은 날씨가 정말 좋네요. 산책을 나가 볼까요?"
    for synth in synths.values():
        next(iter(synth.stream("네.", seed=0)))
    times: dict[str, list[float]] = {label: [] for label in synths}
    for _ in range(repeats):
        for label, synth in synths.items():
            started = time.perf_counter()
            next(iter(synth.stream(text, seed=0)))
            times[label].append(time.perf_counter() - started)
    return {label: statistics.median(values) for label, values in times.items()}


def recording_scores(clips: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    from moksori.evaluation.judges import dnsmos_scores

    judged = [dnsmos_scores(reference, SAMPLE_RATE) for reference, _ in clips]
    return {key: statistics.mean(getattr(j, key) for j in judged) for key in ("sig", "bak", "ovrl")}


# --- WaveGlow's denoiser: its bias against the hiss -----------------------------------------------


def denoiser_study(vocoder: Any, clips: list[tuple[np.ndarray, np.ndarray]], flow_outputs: list[torch.Tensor],
                   strengths: list[float], hiss_strengths: list[float], dnsmos: bool) -> dict[str, Any]:
    """Why the denoiser does (not) help: the level of the bias spectrum it subtracts (× strength)
    against the output's spectrum over the reference's silent frames at sigma 0.666 and at sigma 0
    (what of the hiss is deterministic, hence removable by a bias), and what a bias taken from the
    model's own output for a silent mel at sigma 0.666 (its sampled hiss) would remove instead."""
    from moksori.models.interfaces import Controls
    from moksori.models.waveglow import Denoiser

    denoiser = vocoder.denoiser()
    bias = torch.from_numpy(denoiser.bias_spec).reshape(-1).double()
    silent_mel = torch.full((1, vocoder.model.config.n_mel_channels, 88), SILENT_MEL)
    with torch.inference_mode():
        hiss_audio = vocoder.infer(silent_mel, Controls(seed=0, denoise=0.0)).reshape(-1)
    hiss_denoiser = Denoiser(hiss_audio, n_fft=denoiser.n_fft, hop=denoiser.hop, win=denoiser.win)
    silence_spec: dict[str, list[torch.Tensor]] = {"0.666": [], "0": []}
    rows: dict[str, list[dict[str, float]]] = {str(s): [] for s in hiss_strengths}
    for (reference, mel), flow_output in zip(clips, flow_outputs):
        mel_t = torch.from_numpy(mel)
        mask = torch.from_numpy(silent_frames(reference, reference.size))
        for sigma in ("0.666", "0"):
            if sigma == "0.666":  # the copy synthesis's flow output (seed 0, no denoiser)
                out = flow_output.reshape(-1)
            else:
                with torch.inference_mode():
                    out = vocoder.infer(mel_t, Controls(seed=0, sigma=0.0, denoise=0.0)).reshape(-1)
            spec = torch.from_numpy(np.abs(denoiser.stft(out.reshape(1, -1).numpy()))[0])  # [bins, frames], float64
            frames = min(spec.shape[1], mask.numel())
            if mask[:frames].any():
                silence_spec[sigma].append(spec[:, :frames][:, mask[:frames]])
            if sigma == "0.666":
                for strength in hiss_strengths:
                    with torch.inference_mode():
                        cleaned = hiss_denoiser(out, strength).numpy()
                    rows[str(strength)].append(clip_scores(reference, cleaned, dnsmos))

    def level_db(spec: torch.Tensor) -> float:
        return float(20 * torch.log10(spec.mean() + 1e-12))

    hiss = {sigma: torch.cat(specs, dim=1) for sigma, specs in silence_spec.items() if specs}
    return {
        "bias_db": level_db(bias),
        "hiss_db": {sigma: level_db(spec) for sigma, spec in hiss.items()},
        "hiss_profile_db": level_db(torch.from_numpy(hiss_denoiser.bias_spec).reshape(-1).double()),
        "subtracted_vs_hiss_db": {str(s): level_db(bias * s) - level_db(hiss["0.666"]) for s in strengths if s > 0}
        if "0.666" in hiss else {},
        "hiss_profile_rows": {label: _mean_scores(scores) for label, scores in rows.items()},
    }


# --- report ------------------------------------------------------------------------------------


def _mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for key in scores[0]:
        values = [s[key] for s in scores if math.isfinite(s[key])]
        out[key] = statistics.mean(values) if values else math.nan
    return out


def _params(millions: float) -> str:
    return f"{millions:.2f}M" if millions else "0"


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None or not math.isfinite(value) else format(value, spec)


def report(rows: list[dict[str, Any]], recordings: dict[str, float] | None, study: dict[str, Any] | None,
           settings: dict[str, Any]) -> str:
    trained = {r["label"]: r for r in settings["training"]}
    lines = [
        f"Copy synthesis of {settings['clips']} held-out clips; four vocoders trained from scratch for "
        f"{settings['budget_cpu_s'] / 60:.1f} CPU-minutes each ({settings['train_threads']} thread, batch 4; "
        f"{sum(r['cpu_s'] for r in settings['training']) / 60:.1f} CPU-minutes of training in all); "
        f"RTF and first audio on {settings['threads']} threads.",
        "",
        "| vocoder | training | params | MCD dB | F0 RMSE cents | V/UV err | DNSMOS SIG | BAK | OVRL "
        "| hiss in silence dBFS | RTF | first audio s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        run = trained.get(row["voice"])
        training = (f"{run['steps']} steps, {run['cpu_s'] / 60:.1f} CPU-min" if run
                    else ("none" if row["voice"] == "Griffin-Lim" else "shipped (hours)"))
        m = row["scores"]
        lines.append(
            f"| {row['label']} | {training} | {_params(row['params_m'])} | {_fmt(m['mcd'], '.2f')} "
            f"| {_fmt(m['f0_rmse_cents'], '.0f')} | {_fmt(m['vuv_error'], '.3f')} | {_fmt(m.get('sig'), '.2f')} "
            f"| {_fmt(m.get('bak'), '.2f')} | {_fmt(m.get('ovrl'), '.2f')} | {_fmt(m['hiss_db'], '.1f')} "
            f"| {_fmt(row['rtf'], '.3f')} | {_fmt(row.get('first_audio_s'), '.2f')} |")
    if recordings:
        lines.append(f"| (the recordings) | | | | | | {recordings['sig']:.2f} | {recordings['bak']:.2f} "
                     f"| {recordings['ovrl']:.2f} | | | |")
    if study:
        lines += ["", "WaveGlow's denoiser: spectrum levels (mean STFT magnitude, dB) over the references' "
                  "silent frames",
                  "", f"- bias spectrum (zero mel, sigma 0), strength 1: {study['bias_db']:.1f} dB",
                  *(f"- output in silence at sigma {s}: {v:.1f} dB" for s, v in study["hiss_db"].items()),
                  *(f"- subtracted at strength {s} against the hiss at sigma 0.666: {v:+.1f} dB"
                    for s, v in study["subtracted_vs_hiss_db"].items()),
                  f"- hiss profile (silent mel, sigma 0.666), strength 1: {study['hiss_profile_db']:.1f} dB"]
        if study["hiss_profile_rows"]:
            lines += ["", "Subtracting the hiss profile instead of the bias (WaveGlow small, sigma 0.666):", "",
                      "| strength | MCD dB | F0 RMSE | V/UV | SIG | BAK | OVRL | hiss dBFS |",
                      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for label, m in study["hiss_profile_rows"].items():
                lines.append(f"| {label} | {_fmt(m['mcd'], '.2f')} | {_fmt(m['f0_rmse_cents'], '.0f')} "
                             f"| {_fmt(m['vuv_error'], '.3f')} | {_fmt(m.get('sig'), '.2f')} | {_fmt(m.get('bak'), '.2f')} "
                             f"| {_fmt(m.get('ovrl'), '.2f')} | {_fmt(m['hiss_db'], '.1f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("out/vocoders"))
    parser.add_argument("--train-clips", type=int, default=60, help="espeak-ng sample clips to train on")
    parser.add_argument("--clips", type=int, default=6, help=f"held-out clips to score (at most {len(HELD_OUT)})")
    parser.add_argument("--max-seconds", type=float, default=0.0, help="score only each clip's first seconds (0: all)")
    parser.add_argument("--budget-cpu-s", type=float, default=200.0, help="training CPU seconds per vocoder")
    parser.add_argument("--train-threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="vocoders trained at once (own processes)")
    parser.add_argument("--threads", type=int, default=2, help="threads for RTF and first audio")
    parser.add_argument("--strengths", default="0.01,0.05,0.1", help="WaveGlow denoiser strengths beside off")
    parser.add_argument("--hiss-strengths", default="0.5,1,2",
                        help="strengths of the experimental hiss-profile subtraction (empty: skip)")
    parser.add_argument("--no-dnsmos", dest="dnsmos", action="store_false")
    parser.add_argument("--no-first-audio", dest="first_audio", action="store_false")
    args = parser.parse_args(argv)
    if not 1 <= args.clips <= len(HELD_OUT):
        parser.error(f"--clips must be 1..{len(HELD_OUT)}")
    from moksori.audio import load_audio
    from moksori.data.manifest import read_manifest
    from moksori.evaluation.judges import dnsmos_available
    from moksori.synthesis import load_voice

    if args.dnsmos and dnsmos_available() is not None:
        print(f"no DNSMOS: {dnsmos_available()}", file=sys.stderr)
        args.dnsmos = False
    args.work.mkdir(parents=True, exist_ok=True)
    train_data, test_data = build_data(args.work, args.train_clips, args.clips)
    print(f"training {len(TRAINEES)} vocoders, {args.budget_cpu_s:.0f} CPU s each ...", flush=True)
    trained = train_all(train_data, args.work, args.budget_cpu_s, args.train_threads, args.jobs)

    torch.set_num_threads(args.threads)
    voices = build_voices(args.work, trained)
    loaded = {label: load_voice(path) for label, path in voices.items()}
    strengths = [float(s) for s in args.strengths.split(",") if s]
    cases = []
    for label in voices:
        if loaded[label].vocoder_name == "waveglow":
            cases += [Case(f"{label}, denoiser {'off' if s == 0 else s}", label, s) for s in [0.0, *strengths]]
        else:
            cases.append(Case(label, label))
    records = read_manifest(test_data, "all")[: args.clips]
    clips = [(load_audio(test_data / r["audio"]), np.load(test_data / r["mel"]).astype(np.float32)) for r in records]
    if args.max_seconds:  # the clips' beginnings only (a quick run)
        frames = max(1, round(args.max_seconds * SAMPLE_RATE / HOP))
        clips = [(wave[: frames * HOP], mel[:, :frames]) for wave, mel in clips]
    print(f"copy synthesis of {len(clips)} clips ({sum(c[0].size for c in clips) / SAMPLE_RATE:.1f} s) ...", flush=True)
    flow_outputs = copy_synthesis(cases, loaded, clips, args.dnsmos)
    first = first_audio_s(loaded, args.threads) if args.first_audio else {}
    rows = []
    for case in cases:
        vocoder = loaded[case.voice].vocoder
        rows.append({"label": case.label, "voice": case.voice, "denoise": case.denoise,
                     "params_m": sum(p.numel() for p in vocoder.parameters()) / 1e6 if vocoder is not None else 0.0,
                     "scores": _mean_scores(case.scores), "rtf": case.vocode_s / case.audio_s,
                     "first_audio_s": first.get(case.voice)})
    recordings = recording_scores(clips) if args.dnsmos else None
    glow = next((label for label in voices if loaded[label].vocoder_name == "waveglow"), None)
    hiss_strengths = [float(s) for s in args.hiss_strengths.split(",") if s]
    study = (denoiser_study(loaded[glow].vocoder_model, clips, flow_outputs[glow], strengths, hiss_strengths, args.dnsmos)
             if glow else None)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["training"] = [{k: v for k, v in run.items() if k != "spec"} for run in trained]
    text = report(rows, recordings, study, settings)
    print(text)
    (args.work / "results.json").write_text(json.dumps({"settings": settings, "rows": rows, "recordings": recordings,
                                                         "denoiser": study}, indent=1, default=str))
    (args.work / "report.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
