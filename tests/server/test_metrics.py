"""/metrics exposes request counts, latencies, audio seconds, queue depth, errors, cache use."""

from __future__ import annotations

import re


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (labels in any order)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in metrics")


def test_metrics_count_requests_errors_audio_and_cache(make_client) -> None:
    client = make_client()
    for _ in range(2):
        client.get("/infer", params={"text": "측정합니다."})
    client.get("/infer", params={"text": ""})
    client.get("/infer", params={"text": "안녕", "voice": "nobody"})
    seconds = float(client.get("/infer", params={"text": "측정합니다."}).headers["x-audio-seconds"])

    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, "moksori_requests_total", route="/infer", method="GET", status="200") == 3
    assert sample(text, "moksori_requests_total", route="/infer", status="400") == 1
    assert sample(text, "moksori_requests_total", route="/infer", status="404") == 1
    assert sample(text, "moksori_request_duration_seconds_count", route="/infer") == 5
    assert sample(text, "moksori_errors_total", code="empty_text") == 1
    assert sample(text, "moksori_errors_total", code="voice_not_found") == 1
    assert abs(sample(text, "moksori_audio_seconds_total", voice="tiny") - 3 * seconds) < 0.01
    assert sample(text, "moksori_cache_total", result="hit") == 2
    assert sample(text, "moksori_cache_total", result="miss") == 1
    assert sample(text, "moksori_synthesis_duration_seconds_count", voice="tiny") == 1
    assert sample(text, "moksori_queue_depth") == 0
    assert sample(text, "moksori_synthesis_in_progress") == 0


def test_unmatched_paths_share_one_label(make_client) -> None:
    client = make_client()
    client.get("/no/such/1")
    client.get("/no/such/2")
    assert sample(client.get("/metrics").text, "moksori_requests_total", route="unmatched", status="404") == 2
