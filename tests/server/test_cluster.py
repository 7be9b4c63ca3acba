"""The multi-instance proof (moksori/bench/cluster.py) as a test: PostgreSQL, Redis, two
`moksori serve` instances behind nginx and `moksori worker`, real processes on loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from moksori.bench.cluster import format_table, run_proof
from moksori.services import ServiceUnavailable, postgres_bin_dir, services_required


def _missing_services() -> list[str]:
    missing = [name for name in ("redis-server", "nginx") if not (shutil.which(name) or Path(f"/usr/sbin/{name}").is_file())]
    try:
        postgres_bin_dir()
    except ServiceUnavailable:
        missing.append("postgresql")
    return missing


def test_two_instances_behind_nginx_share_limits_keep_uploads_and_train_on_a_worker(tmp_path: Path) -> None:
    missing = _missing_services()
    if missing:
        if services_required():
            pytest.fail(f"services required (MOKSORI_REQUIRE_SERVICES=1) but not installed: {', '.join(missing)}")
        pytest.skip(f"not installed: {', '.join(missing)}")
    checks = run_proof(tmp_path / "storage", progress=print)
    table = format_table(checks)
    print(table)
    assert len(checks) == 6
    assert all(check.held for check in checks), table
