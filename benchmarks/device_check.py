"""One prepared script for a GPU machine: every model family trains on CUDA and WaveGlow runs in fp16.

This project is developed on CPUs; its CUDA paths (autocast, the fp16 gradient scaler, CUDA random
state in checkpoints, WaveGlow's half-precision inference) run only where a GPU is. A session that is
lent one has minutes of it, so the checks are prepared here and run there in one call:

    .venv/bin/python benchmarks/device_check.py prepare          # here: .device_kit/ (data + wheels)
    # there, through the device tool with carry [".device_kit"]; its python3 (3.12) has torch but
    # not moksori's audio packages, which travel as wheels (WHEELS, pinned to the versions here):
    set -o pipefail; python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .device_kit/wheels/*.whl && PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:. \
        python3 benchmarks/device_check.py run --out $OUT 2>&1 | tee $OUT/log

The wheel list was checked by running ``run`` here with imports limited to the device image's
package list and the wheels (all checks passed; ``cffi`` and ``pycparser`` were the ones missing
from a first list). The training checks take about 1.5 minutes on this project's 2-core CPU.

``run`` also works on a CPU (it checks what a CPU can: fp16 falls back to float32, as training does),
which is how it is tested here (``tests/bench/test_device_check.py``). Checks, per trainable family
on its ``tiny`` recipe and the prepared espeak-ng sample set (9 clips):

1. ``resume``: 4 steps straight against 2 steps, then resumed to 4 (amp off, deterministic
   algorithms where CUDA has them): the losses and the final weights must match.
2. ``fp16`` and ``bf16``: 4 steps under that autocast; every logged loss finite (fp16 through the
   gradient scaler, whose state the checkpoint must hold on CUDA).
3. ``vocoder``: a trained tiny vocoder's output for a held-out mel, on the device against the CPU.

and, on CUDA only, WaveGlow ``small`` and ``base`` (random weights: NVIDIA's zero-initialised
``end`` layers make an untrained flow near the identity) vocoding ``--seconds`` of mel in fp32 and
fp16: the real-time factor of each and fp16's error against fp32 (issue 12's half-precision item).

Results: ``OUT/device_check.json`` and a table on stdout; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

KIT = Path(".device_kit")
# What the device machine's image lacks among the packages `moksori.training` imports (its python3
# already has torch, numpy, scipy, yaml, tqdm, tensorboard, matplotlib, numba, scikit-learn, joblib).
WHEELS = ["librosa", "soundfile", "cffi", "pycparser", "soxr", "audioread", "pooch", "decorator", "platformdirs",
          "monotonic-alignment-search"]
DEVICE_PYTHON = "3.12"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "any"]
# family → (tiny recipe, overrides of the recipe's options, whether it is a vocoder)
FAMILIES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "glowtts": ("glowtts", {}, False),
    "tacotron2": ("tacotron2", {}, False),
    "flowtron": ("flowtron", {}, False),
    "hifigan": ("hifigan", {"adversarial": True}, True),
    "vocos": ("hifigan", {"adversarial": False, "stft_loss": True}, True),
    "waveglow": ("waveglow", {}, True),
    "wavenet": ("wavenet", {}, True),
}
STEPS = 4


# --- prepare (here) -------------------------------------------------------------------------------


def prepare(kit: Path, wheels: bool) -> None:
    """The espeak-ng sample set, preprocessed, and the wheels the device machine lacks."""
    from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
    from moksori.data.sample_dataset import make_sample_dataset

    data = kit / "data"
    if not (data / "config.json").is_file():
        shutil.rmtree(kit / "raw", ignore_errors=True)
        raw = make_sample_dataset(kit / "raw", n=9, workers=1, progress=False)
        preprocess_dataset(raw, data, PreprocessConfig(language="ko", val_fraction=0.1, min_val=1),
                           workers=1, progress=False)
        shutil.rmtree(raw)
    if wheels:
        shutil.rmtree(kit / "wheels", ignore_errors=True)
        platforms = [arg for name in PLATFORMS for arg in ("--platform", name)]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", DEVICE_PYTHON, "--implementation", "cp", *platforms,
                        "-d", str(kit / "wheels"), *map(_pinned, WHEELS)], check=True)
    size = sum(path.stat().st_size for path in kit.rglob("*") if path.is_file())
    print(f"{kit}: {size / 2**20:.1f} MiB (carry it with the working tree)")


def _pinned(name: str) -> str:
    """``name==version`` of the version installed here (what the tests ran with), else ``name``."""
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


# --- run (there) ----------------------------------------------------------------------------------


def _recipe(kit: Path, family: str, run_dir: Path, **train: Any) -> Any:
    from moksori.training.recipe import load_recipe

    name, options, _ = FAMILIES[family]
    recipe = load_recipe(Path(__file__).resolve().parents[1] / "moksori" / "recipes" / f"tiny_{name}.yaml")
    recipe.data.dir = str(kit / "data")
    recipe.run_dir = str(run_dir)
    recipe.train.progress = False
    recipe.train.log_interval = 1
    recipe.train.eval_interval = 2  # validation (free-running attention included) runs on the device too
    recipe.train.checkpoint_interval = 2
    for key, value in train.items():
        setattr(recipe.train, key, value)
    recipe.options.update(options)
    if family == "vocos":
        recipe.model = "vocos"
        recipe.model_config = {"preset": "tiny"}
    recipe.check()
    return recipe


def _losses(run_dir: Path) -> list[float]:
    from moksori.training.logging import read_metrics

    return [float(record["loss"]) for record in read_metrics(run_dir, "train") if "loss" in record]


def check_resume(kit: Path, family: str, work: Path) -> dict[str, Any]:
    from moksori.training import load_checkpoint, train

    straight = train(_recipe(kit, family, work / "straight"), max_steps=STEPS)
    resumed = work / "resumed"
    train(_recipe(kit, family, resumed), max_steps=STEPS // 2)
    train(_recipe(kit, family, resumed), max_steps=STEPS, resume=True)
    losses_a, losses_b = _losses(straight), _losses(resumed)
    state_a, state_b = load_checkpoint(straight)["model"], load_checkpoint(resumed)["model"]
    weight_diff = max(float((state_a[key].float() - state_b[key].float()).abs().max()) for key in state_a)
    loss_diff = max((abs(a - b) for a, b in zip(losses_a, losses_b)), default=math.inf)
    ok = len(losses_a) == len(losses_b) == STEPS and loss_diff <= 1e-5 * max(1.0, max(map(abs, losses_a)))
    return {"ok": ok and weight_diff <= 1e-5, "losses": losses_a, "loss_diff": loss_diff, "weight_diff": weight_diff}


def check_amp(kit: Path, family: str, work: Path, amp: str) -> dict[str, Any]:
    import torch

    from moksori.training import load_checkpoint, train

    run_dir = train(_recipe(kit, family, work / amp, amp=amp), max_steps=STEPS)
    losses = _losses(run_dir)
    scaler = load_checkpoint(run_dir)["train_state"]["scaler"]
    fp16_on_cuda = amp == "fp16" and torch.cuda.is_available()
    ok = len(losses) == STEPS and all(math.isfinite(loss) for loss in losses) and (scaler is not None) == fp16_on_cuda
    return {"ok": ok, "losses": losses, "scaler": scaler}


def check_vocoder(kit: Path, family: str, work: Path, device: Any) -> dict[str, Any]:
    """The ``resume`` check's trained vocoder (4 steps) on a held-out mel, on the device against the CPU."""
    import numpy as np
    import torch

    from moksori.audio import MelConfig
    from moksori.data.manifest import read_manifest
    from moksori.models import registry
    from moksori.models.interfaces import Controls
    from moksori.synthesis.bundle import prepare_for_inference
    from moksori.training import load_checkpoint

    checkpoint = load_checkpoint(work / "straight")
    family_ = registry.get(checkpoint["model_name"], registry.VOCODER)
    mel = torch.from_numpy(np.load(kit / "data" / read_manifest(kit / "data", "val")[0]["mel"]))
    waves = {}
    for where in ("cpu", device):
        model = family_.build(checkpoint["model_config"])
        model.load_state_dict(checkpoint["model"])
        vocoder = family_.inference(prepare_for_inference(model), MelConfig()).eval().to(where)
        with torch.no_grad():
            waves[str(where)] = vocoder.infer(mel.to(where), Controls(seed=0)).float().cpu()
    cpu, other = waves["cpu"], waves[str(device)]
    scale = float(cpu.abs().max()) or 1.0
    diff = float((cpu - other).abs().max()) / scale
    return {"ok": cpu.shape == other.shape and diff < 1e-3, "relative_max_diff": diff, "samples": cpu.numel()}


def _timed(fn: Callable[[], Any], device: Any, repeats: int = 3) -> tuple[float, Any]:
    import torch

    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], out


def check_waveglow_half(kit: Path, seconds: float, device: Any,
                        presets: tuple[str, ...] = ("small", "base")) -> dict[str, Any]:
    """fp32 and fp16 WaveGlow inference (on CUDA; a CPU runs it too, slowly): real-time factors and
    fp16's error against fp32."""
    import numpy as np
    import torch

    from moksori.audio import MelConfig
    from moksori.data.manifest import read_manifest
    from moksori.models import registry
    from moksori.models.interfaces import Controls
    from moksori.synthesis.bundle import prepare_for_inference

    config = MelConfig()
    mel = np.load(kit / "data" / read_manifest(kit / "data", "val")[0]["mel"])
    frames = math.ceil(seconds * config.sample_rate / config.hop_length)
    mel = torch.from_numpy(np.tile(mel, (1, math.ceil(frames / mel.shape[1])))[:, :frames].astype(np.float32))
    family = registry.get("waveglow", registry.VOCODER)
    results: dict[str, Any] = {"ok": True, "seconds": seconds}
    for preset in presets:
        torch.manual_seed(0)
        model = prepare_for_inference(family.build(family.config(preset))).to(device)
        vocoder = family.inference(model, config).eval()
        controls = Controls(denoise=0.0, seed=0)
        with torch.no_grad():
            t32, wave32 = _timed(lambda: vocoder.infer(mel.to(device), controls), device)
            model.half()
            t16, wave16 = _timed(lambda: vocoder.infer(mel.to(device), controls), device)
        wave32, wave16 = wave32.float().cpu(), wave16.float().cpu()
        error = float((wave32 - wave16).abs().max()) / (float(wave32.abs().max()) or 1.0)
        finite = bool(torch.isfinite(wave16).all())
        results[preset] = {"rtf_fp32": t32 / seconds, "rtf_fp16": t16 / seconds, "fp16_relative_max_error": error,
                           "finite": finite}
        results["ok"] = results["ok"] and finite and error < 0.05
        del model, vocoder
    return results


def run(kit: Path, out: Path, families: list[str], amps: list[str], seconds: float) -> int:
    import torch

    if torch.cuda.is_available():
        # Deterministic kernels where CUDA has them, so that a resumed run can match exactly.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "python": platform.python_version(), "checks": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    work = out / "runs"
    for family in families:
        jobs: dict[str, Callable[[], dict[str, Any]]] = {"resume": lambda: check_resume(kit, family, work / family)}
        for amp in amps:
            jobs[amp] = lambda amp=amp: check_amp(kit, family, work / family, amp)
        if FAMILIES[family][2]:
            jobs["vocoder"] = lambda: check_vocoder(kit, family, work / family, device)
        for name, job in jobs.items():
            report["checks"][f"{family}.{name}"] = _guarded(job)
    if device.type == "cuda":
        report["checks"]["waveglow.half_inference"] = _guarded(lambda: check_waveglow_half(kit, seconds, device))
    shutil.rmtree(work, ignore_errors=True)  # checkpoints: too large and too many to send back
    (out / "device_check.json").write_text(json.dumps(report, indent=1, default=str), "utf-8")
    print(f"device: {report['device']}, torch {report['torch']}")
    for name, result in report["checks"].items():
        detail = {k: v for k, v in result.items() if k not in ("ok", "losses", "scaler")}
        print(f"{'ok  ' if result['ok'] else 'FAIL'} {name:28s} {result['seconds_taken']:7.1f} s  {json.dumps(detail, default=str)}")
    return 0 if all(result["ok"] for result in report["checks"].values()) else 1


def _guarded(job: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A check's result, or its error as a failed result, so one broken family does not hide the rest."""
    start = time.perf_counter()
    try:
        result = job()
    except Exception as error:  # noqa: BLE001 - reported, and the run exits 1
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    result["seconds_taken"] = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("prepare", help="make the kit here")
    make.add_argument("--kit", type=Path, default=KIT)
    make.add_argument("--no-wheels", action="store_true", help="only the data (for a run on this machine)")
    check = sub.add_parser("run", help="run the checks (on the GPU machine)")
    check.add_argument("--kit", type=Path, default=KIT)
    check.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out/device_check")))
    check.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, of: " + ", ".join(FAMILIES))
    check.add_argument("--amp", default="fp16,bf16", help="autocast modes to check (comma-separated; '' for none)")
    check.add_argument("--seconds", type=float, default=10.0, help="audio for the WaveGlow fp16 timing")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.kit, wheels=not args.no_wheels)
        return 0
    families = [name for name in args.families.split(",") if name]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    if not (args.kit / "data" / "config.json").is_file():
        parser.error(f"{args.kit}/data is missing: run `benchmarks/device_check.py prepare` first")
    return run(args.kit, args.out, families, [amp for amp in args.amp.split(",") if amp], args.seconds)


if __name__ == "__main__":
    sys.exit(main())
