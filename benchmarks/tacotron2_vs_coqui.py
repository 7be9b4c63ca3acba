"""Tacotron2 inference speed, moksori beside Coqui TTS, in one run (alternating rounds).

Both models have NVIDIA's sizes (encoder 512, attention/decoder LSTMs 1024, prenet 256, postnet
512), random weights, two mel frames per decoder step (Coqui's default ``r``), the stop gate
disabled and ``max_decoder_steps = frames / r``, so both decode exactly the same number of steps.
moksori's time is the whole acoustic interface (``Tacotron2Acoustic.infer``: encoder, decoder
loop with noise-driven prenet masks, postnet, alignment check), in each of ``--precisions``
(``fp32``; ``int8``: the two decoder LSTM cells dynamically quantised, as ``moksori say
--precision int8`` runs them); Coqui's is its whole ``Tacotron2.inference`` (fp32), set up as
``../shared/peerbench/bench_tacotron2.py`` does and run by this script's own child under the peer
venv. Each case runs in a fresh child process per variant and round, the order rotating every
round, so a busy machine slows all alike: read the ratios, not the absolute times. Each child
reports wall and CPU time (the process's, all threads: steadier than the wall clock when other
work shares the machine); each line gives the 1-minute load average when its child finished.

    PEER=/path/to/venv-with-coqui-tts/bin/python   # see ../shared/peerbench/README.md
    .venv/bin/python benchmarks/tacotron2_vs_coqui.py --peer-python $PEER --rounds 3
    .venv/bin/python benchmarks/tacotron2_vs_coqui.py --train     # moksori's training step alone
    .venv/bin/python benchmarks/tacotron2_train_vs_coqui.py --peer-python $PEER   # beside Coqui's
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


def child(case: str, threads: int, precision: str = "fp32") -> None:
    """One case of moksori's Tacotron2, printed as ``RESULT {json}`` like the peer scripts."""
    torch = _set_threads(threads)
    from moksori.models.interfaces import Controls
    from moksori.models.tacotron2 import Tacotron2, Tacotron2Acoustic, Tacotron2Config
    from moksori.synthesis.inference import sentence_noise
    from moksori.synthesis.precision import with_precision

    n_tokens, frames = CASES[case]
    steps = frames // R
    torch.manual_seed(0)
    model = Tacotron2(Tacotron2Config.base(148, n_frames_per_step=R, max_decoder_steps=steps)).eval()
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.bias.fill_(-1e4)  # never stops: exactly `steps` steps
    adapter = with_precision(Tacotron2Acoustic(model), precision)
    ids = torch.randint(4, 148, (1, n_tokens), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([n_tokens])

    def noise(row: int, n: int, channels: int):
        return sentence_noise(0, row, n, channels)

    def run():
        with torch.inference_mode():
            return adapter.infer(ids, lengths, Controls(), noise)

    out = _report(case, run, steps, lambda out: int(out.lengths[0]), sum(p.numel() for p in model.parameters()),
                  precision)


def _report(case: str, run, steps: int, frames_of, params: int, precision: str):
    """Time ``run`` (one warm-up, then the median of RUNS) by the wall clock and by this process's
    CPU time (all its threads; on a machine busy with other work the CPU time is the steadier
    figure: time spent descheduled is not in it), and print the ``RESULT`` line."""
    out = run()
    walls, cpus = [], []
    for _ in range(RUNS):
        started, cpu_started = time.perf_counter(), time.process_time()
        out = run()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
    audio_s = frames_of(out) * HOP / SR
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print("RESULT " + json.dumps({
        "case": case, "frames": frames_of(out), "decoder_steps": steps, "audio_s": round(audio_s, 3),
        "wall_s": round(wall, 4), "cpu_s": round(cpu, 4), "rtf": round(wall / audio_s, 4),
        "ms_per_step": round(1000 * wall / steps, 3), "cpu_ms_per_step": round(1000 * cpu / steps, 3),
        "params": params, "precision": precision,
    }), flush=True)
    return out


def coqui_child(case: str, threads: int) -> None:
    """Coqui's Tacotron2 as ``../shared/peerbench/bench_tacotron2.py`` sets it up (default config,
    r=2, random weights, gate disabled, ``max_decoder_steps = frames / r``), timed like ours: the
    whole ``Tacotron2.inference``. Run by the peer venv's python."""
    torch = _set_threads(threads)
    sys.path.insert(0, str(PEERBENCH.parent))
    import coqui_shim  # noqa: F401  (imports coqui-tts without torchaudio)
    from TTS.tts.configs.tacotron2_config import Tacotron2Config
    from TTS.tts.models.tacotron2 import Tacotron2

    n_tokens, frames = CASES[case]
    steps = frames // R
    torch.manual_seed(0)
    config = Tacotron2Config()
    assert config.r == R, config.r
    config.max_decoder_steps = steps
    model = Tacotron2(config).eval()
    model.decoder.stop_threshold = 2.0  # a sigmoid never exceeds it: exactly `steps` steps
    model.decoder.max_decoder_steps = steps
    ids = torch.randint(4, model.num_chars, (1, n_tokens), generator=torch.Generator().manual_seed(1))

    def run():
        with torch.inference_mode():
            return model.inference(ids)

    _report(case, run, steps, lambda out: int(out["model_outputs"].shape[1]),
            sum(p.numel() for p in model.parameters()), "fp32")


def train_step(threads: int, batch: int = 16, n_tokens: int = 60, frames: int = 430) -> dict:
    """moksori's Tacotron2 training step (teacher forcing, loss with gate and guided attention,
    backward, clip 1.0, Adam) at batch 16 x (60 tokens, 430 frames), NVIDIA's sizes, r=2: the step of
    ``tacotron2_train_vs_coqui.py``, timed here without the peer."""
    _set_threads(threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tacotron2_train_vs_coqui import moksori_step

    step, _ = moksori_step(batch, n_tokens, frames)
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


def side_by_side(
    peer_python: str | None, cases: list[str], rounds: int, threads: int, precisions: list[str] | None = None
) -> list[dict]:
    rows: dict[tuple[str, str], list[dict]] = {}
    env_threads = ["--threads", str(threads)]
    precisions = precisions or ["fp32"]
    names = [f"moksori_{p}" for p in precisions] + (["coqui"] if peer_python else [])
    for round_index in range(rounds):
        for case in cases:
            runs = [(f"moksori_{p}", [sys.executable, __file__, "--case", case, "--child-precision", p, *env_threads])
                    for p in precisions]
            if peer_python:
                runs.append(("coqui", [peer_python, __file__, "--case", case, "--coqui", *env_threads]))
            shift = round_index % len(runs)
            runs = runs[shift:] + runs[:shift]  # rotate who goes first
            for name, cmd in runs:
                result = _run(cmd)
                if result is not None:
                    rows.setdefault((case, name), []).append(result)
                    print(f"round {round_index + 1} {case} {name}: {result['wall_s']:.3f} s wall, "
                          f"{result['cpu_s']:.3f} s CPU ({result['ms_per_step']:.2f} ms/step, RTF {result['rtf']:.3f}) "
                          f"load {os.getloadavg()[0]:.1f}", flush=True)
    table = []
    for case in cases:
        row: dict = {"case": case}
        for name in names:
            found = rows.get((case, name), [])
            if found:
                row[f"{name}_s"] = [r["wall_s"] for r in found]
                row[f"{name}_cpu_s"] = [r["cpu_s"] for r in found]
                row[f"{name}_ms_per_step"] = statistics.median(r["ms_per_step"] for r in found)
            if name != "coqui" and found and rows.get((case, "coqui")):
                theirs = rows[(case, "coqui")]
                row[f"{name}_over_coqui_wall"] = [round(a["wall_s"] / b["wall_s"], 3) for a, b in zip(found, theirs)]
                row[f"{name}_over_coqui_cpu"] = [round(a["cpu_s"] / b["cpu_s"], 3) for a, b in zip(found, theirs)]
        table.append(row)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--child-precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--coqui", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precisions", default="fp32,int8", help="moksori variants, comma-separated (fp32, int8)")
    parser.add_argument("--peer-python", help="python of a venv with coqui-tts (omit: moksori alone)")
    parser.add_argument("--cases", default="5s_60tok,20s_60tok", help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", action="store_true", help="time moksori's training step instead")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.case:
        if args.coqui:
            coqui_child(args.case, args.threads)
        else:
            child(args.case, args.threads, args.child_precision)
        return 0
    if args.train:
        result = train_step(args.threads)
        print(json.dumps(result))
        return 0
    table = side_by_side(args.peer_python, args.cases.split(","), args.rounds, args.threads, args.precisions.split(","))
    for row in table:
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
