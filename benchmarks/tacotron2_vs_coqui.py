"""Tacotron2 inference speed, moksori beside Coqui TTS, in one run (alternating rounds).

Both models have NVIDIA's sizes (encoder 512, attention/decoder LSTMs 1024, prenet 256, postnet
512), random weights, two mel frames per decoder step (Coqui's default ``r``), the stop gate
disabled and ``max_decoder_steps = frames / r``, so both decode exactly the same number of steps.
moksori's time is the whole acoustic interface (``Tacotron2Acoustic.infer``: encoder, decoder
loop with noise-driven prenet masks, postnet, alignment check); Coqui's is
``../shared/peerbench/bench_tacotron2.py`` (``Tacotron2.inference``). Each case runs in a fresh
child process per model and round, alternating moksori and Coqui, so a busy machine slows both
alike: read the ratios, not the absolute times.

    PEER=/path/to/venv-with-coqui-tts/bin/python   # see ../shared/peerbench/README.md
    .venv/bin/python benchmarks/tacotron2_vs_coqui.py --peer-python $PEER --rounds 3
    .venv/bin/python benchmarks/tacotron2_vs_coqui.py --train     # moksori's training step alone
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

CASES = {"5s_60tok": (60, 430), "20s_60tok": (60, 1720), "20s_240tok": (240, 1720)}
PEERBENCH = Path(__file__).resolve().parents[2] / "shared" / "peerbench" / "bench_tacotron2.py"
SR, HOP, R, RUNS = 22050, 256, 2, 5


def _set_threads(threads: int):
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return torch


def child(case: str, threads: int) -> None:
    """One case of moksori's Tacotron2, printed as ``RESULT {json}`` like the peer scripts."""
    torch = _set_threads(threads)
    from moksori.models.interfaces import Controls
    from moksori.models.tacotron2 import Tacotron2, Tacotron2Acoustic, Tacotron2Config
    from moksori.synthesis.inference import sentence_noise

    n_tokens, frames = CASES[case]
    steps = frames // R
    torch.manual_seed(0)
    model = Tacotron2(Tacotron2Config.base(148, n_frames_per_step=R, max_decoder_steps=steps)).eval()
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.bias.fill_(-1e4)  # never stops: exactly `steps` steps
    adapter = Tacotron2Acoustic(model)
    ids = torch.randint(4, 148, (1, n_tokens), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([n_tokens])

    def noise(row: int, n: int, channels: int):
        return sentence_noise(0, row, n, channels)

    def run():
        with torch.inference_mode():
            return adapter.infer(ids, lengths, Controls(), noise)

    run()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - started)
    n_frames = int(out.lengths[0])
    audio_s = n_frames * HOP / SR
    wall = statistics.median(times)
    print("RESULT " + json.dumps({
        "case": case, "frames": n_frames, "decoder_steps": steps, "audio_s": round(audio_s, 3),
        "wall_s": round(wall, 4), "rtf": round(wall / audio_s, 4), "ms_per_step": round(1000 * wall / steps, 3),
        "params": sum(p.numel() for p in model.parameters()),
    }), flush=True)


def train_step(threads: int, batch: int = 16, n_tokens: int = 60, frames: int = 430) -> dict:
    """moksori's Tacotron2 training step (teacher forcing, loss with gate and guided attention,
    backward, clip 1.0, Adam) at batch 16 x (60 tokens, 430 frames), NVIDIA's sizes, r=2."""
    torch = _set_threads(threads)
    from moksori.models.tacotron2 import Tacotron2, Tacotron2Config, tacotron2_loss

    torch.manual_seed(0)
    model = Tacotron2(Tacotron2Config.base(148, n_frames_per_step=R)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-6, weight_decay=1e-6)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 148, (batch, n_tokens), generator=g)
    ids_lengths = torch.full((batch,), n_tokens)
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

    step()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return {"batch": f"{batch}x({n_tokens} tok, {frames} frames)", "s_per_step": round(statistics.median(times), 3)}


def _run(cmd: list[str]) -> dict | None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.stderr.write(f"no result from {' '.join(cmd)}:\n{done.stderr[-2000:]}\n")
    return None


def side_by_side(peer_python: str | None, cases: list[str], rounds: int, threads: int) -> list[dict]:
    rows: dict[tuple[str, str], list[dict]] = {}
    env_threads = ["--threads", str(threads)]
    for round_index in range(rounds):
        for case in cases:
            runs = [("moksori", [sys.executable, __file__, "--case", case, *env_threads])]
            if peer_python:
                runs.append(("coqui", [peer_python, str(PEERBENCH), "--case", case]))
            if round_index % 2:
                runs.reverse()  # alternate who goes first
            for name, cmd in runs:
                result = _run(cmd)
                if result is not None:
                    rows.setdefault((case, name), []).append(result)
                    print(f"round {round_index + 1} {case} {name}: {result['wall_s']:.3f} s "
                          f"({result['ms_per_step']:.2f} ms/step, RTF {result['rtf']:.3f})", flush=True)
    table = []
    for case in cases:
        ours, theirs = rows.get((case, "moksori"), []), rows.get((case, "coqui"), [])
        row = {"case": case}
        if ours:
            row["moksori_s"] = statistics.median(r["wall_s"] for r in ours)
            row["moksori_ms_per_step"] = statistics.median(r["ms_per_step"] for r in ours)
        if theirs:
            row["coqui_s"] = statistics.median(r["wall_s"] for r in theirs)
            row["coqui_ms_per_step"] = statistics.median(r["ms_per_step"] for r in theirs)
        if ours and theirs:
            ratios = [a["wall_s"] / b["wall_s"] for a, b in zip(ours, theirs)]
            row["ratio_moksori_over_coqui"] = round(statistics.median(ratios), 3)
        table.append(row)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--peer-python", help="python of a venv with coqui-tts (omit: moksori alone)")
    parser.add_argument("--cases", default="5s_60tok,20s_60tok", help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", action="store_true", help="time moksori's training step instead")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.case:
        child(args.case, args.threads)
        return 0
    if args.train:
        result = train_step(args.threads)
        print(json.dumps(result))
        return 0
    table = side_by_side(args.peer_python, args.cases.split(","), args.rounds, args.threads)
    for row in table:
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
