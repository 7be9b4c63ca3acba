"""benchmarks/attack.py (the load and slow-client attack suite) runs end to end on a few fast
cases: it starts its own server, prints its table, and finds no 5xx and no hang."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "attack.py"


def test_attack_suite_runs_and_finds_nothing(tmp_path):
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--cases", "signout,huge_ids,lone_surrogate,files", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| case | tried |" in result.stdout and "0 × 5xx, 0 hangs" in result.stdout
    rows = {row["case"]: row for row in json.loads(out.read_text())}
    assert rows["huge_ids"]["tried"] == 48 and rows["huge_ids"]["clean_4xx"] == 48
    assert rows["signout"]["outcome"].startswith("old cookie refused")
    assert "mode 600" in rows["files"]["outcome"]
