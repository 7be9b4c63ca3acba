import errno
import json

import pytest

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


def test_a_full_disk_under_the_logs_names_the_logs_folder(tmp_path, monkeypatch):
    logger = RunLogger(tmp_path)

    def full_disk_flush():  # what TensorBoard re-raises from its writer thread
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(logger._writer, "flush", full_disk_flush)
    with pytest.raises(OSError) as caught:
        logger.flush()
    assert caught.value.filename == str(tmp_path / "logs")
    assert caught.value.errno == errno.ENOSPC and "No space left on device" in caught.value.strerror
    monkeypatch.undo()
    logger.close()
