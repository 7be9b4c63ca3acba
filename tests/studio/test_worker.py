"""Studio training on a separate `moksori worker` process through the RQ queue on a real Redis:
the server only queues; the worker trains, shows its stage and progress on the server's page and
stops when the run is cancelled on the server. A worker killed mid-run, the resume by the next
one and the voice served by two instances are checked in tests/server/test_cluster.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from moksori.studio.jobs import read_log_tail
from moksori.studio.queue import required_device


def _run(client: Any, run_id: int) -> dict[str, Any]:
    response = client.get(f"/api/studio/training/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def queued_site(make_site: Any, redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    monkeypatch.setenv("MOKSORI_TRAINING_QUEUE", redis_server.url)
    site = make_site()
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


def done_log(site: Any, voice: int, run_id: int) -> str:
    return str(site.studio.data_dir / "voices" / str(voice) / "runs" / str(run_id) / "job.log")


def test_cancel_on_the_server_stops_the_run_on_the_worker(
    queued_site: Any, workers: Workers, tools: Any, spoken: Any
) -> None:
    web = queued_site.client()
    voice = tools.new_voice(web, "cancel-me")
    tools.upload_spoken(web, voice, spoken, 5)
    run_id = web.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny_long"}).json()["id"]
    time.sleep(1.0)
    assert _run(web, run_id)["status"] == "queued"  # the server does not train it itself
    workers.start()
    running = tools.wait_for(lambda: (r := _run(web, run_id))["step"] >= 2 and r, 120, "training steps on the worker")
    assert running["status"] == "running" and running["stage"] == "train model"  # the worker's stage, through Redis
    assert web.post(f"/api/studio/training/{run_id}/cancel").json()["status"] == "cancelled"
    log_path = done_log(queued_site, voice, run_id)
    tools.wait_for(lambda: "the run stopped" in read_log_tail(log_path, 200), 30, "the worker to stop the run")
    assert _run(web, run_id)["status"] == "cancelled"


def test_fp16_runs_need_a_cuda_worker_and_bf16_runs_do_not() -> None:
    stage = {"recipe": {"train": {"amp": "fp16"}}}
    assert required_device({"stages": [stage]}) == "cuda"
    assert required_device({"stages": [{"recipe": {"train": {"amp": "bf16"}}}]}, default="any") == "any"
    assert required_device({"stages": [{"recipe": {"train": {"amp": "off"}}}]}, default="any") == "any"
    with pytest.raises(ValueError, match="MOKSORI_TRAINING_DEVICE"):
        required_device({}, default="tpu")


def test_worker_without_a_queue_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from moksori.cli import main

    monkeypatch.delenv("MOKSORI_TRAINING_QUEUE", raising=False)
    assert main(["worker"]) == 2
    assert "MOKSORI_TRAINING_QUEUE" in capsys.readouterr().err


def test_runs_nobody_runs_are_queued_again_and_held_ones_are_not(queued_site: Any, tools: Any, spoken: Any) -> None:
    from rq.job import Job

    from moksori.studio.jobs import LOCK_FILE, _exclusive
    from moksori.studio.queue import recover

    web = queued_site.client()
    voice = tools.new_voice(web, "lost-queue")
    tools.upload_spoken(web, voice, spoken, 5)
    run = web.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny"}).json()
    jobs = web.app.state.studio.jobs
    queue = jobs.training_queue
    job_id = f"moksori-run-{run['id']}"
    assert queue.queue("any").get_job_ids() == [job_id]
    queue.submit(run["id"], run["run_dir"] if "run_dir" in run else None)
    assert queue.queue("any").get_job_ids() == [job_id]  # never queued twice
    Job.fetch(job_id, connection=queue.client).delete()  # Redis lost it (flushed, restarted without a save)
    assert queue.queue("any").get_job_ids() == []
    folder = jobs.run_folder(voice, run["id"])
    with _exclusive(folder / LOCK_FILE) as locked:  # a live worker is running it
        assert locked and recover(jobs, queue) == []
    assert recover(jobs, queue) == [run["id"]]
    assert queue.queue("any").get_job_ids() == [job_id]


def test_a_run_can_require_a_cuda_worker(queued_site: Any, tools: Any, spoken: Any) -> None:
    web = queued_site.client()
    voice = tools.new_voice(web, "needs-gpu")
    tools.upload_spoken(web, voice, spoken, 5)
    bad = web.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny", "device": "tpu"})
    assert bad.status_code == 422
    run = web.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny", "device": "cuda"})
    assert run.status_code == 202, run.text
    queue = web.app.state.studio.jobs.training_queue
    assert queue.queue("cuda").get_job_ids() == [f"moksori-run-{run.json()['id']}"]
    assert queue.queue("any").get_job_ids() == [] and queue.queue("cpu").get_job_ids() == []


def test_a_single_server_without_a_gpu_refuses_cuda_runs(make_site: Any, tools: Any, spoken: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.delenv("MOKSORI_TRAINING_QUEUE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    web = make_site().client()
    voice = tools.new_voice(web, "no-gpu")
    tools.upload_spoken(web, voice, spoken, 5)
    refused = web.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny", "device": "cuda"})
    assert refused.status_code == 400 and "no CUDA GPU" in refused.json()["error"]["message"]


def test_stages_without_redis_read_as_unknown_and_never_fail_the_run() -> None:
    import redis

    from moksori.services import free_port
    from moksori.studio.queue import RedisStages

    stages = RedisStages(redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5))
    stages[3] = "train model"
    assert stages.get(3) is None and stages.pop(3, None) is None
