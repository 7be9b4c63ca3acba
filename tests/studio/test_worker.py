"""Studio training on a separate `moksori worker` process through the RQ queue on a real Redis:
the server only queues; the worker trains, shows its stage and progress on the server's page,
resumes after being killed, and its voice is served by every server on the same storage."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from moksori.studio.jobs import read_log_tail
from moksori.studio.queue import required_device


def _run(client: Any, run_id: int) -> dict[str, Any]:
    response = client.get(f"/api/studio/training/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def queued_site(make_site: Any, recipes_dir: Path, redis_server: Any, monkeypatch: pytest.MonkeyPatch,
                tmp_path: Path) -> Iterator[Any]:
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    monkeypatch.setenv("MOKSORI_TRAINING_QUEUE", redis_server.url)
    # tiny_resume cut to 10 steps, a checkpoint every 2: a worker dies after one and another ends it.
    folder = tmp_path / "recipes"
    shutil.copytree(recipes_dir, folder)
    recipe = yaml.safe_load((folder / "tiny_resume.yaml").read_text())
    recipe["train"].update(steps=10, checkpoint_interval=2)
    (folder / "tiny_worker.yaml").write_text(yaml.safe_dump(recipe))
    site = make_site(recipes_dir=folder)
    site.queue_url = redis_server.url
    yield site


class Workers:
    def __init__(self, site: Any) -> None:
        self.site = site
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, MOKSORI_STUDIO_DATA_DIR=str(self.site.studio.data_dir), MOKSORI_STUDIO_TRAIN_THREADS="1")
        command = [sys.executable, "-m", "moksori.cli", "worker", "--queue", self.site.queue_url,
                   "--db-url", self.site.db_url, "--voices", str(self.site.voices_dir), "--device", "cpu"]
        log = open(self.site.root / f"worker{len(self.processes)}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(queued_site: Any) -> Iterator[Workers]:
    started = Workers(queued_site)
    yield started
    started.stop_all()


def test_worker_trains_resumes_after_being_killed_and_both_servers_serve_the_voice(
    queued_site: Any, workers: Workers, tools: Any, spoken: Any
) -> None:
    site = queued_site
    web, other = site.client(), site.client()
    voice = tools.new_voice(web, "worker-voice")
    tools.upload_spoken(web, voice, spoken, 5)
    response = web.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny_worker"})
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    time.sleep(1.0)
    assert _run(web, run_id)["status"] == "queued"  # the server does not train it itself

    first = workers.start()
    running = tools.wait_for(lambda: (r := _run(other, run_id))["step"] >= 3 and r, 120, "the worker's first checkpoint")
    assert running["status"] == "running" and running["stage"] == "train model"  # seen from the other server
    assert 0.1 < running["progress"] < 1.0
    first.kill()  # no goodbye: its training child dies with it, the run stays "running"
    first.wait()
    time.sleep(0.5)
    assert _run(web, run_id)["status"] == "running"

    workers.start()
    done = tools.wait_for(lambda: _run(web, run_id)["status"] not in ("queued", "running") and _run(web, run_id),
                          120, "the resumed run to end")
    assert done["status"] == "succeeded", done["log_tail"]
    log = read_log_tail(done_log(site, voice, run_id), 1000)
    assert "server restarted: resuming the run" in log and "data already prepared" in log
    assert int(re.search(r"resuming model from step (\d+)", log).group(1)) >= 2
    for server in (web, other):  # neither was restarted
        listed = {v["name"] for v in server.get("/voices").json()["voices"]}
        assert "worker-voice" in listed
        speech = server.get("/infer", params={"text": "안녕하세요", "voice": "worker-voice"})
        assert speech.status_code == 200 and speech.headers["content-type"] == "audio/wav"


def done_log(site: Any, voice: int, run_id: int) -> str:
    return str(site.studio.data_dir / "voices" / str(voice) / "runs" / str(run_id) / "job.log")


def test_cancel_on_the_server_stops_the_run_on_the_worker(
    queued_site: Any, workers: Workers, tools: Any, spoken: Any
) -> None:
    web = queued_site.client()
    voice = tools.new_voice(web, "cancel-me")
    tools.upload_spoken(web, voice, spoken, 5)
    run_id = web.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny_long"}).json()["id"]
    workers.start()
    tools.wait_for(lambda: _run(web, run_id)["step"] >= 2, 120, "training steps on the worker")
    assert web.post(f"/api/studio/training/{run_id}/cancel").json()["status"] == "cancelled"
    log_path = done_log(queued_site, voice, run_id)
    tools.wait_for(lambda: "the run stopped" in read_log_tail(log_path, 200), 30, "the worker to stop the run")
    assert _run(web, run_id)["status"] == "cancelled"


def test_mixed_precision_runs_need_a_cuda_worker() -> None:
    stage = {"recipe": {"train": {"amp": "bf16"}}}
    assert required_device({"stages": [stage]}) == "cuda"
    assert required_device({"stages": [{"recipe": {"train": {"amp": "off"}}}]}, default="any") == "any"
    with pytest.raises(ValueError, match="MOKSORI_TRAINING_DEVICE"):
        required_device({}, default="tpu")


def test_worker_without_a_queue_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOKSORI_TRAINING_QUEUE", raising=False)
    result = subprocess.run([sys.executable, "-m", "moksori.cli", "worker"], capture_output=True, text=True)
    assert result.returncode == 2 and "MOKSORI_TRAINING_QUEUE" in result.stderr and "Traceback" not in result.stderr
