"""benchmarks/e2e_memory.py: a child's peak memory from wait4, and its moksori children on a tiny voice.

``measure`` runs in a small parent process here, as in the script: a forked child's ru_maxrss starts
at its parent's resident size (pytest's is ~270 MB)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "e2e_memory.py"


def _measure_all(commands: list[list[str]]) -> list[dict]:
    """``measure`` of each command, called from a fresh small Python process."""
    code = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("e2e_memory", {str(SCRIPT)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
results = []
for command in json.loads(sys.argv[1]):
    try:
        results.append(module.measure(command))
    except RuntimeError as error:
        results.append({{"error": str(error)}})
print(json.dumps(results))
"""
    run = subprocess.run([sys.executable, "-c", code, json.dumps(commands)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_measure_reports_each_child_s_own_peak_and_its_json():
    small, big, failed = _measure_all([
        [sys.executable, "-c", "print('{\"ok\": 1}')"],
        [sys.executable, "-c", "b = bytearray(120 << 20); print('{\"ok\": 2}')"],
        [sys.executable, "-c", "raise SystemExit(3)"],
    ])
    assert small["ok"] == 1 and big["ok"] == 2
    assert small["peak_mb"] < 60 and big["peak_mb"] - small["peak_mb"] > 100
    assert "failed (3)" in failed["error"]


def test_moksori_children_run_an_exported_voice_with_and_without_torch(tmp_path):
    import importlib.util

    from moksori.bench.serve import build_tiny_voice
    from moksori.synthesis import export_onnx

    spec = importlib.util.spec_from_file_location("e2e_memory", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    voice = build_tiny_voice(tmp_path / "tiny")
    export_onnx(voice)
    child = [sys.executable, "-c", script.MOKSORI_API]
    lite, loaded = _measure_all([child + [variant, str(voice), "안녕하세요. 반갑습니다."] for variant in ("onnx", "onnx+torch")])
    assert (lite["torch"], lite["torch_free"], lite["onnx"]) == (False, True, True)
    assert (loaded["torch"], loaded["torch_free"], loaded["onnx"]) == (True, False, True)
    assert lite["audio_s"] == loaded["audio_s"] > 0.5
    assert loaded["peak_mb"] - lite["peak_mb"] > 100  # torch and the PyTorch weights
