"""How much of Glow-TTS base's time stays in fp32 when its decoder runs in bf16 (issue 19).

``precision_modules`` puts only the flows (``model.decoder``) in reduced precision: the text encoder
and the duration predictor stay fp32 so that rounded durations are exactly those of fp32 (the
quality guard's first limit). This times, for the peer harness's Glow-TTS cases (random weights,
the same length-scale bisection as ``peer_side_by_side.py``), the fp32 part alone
(``GlowTTSAcoustic.durations``) against the whole call in fp32 and in bf16, alternating::

    .venv/bin/python benchmarks/glow_precision_split.py --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from moksori.models import build_model
from moksori.models.glow_tts import GlowTTSAcoustic, GlowTTSConfig
from moksori.synthesis.bundle import prepare_for_inference
from moksori.synthesis.precision import with_precision
from moksori.text import TextFrontend

CASES = {"5s_60tok": (60, 430), "20s_240tok": (240, 1720)}  # tokens, target frames (as the harness)


def _setup(tokens: int, target: int) -> tuple[GlowTTSAcoustic, torch.nn.Module, tuple, float]:
    n_vocab = len(TextFrontend("ko").symbols)
    torch.manual_seed(0)
    model = prepare_for_inference(build_model("glow_tts", GlowTTSConfig.base(n_vocab).to_dict()))
    with torch.no_grad():
        model.encoder.proj_w.proj.bias.fill_(math.log(1 + 7.0))
    fp32 = GlowTTSAcoustic(model).eval()
    bf16 = with_precision(fp32, "bf16")
    generator = torch.Generator().manual_seed(1)
    x = torch.randint(1, n_vocab, (1, tokens), generator=generator)
    lengths = torch.tensor([tokens])
    lo, hi = 1e-3, 100.0
    for _ in range(60):  # the length scale that gives ``target`` frames
        mid = (lo + hi) / 2
        with torch.inference_mode():
            frames = int(fp32.durations(x, lengths, mid, None)[4].item())
        lo, hi = (mid, hi) if frames < target else (lo, mid)
    noise = torch.randn(1, 80, target, generator=generator)
    return fp32, bf16, (x, lengths, torch.tensor([0.667, hi]), noise), hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| case | fp32 part alone (encoder + durations) s | whole call fp32 s | whole call bf16 s | "
          "fp32 share of the bf16 call | bf16 speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for case, (tokens, target) in CASES.items():
        fp32, bf16, inputs, scale = _setup(tokens, target)
        x, lengths = inputs[0], inputs[1]
        runs = {
            "part": lambda: fp32.durations(x, lengths, scale, None),
            "fp32": lambda: fp32(*inputs),
            "bf16": lambda: bf16(*inputs),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        with torch.inference_mode():
            for run in runs.values():
                run()  # warm-up
            for _ in range(args.rounds):
                for name, run in runs.items():
                    started = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - started)
        part, whole, reduced = (statistics.median(times[name]) for name in ("part", "fp32", "bf16"))
        print(f"| {case} | {part:.4f} | {whole:.4f} | {reduced:.4f} | {part / reduced:.0%} | {whole / reduced:.2f}× |")


if __name__ == "__main__":
    main()
