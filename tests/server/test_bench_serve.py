"""The load test runs end to end against a real server subprocess (short levels)."""

from __future__ import annotations

from moksori.bench.serve import format_table, run_load_test


def test_load_test_reports_throughput_latency_and_memory(voices_dir) -> None:
    rows = run_load_test(voices_dir, concurrencies=(1, 3), duration_s=1.5, max_concurrency=1, max_queue=1)
    assert [row["concurrency"] for row in rows] == [1, 3]
    for row in rows:
        assert row["requests"] > 0 and row["req_per_s"] > 0
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert row["peak_server_rss_mb"] > 50
        assert row["audio_s_per_s"] > 0
    # 3 clients against 1 worker + 1 queue slot: the third request of a round is turned away.
    assert rows[0]["errors"] == 0 and "503" in str(rows[1]["error_kinds"])
    assert "| concurrency |" in format_table(rows)
