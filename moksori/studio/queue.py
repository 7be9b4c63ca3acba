"""Training on separate workers: the studio's runs through an RQ queue on Redis.

Single-machine mode (no ``MOKSORI_TRAINING_QUEUE``) keeps the runner thread of
:mod:`moksori.studio.jobs` inside the server. With ``MOKSORI_TRAINING_QUEUE=redis://…`` a server
only records a run (database row, ``job.json`` on the shared storage root) and enqueues its id;
``moksori worker`` processes, on this or other machines, dequeue it and run the very same
pipeline (:class:`~moksori.studio.jobs.TrainingJobs`), so progress, logs, cancel and the voice
bundle work exactly as before: the run's row and folder are the shared truth, and the stage shown
beside the progress is kept in Redis.

Why RQ: the job is one call that runs for minutes to hours in a process we already supervise;
RQ is a small, well-kept Redis-only queue with named queues (one per device), worker heartbeats
and no second broker or result store to run. Celery would add a broker abstraction and
configuration surface we do not use; Dramatiq's time limits and retries assume short tasks.

A run survives a dead worker because it never depends on RQ's memory: every worker, when it
starts and then every ``recover_s``, re-enqueues the runs the database says are queued or running
whose lock file (held by whoever runs it, released by the kernel when that process dies) is free.
Training resumes from its ``latest.pt``. Enqueuing uses the run's id as the job id, so a run is
never queued twice; the lock makes sure only one worker ever runs it.

Queues: ``moksori-train-any`` (every worker), ``moksori-train-cpu`` and ``moksori-train-cuda``
(workers of that device). A run goes where its request said (``device`` in the studio's training
request); without one, it needs CUDA when one of its stages trains with fp16 mixed precision
(``train.amp: fp16``: fp16 AMP runs only on a GPU; bf16 runs on CPUs too), or when ``MOKSORI_TRAINING_DEVICE``
says so for every run; otherwise any worker may take it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from moksori.store import TrainingRun

log = logging.getLogger(__name__)

QUEUE_PREFIX = "moksori-train-"
DEVICES = ("cpu", "cuda")
REQUIREMENTS = ("any", *DEVICES)
JOB_TIMEOUT_S = 7 * 24 * 3600  # RQ's own timeout; cancel and worker death are handled by the run itself
STAGE_TTL_S = 24 * 3600


def queue_url(environ: MutableMapping[str, str] | None = None) -> str | None:
    """The training queue's Redis URL (``MOKSORI_TRAINING_QUEUE``), or None: single-machine mode."""
    environ = os.environ if environ is None else environ
    return environ.get("MOKSORI_TRAINING_QUEUE") or None


def required_device(job: dict[str, Any], default: str | None = None) -> str:
    """The device the run asked for (``device`` in its job.json), else ``cuda`` when a stage asks
    for fp16 mixed precision, else ``default`` (``MOKSORI_TRAINING_DEVICE``, ``any`` when unset)."""
    if job.get("device") in REQUIREMENTS:
        return str(job["device"])
    default = (default if default is not None else os.environ.get("MOKSORI_TRAINING_DEVICE", "any")).strip().lower()
    if default not in REQUIREMENTS:
        raise ValueError(f"MOKSORI_TRAINING_DEVICE={default!r}: use one of {', '.join(REQUIREMENTS)}")
    if any(str(stage.get("recipe", {}).get("train", {}).get("amp", "off")) == "fp16" for stage in job.get("stages", [])):
        return "cuda"
    return default


def local_device() -> str:
    """The device this machine trains on: ``cuda`` when PyTorch sees a GPU, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class RedisStages(MutableMapping[int, str]):
    """Run id → the stage being worked on, in Redis, so every instance shows what a worker does.
    Only a display: when Redis cannot be reached a stage reads as unknown (the page then shows
    the run's status) and a new one is not recorded; the run itself goes on."""

    def __init__(self, client: Any, prefix: str = "moksori:run-stage:") -> None:
        self._client = client
        self._prefix = prefix

    def __getitem__(self, run_id: int) -> str:
        import redis

        try:
            value = self._client.get(f"{self._prefix}{run_id}")
        except redis.RedisError as error:
            log.warning("run stage: %s", error)
            value = None
        if value is None:
            raise KeyError(run_id)
        return value.decode()

    def __setitem__(self, run_id: int, stage: str) -> None:
        import redis

        try:
            self._client.set(f"{self._prefix}{run_id}", stage, ex=STAGE_TTL_S)
        except redis.RedisError as error:
            log.warning("run stage: %s", error)

    def __delitem__(self, run_id: int) -> None:
        import redis

        try:
            deleted = self._client.delete(f"{self._prefix}{run_id}")
        except redis.RedisError as error:
            log.warning("run stage: %s", error)
            return
        if not deleted:
            raise KeyError(run_id)

    def __iter__(self) -> Iterator[int]:
        for key in self._client.scan_iter(match=f"{self._prefix}*"):
            yield int(key.decode().rsplit(":", 1)[1])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class TrainingQueue:
    """Enqueues studio runs for ``moksori worker`` processes (RQ on the Redis at ``url``)."""

    def __init__(self, url: str) -> None:
        from moksori.server.shared import connect

        self.url = url
        self.client = connect(url)
        self.stages = RedisStages(self.client)

    def queue(self, requirement: str) -> Any:
        from rq import Queue

        if requirement not in REQUIREMENTS:
            raise ValueError(f"unknown device requirement {requirement!r}; use one of {', '.join(REQUIREMENTS)}")
        return Queue(QUEUE_PREFIX + requirement, connection=self.client)

    def submit(self, run_id: int, run_dir: str | Path | None = None) -> None:
        """Enqueue run ``run_id`` unless it is already waiting in a queue (its job id is the run's)."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        job_id = f"moksori-run-{run_id}"
        try:
            existing = Job.fetch(job_id, connection=self.client)
        except NoSuchJobError:
            existing = None
        if existing is not None:
            if existing.get_status(refresh=True) in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
                return
            existing.delete()  # finished, failed or abandoned by a dead worker: queue it afresh
        requirement = required_device(_read_job(run_dir))
        self.queue(requirement).enqueue_call(
            "moksori.studio.queue.run_training", args=(run_id,), job_id=job_id, timeout=JOB_TIMEOUT_S,
            result_ttl=3600, failure_ttl=7 * 24 * 3600, description=f"studio training run {run_id} (needs {requirement})",
        )

    def workers(self) -> list[dict[str, Any]]:
        """The live workers: name, the queues they take (so their device) and their state."""
        from rq import Worker

        return [{"name": w.name, "queues": w.queue_names(), "state": w.get_state()}
                for w in Worker.all(connection=self.client)]


def _read_job(run_dir: str | Path | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    try:
        return json.loads((Path(run_dir) / "job.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def recover(jobs: Any, training_queue: TrainingQueue) -> list[int]:
    """Enqueue every run the database says is queued or running and nobody runs (its lock file is
    free: the process that held it died, or it was never dequeued); returns their ids."""
    from moksori.studio.jobs import LOCK_FILE, _exclusive
    from moksori.studio.service import ACTIVE_RUN_STATUSES

    with jobs.db.session() as session:
        runs = list(session.execute(
            select(TrainingRun.id, TrainingRun.run_dir).where(TrainingRun.status.in_(ACTIVE_RUN_STATUSES))
            .order_by(TrainingRun.id)
        ))
    submitted = []
    for run_id, run_dir in runs:
        if run_dir is not None:
            with _exclusive(Path(run_dir) / LOCK_FILE) as free:
                if not free:
                    continue  # someone is running it right now
        training_queue.submit(run_id, run_dir)
        submitted.append(run_id)
    return submitted


# --- the worker --------------------------------------------------------------------------------

_WORKER_JOBS: Any = None  # the TrainingJobs of this worker process (set by run_worker)


def run_training(run_id: int) -> str:
    """The RQ job: run one studio training run in this worker (see TrainingJobs._process)."""
    if _WORKER_JOBS is None:
        raise RuntimeError("run_training runs only inside `moksori worker`")
    _WORKER_JOBS.process(run_id)
    with _WORKER_JOBS.db.session() as session:
        status = session.scalar(select(TrainingRun.status).where(TrainingRun.id == run_id))
    return str(status)


def worker_name(device: str) -> str:
    return f"moksori-{device}-{socket.gethostname()}-{os.getpid()}"


def run_worker(
    url: str, db_url: str, voices_dir: Path, *, device: str = "auto", burst: bool = False, recover_s: float = 30.0,
) -> None:
    """``moksori worker``: take studio training runs from the queue until stopped (SIGTERM/SIGINT:
    the run in progress stops at its next check and resumes from its checkpoint later)."""
    global _WORKER_JOBS
    from rq import SimpleWorker

    from moksori.store import Database
    from moksori.studio import StudioSettings
    from moksori.studio.jobs import TrainingJobs
    from moksori.studio.service import StudioService

    device = local_device() if device == "auto" else device
    if device not in DEVICES:
        raise ValueError(f"--device {device!r}: use auto, cpu or cuda")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # training children stay on the CPU this worker advertises
    training_queue = TrainingQueue(url)
    database = Database(db_url)
    service = StudioService(database, StudioSettings.from_env(), voices_dir)
    jobs = TrainingJobs(service, stages=training_queue.stages)
    _WORKER_JOBS = jobs
    stop = threading.Event()

    class Worker(SimpleWorker):
        def request_stop(self, signum: Any, frame: Any) -> None:
            jobs.stop_running()  # the current run stops at its next check (within a second)
            stop.set()
            super().request_stop(signum, frame)

    def keep_recovering() -> None:
        while not stop.wait(recover_s):
            try:
                recover(jobs, training_queue)
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                log.exception("worker: recovering unfinished runs failed")

    resumed = recover(jobs, training_queue)
    if resumed:
        log.info("worker: queued unfinished runs %s", resumed)
    queues = [training_queue.queue(device), training_queue.queue("any")]
    worker = Worker(queues, connection=training_queue.client, name=worker_name(device))
    log.info("moksori worker %s: device %s, queues %s", worker.name, device, [q.name for q in queues])
    if not burst:
        threading.Thread(target=keep_recovering, name="moksori-worker-recover", daemon=True).start()
    try:
        worker.work(burst=burst, logging_level="INFO")
    finally:
        stop.set()
        database.dispose()
