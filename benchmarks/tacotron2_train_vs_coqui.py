"""Tacotron2 training step, moksori beside Coqui TTS, in one run (alternating child processes).

Both at NVIDIA's sizes (Coqui's default ``Tacotron2Config``: the same encoder/decoder/postnet sizes),
random weights, random data: batch 16 x (60 tokens, 430 mel frames), two frames per decoder step
(r=2), 2 threads. One step is, for each, what its trainer does per batch:

* moksori: ``Tacotron2.forward`` (teacher forcing) + ``tacotron2_loss`` (mel before/after the
  postnet, gate BCE, guided attention) + backward + gradient clipping at 1.0 + Adam;
* Coqui: ``Tacotron2.train_step`` (forward + its default ``TacotronLoss``: L1/MSE mel before/after
  the postnet, stopnet BCE, spectral-difference and SSIM terms, guided attention) + backward +
  gradient clipping at 5.0 + ``get_optimizer()`` (RAdam).

Each model runs in a fresh child process per round (1 warm-up step, then the median of
``--steps`` timed steps), alternating which goes first, so a busy machine slows both alike: read
the ratio, not the absolute times. Wall and CPU time (the process's, all threads) are reported;
the CPU time is the steadier one while other work shares the machine.

    .venv/bin/python benchmarks/tacotron2_train_vs_coqui.py --peer-python /tmp/peervenv/bin/python --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PEERBENCH = Path(__file__).resolve().parents[2] / "shared" / "peerbench"
BATCH, TOKENS, FRAMES, R = 16, 60, 430, 2


def _threads(threads: int):
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return torch


def _timed(step, steps: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (this process, all threads) seconds of each timed step, after one warm-up."""
    step()
    walls, cpus = [], []
    for _ in range(steps):
        started, cpu_started = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
    return walls, cpus


def moksori_step(batch: int = BATCH, tokens: int = TOKENS, frames: int = FRAMES):
    """moksori's Tacotron2 training step at NVIDIA's sizes (r=2): a callable returning the loss, and
    the model's parameter count. Also timed by ``tacotron2_vs_coqui.py --train``."""
    import torch

    from moksori.models.tacotron2 import Tacotron2, Tacotron2Config, tacotron2_loss

    torch.manual_seed(0)
    model = Tacotron2(Tacotron2Config.base(148, n_frames_per_step=R)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-6, weight_decay=1e-6)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 148, (batch, tokens), generator=g)
    ids_lengths = torch.full((batch,), tokens)
    mels = torch.randn(batch, 80, frames, generator=g)
    mel_lengths = torch.full((batch,), frames)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        losses = tacotron2_loss(model(ids, ids_lengths, mels, mel_lengths), mels, mel_lengths, ids_lengths, R,
                                guided_weight=1.0)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(losses["total"].detach())

    return step, sum(p.numel() for p in model.parameters())


def moksori_child(threads: int, steps: int) -> dict:
    _threads(threads)
    step, params = moksori_step()
    return {"times": _timed(step, steps), "params": params}


def coqui_child(threads: int, steps: int) -> dict:
    torch = _threads(threads)
    sys.path.insert(0, str(PEERBENCH))
    import coqui_shim  # noqa: F401  (imports coqui-tts without torchaudio)
    from TTS.tts.configs.tacotron2_config import Tacotron2Config
    from TTS.tts.models.tacotron2 import Tacotron2

    torch.manual_seed(0)
    config = Tacotron2Config()
    assert config.r == R, config.r
    model = Tacotron2(config).train()
    criterion = model.get_criterion()
    optimizer = model.get_optimizer()
    g = torch.Generator().manual_seed(1)
    text = torch.randint(4, model.num_chars, (BATCH, TOKENS), generator=g)
    mel = torch.randn(BATCH, FRAMES, 80, generator=g)
    mel_lengths = torch.full((BATCH,), FRAMES)
    stop = torch.zeros(BATCH, FRAMES)
    stop[:, -1] = 1.0
    batch = {
        "text_input": text, "text_lengths": torch.full((BATCH,), TOKENS), "mel_input": mel,
        "mel_lengths": mel_lengths, "stop_targets": (stop.view(BATCH, FRAMES // R, R).sum(2) > 0).float(),
        "stop_target_lengths": torch.divide(mel_lengths, R).ceil_(), "speaker_ids": None, "d_vectors": None,
    }

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        _, losses = model.train_step(batch, criterion)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        return float(losses["loss"].detach())

    return {"times": _timed(step, steps), "params": sum(p.numel() for p in model.parameters())}


def _run(cmd: list[str]) -> dict | None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.stderr.write(f"no result from {' '.join(cmd)}:\n{done.stderr[-3000:]}\n")
    return None


def side_by_side(peer_python: str | None, rounds: int, threads: int, steps: int) -> dict:
    found: dict[str, list[float]] = {}
    common = ["--threads", str(threads), "--steps", str(steps)]
    for index in range(rounds):
        runs = [("moksori", [sys.executable, __file__, "--child", "moksori", *common])]
        if peer_python:
            runs.append(("coqui", [peer_python, __file__, "--child", "coqui", *common]))
        if index % 2:
            runs.reverse()
        for name, cmd in runs:
            result = _run(cmd)
            if result is not None:
                found.setdefault(name, []).append(result["s_per_step"])
                found.setdefault(f"{name}_cpu", []).append(result["cpu_s_per_step"])
                print(f"round {index + 1} {name}: {result['s_per_step']:.2f} s/step wall, "
                      f"{result['cpu_s_per_step']:.2f} s/step CPU "
                      f"(steps {result['steps_s']}, {result['params']:,} parameters, load {os.getloadavg()[0]:.1f})",
                      flush=True)
    table = {"batch": f"{BATCH}x({TOKENS} tok, {FRAMES} frames), r={R}", "threads": threads,
             **{f"{name}_s_per_step": values for name, values in found.items()}}
    if "moksori" in found and "coqui" in found:
        for kind, suffix in (("wall", ""), ("cpu", "_cpu")):
            ratios = [a / b for a, b in zip(found[f"moksori{suffix}"], found[f"coqui{suffix}"])]
            table[f"moksori_over_coqui_{kind}"] = [round(r, 3) for r in ratios]
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=("moksori", "coqui"), help=argparse.SUPPRESS)
    parser.add_argument("--peer-python", help="python of a venv with coqui-tts (omit: moksori alone)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per child (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        result = (moksori_child if args.child == "moksori" else coqui_child)(args.threads, args.steps)
        walls, cpus = result.pop("times")
        print("RESULT " + json.dumps({"s_per_step": round(statistics.median(walls), 3),
                                      "cpu_s_per_step": round(statistics.median(cpus), 3),
                                      "steps_s": [round(t, 2) for t in walls], **result}), flush=True)
        return 0
    table = side_by_side(args.peer_python, args.rounds, args.threads, args.steps)
    print(json.dumps(table))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
