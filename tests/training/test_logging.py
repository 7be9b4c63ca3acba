import json

from moksori.training.logging import METRICS_FILE, RunLogger


def test_resume_drops_a_metrics_line_torn_by_a_killed_run(tmp_path):
    # kill -9 or a full disk mid-write leaves half a line; resume failed with
    # "Unterminated string starting at: line 1 column 23".
    records = [{"step": step, "split": "train", "loss": 1.0 / step} for step in (5, 10, 15)]
    text = "".join(json.dumps(record) + "\n" for record in records) + '{"step": 20, "split": "tr'
    (tmp_path / METRICS_FILE).write_text(text, encoding="utf-8")
    logger = RunLogger(tmp_path, resume_step=10)
    logger.close()
    kept = [json.loads(line) for line in (tmp_path / METRICS_FILE).read_text(encoding="utf-8").splitlines()]
    assert kept == records[:2]
