"""WaveNet generation on the CPU: incremental (cached queues, "fast WaveNet") against naive
recomputation of the receptive field for every sample, and the first audio when streaming.

For each of ``--presets`` (default: small), on the same mel (random frames of a plausible log-mel
level; weights are random: speed does not depend on them), in one run at ``--threads`` threads:

* incremental: real-time factor (seconds of work per second of audio) generating ``--seconds``,
  with the NumPy step (the default on a CPU) and the PyTorch one;
* naive: the same model and draws, every sample rerunning the full convolution over its receptive
  field, timed over the first ``--naive-samples`` samples (it costs the same per sample throughout)
  and checked to give the same samples as the incremental path (both in float64, first 100 samples:
  in float32 the sampled feedback lets rounding differences grow);
* the ratio naive / incremental per sample (the issue's target: at least 20×; ``--check`` tests
  the PyTorch step's, the same framework as the naive path);
* first audio: seconds from ``WaveNetVocoder.stream`` to its first piece, and from
  ``Synthesizer.stream`` to its first chunk for a voice of an untrained Glow-TTS small and the
  WaveNet preset (the acoustic model's time included);
* HiFi-GAN V1 on the same mel, for scale.

Timings on a shared machine are noisy: compare the rows of one run (ratios), not runs.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/wavenet_incremental.py              # small
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/wavenet_incremental.py --presets small base --check
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from moksori.models import registry
from moksori.models.interfaces import Controls
from moksori.models.wavenet import WaveNet, WaveNetConfig, WaveNetVocoder, naive_generate

SAMPLE_RATE, HOP = 22050, 256
TARGET_RATIO = 20.0


def _mel(frames: int) -> torch.Tensor:
    torch.manual_seed(1)
    return -6.0 + 2.0 * torch.randn(1, 80, frames)  # log-mel around speech level


def _timed(run: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = run()
    return time.perf_counter() - started, out


def measure_preset(preset: str, seconds: float, naive_samples: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig.preset(preset)).eval()
    frames = max(1, round(seconds * SAMPLE_RATE / HOP))
    mel = _mel(frames)
    audio_s = frames * HOP / SAMPLE_RATE
    times = {}
    for backend in ("torch", "numpy"):
        model.generate(mel[..., :2], torch.Generator().manual_seed(0), backend=backend)  # warm-up
        times[backend], fast = _timed(lambda: model.generate(mel, torch.Generator().manual_seed(0), backend=backend))
    naive_mel = mel[..., : -(-naive_samples // HOP)]
    naive_s, slow = _timed(lambda: naive_generate(model, naive_mel, torch.Generator().manual_seed(0), naive_samples))
    per_sample_naive = naive_s / slow.shape[1]
    # Same output: both paths in float64 (in float32 the sampled feedback lets rounding grow).
    check = min(naive_samples, 100)
    double = copy.deepcopy(model).double()
    exact = double.generate(naive_mel.double(), torch.Generator().manual_seed(0))[:, :check]
    naive_exact = naive_generate(double, naive_mel.double(), torch.Generator().manual_seed(0), check)
    vocoder = WaveNetVocoder(model)
    first_piece_s, _ = _timed(lambda: next(iter(vocoder.stream(mel[0], Controls(seed=0)))))
    return {
        "preset": preset,
        "receptive_field": model.receptive_field,
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "audio_s": audio_s,
        "incremental_rtf": times["numpy"] / audio_s,
        "incremental_torch_rtf": times["torch"] / audio_s,
        "naive_rtf": per_sample_naive * SAMPLE_RATE,
        "ratio": per_sample_naive / (times["numpy"] / fast.shape[1]),
        "ratio_torch": per_sample_naive / (times["torch"] / fast.shape[1]),
        "naive_samples": slow.shape[1],
        "same_output_max_diff": float((exact - naive_exact).abs().max()),
        "same_output_samples": check,
        "first_piece_s": first_piece_s,
        "piece_samples": vocoder.chunk_samples,
    }


def hifigan_rtf(seconds: float) -> float:
    family = registry.get("hifigan")
    torch.manual_seed(0)
    generator = family.build(family.config("v1")).eval()
    frames = max(1, round(seconds * SAMPLE_RATE / HOP))
    mel = _mel(frames)
    with torch.inference_mode():
        generator.infer(mel[0])
        elapsed, _ = _timed(lambda: generator.infer(mel[0]))
    return elapsed / (frames * HOP / SAMPLE_RATE)


def synthesizer_first_chunk(preset: str, threads: int) -> float:
    """Seconds to the first streamed chunk for a voice of an untrained Glow-TTS small + WaveNet ``preset``."""
    from moksori.bench.synth import _random_voice
    from moksori.synthesis import Synthesizer

    with tempfile.TemporaryDirectory() as folder:
        voice = _random_voice(f"glow_tts small + wavenet {preset}", Path(folder))
        synth = Synthesizer(voice, use_onnx=False, num_threads=threads)
        text = "안녕하세요. 오늘은 날씨가 좋네요."
        next(iter(synth.stream("네.", seed=0)))  # warm-up
        elapsed, _ = _timed(lambda: next(iter(synth.stream(text, seed=0))))
    return elapsed


def report(rows: list[dict[str, Any]], hifigan: float, threads: int) -> str:
    lines = [
        f"WaveNet generation on {threads} CPU thread(s); real-time factor = seconds of work per second of audio",
        "",
        "| preset | receptive field | params | incremental RTF: NumPy (default) / PyTorch | naive RTF "
        "| naive / incremental: NumPy / PyTorch | same output (max diff) | first piece (vocoder) "
        "| first chunk (Synthesizer) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['receptive_field']} samples | {r['parameters_m']:.2f}M "
            f"| {r['incremental_rtf']:.1f} / {r['incremental_torch_rtf']:.1f} | {r['naive_rtf']:.0f} "
            f"| {r['ratio']:.0f}× / {r['ratio_torch']:.0f}× | {r['same_output_max_diff']:.1e} "
            f"| {r['first_piece_s']:.2f} s ({r['piece_samples']} samples) | {r['synth_first_chunk_s']:.2f} s |"
        )
    lines.append(f"| HiFi-GAN V1 (same mel) | | | {hifigan:.3f} | | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small"], choices=["base", "small", "tiny"])
    parser.add_argument("--seconds", type=float, default=1.0, help="audio generated incrementally")
    parser.add_argument("--naive-samples", type=int, default=200, help="samples generated naively")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("out/wavenet_bench"))
    parser.add_argument("--check", action="store_true", help=f"exit 1 unless every ratio is at least {TARGET_RATIO:.0f}×")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for preset in args.presets:
        row = measure_preset(preset, args.seconds, args.naive_samples)
        row["synth_first_chunk_s"] = synthesizer_first_chunk(preset, args.threads)
        rows.append(row)
    hifigan = hifigan_rtf(args.seconds)
    text = report(rows, hifigan, args.threads)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"threads": args.threads, "rows": rows, "hifigan_v1_rtf": hifigan},
                                                      indent=2), encoding="utf-8")
    (args.out / "report.md").write_text(text + "\n", encoding="utf-8")
    if args.check and any(r["ratio_torch"] < TARGET_RATIO for r in rows):
        print(f"FAILED: a ratio is below {TARGET_RATIO:.0f}×", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
