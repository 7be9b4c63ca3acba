"""Synthesis benchmark: ``moksori bench synth``.

For each model pair (random weights: the real-time factor does not depend on training) a
temporary voice bundle is built and exported to ONNX, then, with PyTorch and with ONNX Runtime:

* real-time factor (synthesis seconds / audio seconds) of the acoustic model alone, the vocoder
  alone, and the whole Synthesizer path (text front end, sentences, silences), for about 5 s and
  about 20 s of audio;
* time to the first chunk of ``Synthesizer.stream`` for a three-sentence paragraph;
* the process's peak resident memory so far (``getrusage``; it only grows, so later rows
  include the earlier configurations);
* with ``--flops``: each model's FLOPs per second of audio (counted from the graph, see
  :mod:`moksori.bench.flops`), the GFLOP/s it achieved and its share of this machine's measured
  matmul peak (the better of fp32 and bf16) on the same threads;
* with ``--precision``: the PyTorch rows in each precision (see :mod:`moksori.synthesis.precision`).

The untrained duration predictor is set to a constant 3 frames per token (about 5 syllables a
second with blanks), so Korean text comes out at a natural length. Timings are the median of
``repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moksori.bench import write_untrained_checkpoint
from moksori.data.prompt_sets import builtin_prompts
from moksori.models import registry
from moksori.models.interfaces import Controls
from moksori.synthesis import (
    Synthesizer,
    configure_allocator,
    export_onnx,
    load_voice,
    make_bundle,
)
from moksori.bench.flops import count_flops, flop_fields, measure_peak
from moksori.synthesis.inference import sentence_noise
from moksori.synthesis.precision import FP32, check_precision, supports, with_precision
from moksori.synthesis.onnx_runtime import OnnxAcoustic, OnnxVocoder
from moksori.text import TextFrontend

DEFAULT_CONFIGS = (
    f"{registry.DEFAULT_ACOUSTIC} base + {registry.DEFAULT_VOCODER} v1",
    f"{registry.DEFAULT_ACOUSTIC} base + {registry.DEFAULT_VOCODER} v2",
)
TARGET_SECONDS = (5.0, 20.0)
FRAMES_PER_TOKEN = 2.5  # ceil → 3 frames per token
# "ACOUSTIC PRESET + VOCODER [PRESET]", family names and presets from the registry
_CONFIG_PATTERN = re.compile(r"(\w+)\s+(\w+)\s*\+\s*(\w+)(?:\s+(\w+))?$")

__all__ = ["main", "run_synth_benchmark"]


def run_synth_benchmark(
    voice_dir: str | Path | None = None,
    *,
    configs: Sequence[str] = DEFAULT_CONFIGS,
    threads: int = 2,
    onnx: bool = True,
    repeats: int = 3,
    work_dir: str | Path | None = None,
    flops: bool = False,
    precisions: Sequence[str] = (FP32,),
) -> list[dict[str, Any]]:
    """One row per (voice, backend, precision, audio length). With ``voice_dir`` that voice is
    measured (its ONNX files are used if present) instead of ``configs``. ``flops`` adds the FLOP
    accounting; ``precisions`` other than fp32 add PyTorch rows in that precision."""
    precisions = [check_precision(p, allow_auto=False) for p in precisions]
    torch.set_num_threads(threads)
    configure_allocator()  # as `moksori say` and `moksori serve` run
    peak = measure_peak(threads) if flops else None
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="moksori-bench-synth-", dir=work_dir) as temp:
        if voice_dir is not None:
            targets = [(Path(voice_dir).name, Path(voice_dir), None)]
        else:
            targets = []
            for config in configs:
                started = time.perf_counter()
                folder = _random_voice(config, Path(temp) / re.sub(r"\W+", "_", config))
                export_s = None
                if onnx:
                    export_started = time.perf_counter()
                    try:
                        export_onnx(folder)
                        export_s = time.perf_counter() - export_started
                    except NotImplementedError as error:  # a family without an ONNX export (WaveNet)
                        print(f"[{config}] PyTorch only: {error}", file=sys.stderr)
                print(f"[{config}] bundle built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
                targets.append((config, folder, export_s))
        for label, folder, export_s in targets:
            voice = load_voice(folder)
            runs = [(False, precision) for precision in precisions if _applies(voice, precision, label)]
            if onnx and voice.onnx_path("acoustic") is not None:
                runs.append((True, FP32))
            for use_onnx, precision in runs:
                rows.extend(_measure(label, voice, use_onnx, threads, repeats, export_s, precision, peak))
    return rows


def _applies(voice: Any, precision: str, label: str) -> bool:
    if precision == FP32 or supports(voice.acoustic_model, precision) or supports(voice.vocoder_model, precision):
        return True
    print(f"[{label}] {precision}: applies to no module of this pair (skipped)", file=sys.stderr)
    return False


def _config_help() -> str:
    acoustic = "; ".join(f"{f.name} {'|'.join(f.presets)}" for f in registry.families(registry.ACOUSTIC))
    vocoder = "; ".join(f"{f.name} {'|'.join(f.presets)}".strip() for f in registry.families(registry.VOCODER))
    return f"'ACOUSTIC PRESET + VOCODER PRESET' with acoustic {acoustic} and vocoder {vocoder}"


def parse_config(config: str) -> tuple[registry.Family, str, registry.Family, str | None]:
    """``"ACOUSTIC PRESET + VOCODER PRESET"`` → (acoustic family, preset, vocoder family, preset)."""
    match = _CONFIG_PATTERN.match(config.strip())
    problem = None
    if match is None:
        problem = "not of the form"
    else:
        acoustic_name, acoustic_preset, vocoder_name, vocoder_preset = match.groups()
        try:
            acoustic = registry.get(acoustic_name, registry.ACOUSTIC)
            vocoder = registry.get(vocoder_name, registry.VOCODER)
            acoustic.config(acoustic_preset, n_vocab=1)  # validates the preset names
            if vocoder.has_weights:
                vocoder.config(vocoder_preset)
            elif vocoder_preset:
                raise ValueError(f"{vocoder.name} has no presets")
        except (ValueError, TypeError) as error:
            problem = str(error)
    if problem is not None:
        raise ValueError(f"unknown configuration {config!r} ({problem}); write {_config_help()}, e.g. {DEFAULT_CONFIGS[0]!r}")
    return acoustic, acoustic_preset, vocoder, vocoder_preset


def _random_voice(config: str, folder: Path) -> Path:
    acoustic_family, acoustic_preset, vocoder_family, vocoder_preset = parse_config(config)
    frontend = TextFrontend("ko", add_blank=True)
    torch.manual_seed(0)
    acoustic = acoustic_family.build(acoustic_family.config(acoustic_preset, n_vocab=len(frontend.symbols)))
    # An untrained duration model would speak at a random rate: fix it (where the family has one).
    constant_durations = acoustic_family.extra.get("constant_durations")
    if constant_durations is not None:
        constant_durations(acoustic, FRAMES_PER_TOKEN)
    folder.mkdir(parents=True, exist_ok=True)
    acoustic_ckpt = write_untrained_checkpoint(folder / "acoustic_ckpt.pt", acoustic, acoustic_family.name, frontend)
    vocoder_ckpt = None
    if vocoder_family.has_weights:
        vocoder = vocoder_family.build(vocoder_family.config(vocoder_preset))
        vocoder_ckpt = write_untrained_checkpoint(folder / "vocoder_ckpt.pt", vocoder, vocoder_family.name, None)
    return make_bundle(acoustic_ckpt, folder / "voice", vocoder_ckpt=vocoder_ckpt, name=config)


def _texts(frontend: TextFrontend, frames_per_token: float, seconds: float, frames_per_second: float) -> str:
    """Prompt sentences joined until the text is about ``seconds`` long."""
    chosen, frames = [], 0.0
    for sentence in builtin_prompts("ko"):
        try:
            n_tokens = len(frontend.to_ids(sentence))
        except ValueError:
            continue
        if chosen and frames + n_tokens * frames_per_token > seconds * frames_per_second * 1.05:
            continue
        chosen.append(sentence)
        frames += n_tokens * frames_per_token
        if frames >= seconds * frames_per_second * 0.95:
            break
    return " ".join(chosen)


def _median_time(run: Callable[[], Any], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _measure(
    label: str, voice: Any, use_onnx: bool, threads: int, repeats: int, export_s: float | None,
    precision: str = FP32, peak: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    synth = Synthesizer(voice, use_onnx=use_onnx, num_threads=threads, precision=precision)
    frontend, mel = voice.frontend, voice.mel_config
    frames_per_second = mel.sample_rate / mel.hop_length
    acoustic, vocode = _model_runners(voice, use_onnx, threads, precision)
    paragraph = " ".join(builtin_prompts("ko")[:3])

    def first_chunk() -> None:
        next(iter(synth.stream(paragraph, seed=0)))

    first_chunk()  # warm-up: a serving process has run its models before
    first_chunk_s = _median_time(first_chunk, repeats)
    rows = []
    for seconds in TARGET_SECONDS:
        text = _texts(frontend, math.ceil(FRAMES_PER_TOKEN), seconds, frames_per_second)
        ids = frontend.to_ids(text)
        mel_out = acoustic(ids)
        speech_s = mel_out.shape[1] / frames_per_second
        acoustic_s = _median_time(lambda: acoustic(ids), repeats)
        vocoder_s = _median_time(lambda: vocode(mel_out), repeats)
        audio_s = synth.synthesize(text, seed=0).size / mel.sample_rate
        total_s = _median_time(lambda: synth.synthesize(text, seed=0), repeats)
        extra: dict[str, Any] = {}
        if peak is not None and not use_onnx:  # counted from the PyTorch graph
            ceiling = max(peak.values())  # the fastest dense math this machine does, in any precision
            for name, run, seconds in (("acoustic", lambda: acoustic(ids), acoustic_s),
                                       ("vocoder", lambda: vocode(mel_out), vocoder_s)):
                fields = flop_fields(count_flops(run), speech_s, seconds, ceiling)
                extra.update({f"{name}_{key}": value for key, value in fields.items()})
            extra.update(peak_fp32_gflops=peak["fp32"], peak_bf16_gflops=peak["bf16"])
        rows.append(
            {
                "config": label,
                "backend": "onnxruntime" if use_onnx else "pytorch",
                "precision": precision,
                "threads": threads,
                "speech_s": round(speech_s, 2),
                "acoustic_rtf": acoustic_s / speech_s,
                "vocoder_rtf": vocoder_s / speech_s,
                "audio_s": round(audio_s, 2),
                "total_rtf": total_s / audio_s,
                "first_chunk_s": first_chunk_s,
                "export_s": export_s,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                **extra,
            }
        )
    return rows


def _model_runners(
    voice: Any, use_onnx: bool, threads: int, precision: str = FP32
) -> tuple[Callable[[list[int]], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """ids → mel and mel → wave for one whole utterance, without sentence splitting, through the
    acoustic and vocoder interfaces (or their ONNX files), in ``precision`` (PyTorch)."""
    controls = Controls(length_scale=1.0, noise_scale=0.667)
    acoustic_model, vocoder_model = (
        with_precision(model, precision) if supports(model, precision) else model
        for model in (voice.acoustic_model, voice.vocoder_model)
    )

    def noise(row: int, frames: int, channels: int) -> np.ndarray:
        return sentence_noise(0, 0, frames, channels)

    if use_onnx:
        onnx_acoustic = OnnxAcoustic(voice.onnx_path("acoustic"), type(voice.acoustic_model), voice.mel_config.n_mels, threads)
        # None for Griffin-Lim and for a vocoder without a single graph (WaveNet: PyTorch).
        onnx_vocoder = (OnnxVocoder(voice.onnx_path("vocoder"), threads, voice.vocoder_model)
                        if voice.onnx_path("vocoder") is not None else None)

        def acoustic(ids: list[int]) -> np.ndarray:
            return onnx_acoustic.infer(ids, controls, noise)

    else:
        onnx_vocoder = None

        def acoustic(ids: list[int]) -> np.ndarray:
            with torch.inference_mode():
                out = acoustic_model.infer(torch.tensor([ids]), torch.tensor([len(ids)]), controls, noise)
            return out.mel[0, :, : int(out.lengths[0])].numpy()

    def vocode(mel: np.ndarray) -> np.ndarray:
        if onnx_vocoder is not None:
            return onnx_vocoder(mel)
        with torch.inference_mode():
            return vocoder_model.infer(torch.from_numpy(mel)).numpy()

    return acoustic, vocode


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'config':<28} {'backend':<11} {'speech s':>8} {'acoustic':>8} {'vocoder':>8} "
        f"{'audio s':>7} {'total':>7} {'1st chunk':>9} {'export':>7} {'peak RSS':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        export = f"{row['export_s']:.1f}s" if row["export_s"] is not None else "-"
        backend = row["backend"] if row.get("precision", FP32) == FP32 else f"pytorch/{row['precision']}"
        lines.append(
            f"{row['config']:<28} {backend:<11} {row['speech_s']:>8.1f} {row['acoustic_rtf']:>8.3f} "
            f"{row['vocoder_rtf']:>8.3f} {row['audio_s']:>7.1f} {row['total_rtf']:>7.3f} "
            f"{row['first_chunk_s']:>8.2f}s {export:>7} {row['peak_rss_mb']:>7.0f}MB"
        )
    lines.append("acoustic / vocoder / total: real-time factor (seconds of work per second of audio); lower is faster.")
    if any("acoustic_gflops" in row for row in rows):
        lines += ["", format_flops_table(rows)]
    return "\n".join(lines)


def format_flops_table(rows: list[dict[str, Any]]) -> str:
    """GFLOP per second of audio, achieved GFLOP/s and share of the measured matmul peak, per model."""
    counted = [row for row in rows if "acoustic_gflops" in row]
    peak = counted[0]
    header = (f"{'config':<28} {'prec':<5} {'speech s':>8} {'model':<9} {'GFLOP/audio s':>13} "
              f"{'GFLOP/s':>8} {'of peak':>8}")
    lines = [header, "-" * len(header)]
    for row in counted:
        for model in ("acoustic", "vocoder"):
            lines.append(f"{row['config']:<28} {row['precision']:<5} {row['speech_s']:>8.1f} {model:<9} "
                         f"{row[f'{model}_gflop_per_audio_s']:>13.2f} {row[f'{model}_gflops']:>8.1f} "
                         f"{100 * row[f'{model}_peak_share']:>7.1f}%")
    lines.append(f"peak: a {1024}³ matmul on {peak['threads']} threads, fp32 {peak['peak_fp32_gflops']:.1f} GFLOP/s, "
                 f"bf16 {peak['peak_bf16_gflops']:.1f} GFLOP/s; 'of peak' is against the better of the two. "
                 "FLOPs are matmuls and convolutions (2 per multiply-add); element-wise ops and FFTs are not counted.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moksori bench synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--voice", help="measure this voice folder ('default': the shipped one) instead of random-weight configs")
    parser.add_argument(
        "--config",
        action="append",
        help=f"model pair: {_config_help()}; repeatable; default: {list(DEFAULT_CONFIGS)}",
    )
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (PyTorch and ONNX Runtime)")
    parser.add_argument("--no-onnx", action="store_true", help="PyTorch only")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--flops", action="store_true",
                        help="FLOPs per second of audio per model, achieved GFLOP/s and share of this machine's matmul peak")
    parser.add_argument("--precision", nargs="+", default=["fp32"], type=str.lower, choices=["fp32", "bf16", "int8"],
                        help="PyTorch rows in these precisions (default: fp32)")
    args = parser.parse_args(argv)
    for name in ("threads", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    from moksori.voices import resolve_voice

    rows = run_synth_benchmark(
        resolve_voice(args.voice) if args.voice else None,
        configs=args.config or DEFAULT_CONFIGS,
        threads=args.threads,
        onnx=not args.no_onnx,
        repeats=args.repeats,
        flops=args.flops,
        precisions=args.precision,
    )
    print(format_table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
