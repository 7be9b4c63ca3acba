"""Training jobs of the studio: export → preprocess → train → voice bundle, in the background.

One runner thread per server process takes queued runs one at a time. A run's folder
(``<data_dir>/voices/{voice}/runs/{run}/``) holds ``job.json`` (the recipe stages, resolved
when the run was started, so editing the YAML later does not change a run), ``job.log``, the
exported ``dataset/``, the ``processed/`` features and ``train/<stage>/`` run folders.

Why training runs in a child process (``python -m moksori.studio.jobs train RECIPE``): a cancel
must stop it at once, even in the middle of a long step, which a flag checked between steps
cannot do; a crash or out-of-memory kill of training does not take the server down; and its
threads do not compete with the server's for the GIL. Checkpoints are written atomically, so
killing the child never leaves a broken one. Export, preprocessing and bundling run in the
runner thread, and a cancel is honoured between them.

The runner resumes runs left ``queued`` or ``running`` when the server starts: the data steps
are skipped when ``processed/train.jsonl`` exists, and each training stage continues from its
``latest.pt`` (``--resume``). A lock file held while a run is processed keeps two server
workers from running the same job; a cancel is written to the database, so whichever process
runs the job sees it.

When a run succeeds its bundle is ``<voices_dir>/studio-{voice}`` and the voice's database row
gets ``bundle_path``, so ``GET /voices`` lists it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select

import moksori
from moksori.store import Recording, TrainingRun, Voice
from moksori.studio.service import (
    ACTIVE_RUN_STATUSES,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StudioService,
    bundle_name,
    voice_folder,
)
from moksori.studio.plans import TrainingPlan

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
LOG_FILE = "job.log"
LOCK_FILE = "job.lock"
# Share of the progress bar: the data steps, then training, then the bundle.
DATA_SHARE = 0.10
BUNDLE_SHARE = 0.05


class JobCancelled(Exception):
    """The run was cancelled (by a user, or its voice was deleted)."""


class JobStopping(Exception):
    """The server is shutting down: the run stays ``running`` and resumes on the next start."""


class JobError(RuntimeError):
    """A step of the job failed; the message is shown to the user."""


@dataclass
class RunInfo:
    """A training run as the page shows it: the row, the current stage and the log's tail."""

    run: TrainingRun
    stage: str
    log_tail: str


class TrainingJobs:
    """The background runner of one server process."""

    def __init__(
        self, service: StudioService, *, poll_s: float = 0.5, python: str = sys.executable,
        training_queue: Any = None, stages: MutableMapping[int, str] | None = None,
    ) -> None:
        """``training_queue`` (a :class:`moksori.studio.queue.TrainingQueue`): runs go to ``moksori
        worker`` processes instead of this process's runner; ``stages``: where the current stage of
        each run is kept (a dict here; Redis when workers run the jobs)."""
        self.service = service
        self.training_queue = training_queue
        self.settings = service.settings
        self.db = service.db
        self.poll_s = poll_s
        self.python = python
        self._queue: queue.Queue[int] = queue.Queue()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._cancelled: set[int] = set()
        self._stages: MutableMapping[int, str] = {} if stages is None else stages
        self._lock = threading.Lock()
        self._current: int | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> list[int]:
        """Start the runner thread and queue the runs a previous server left unfinished;
        returns their ids. With a training queue, the unfinished runs nobody runs go to the queue."""
        if self.training_queue is not None:
            from moksori.studio.queue import recover

            return recover(self, self.training_queue)
        self._thread = threading.Thread(target=self._work, name="moksori-studio-jobs", daemon=True)
        self._thread.start()
        with self.db.session() as session:
            pending = list(
                session.scalars(
                    select(TrainingRun.id).where(TrainingRun.status.in_(ACTIVE_RUN_STATUSES)).order_by(TrainingRun.id)
                )
            )
        for run_id in pending:
            self._queue.put(run_id)
        return pending

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop the runner: a training child is terminated and its run stays ``running``, to be
        resumed by the next server."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # --- requests -----------------------------------------------------------------------------

    def recipes(self) -> list[str]:
        """Names of the recipes a run may use: those shipped with moksori and the ``*.yaml`` files
        of ``recipes_dir`` that train a voice (an acoustic model, optionally then a vocoder)."""
        usable = []
        for name in self._recipe_files():
            try:
                self._resolve_recipe(name)
            except InvalidInputError:
                continue
            usable.append(name)
        return usable

    def finetune_recipe(self) -> str | None:
        """The name of the fine-tune settings' recipe (``finetune_ko``: shipped, or the operator's
        own in ``recipes_dir``), or None when there is none."""
        from moksori.studio.plans import FINETUNE_RECIPE

        return FINETUNE_RECIPE if FINETUNE_RECIPE in self._recipe_files() else None

    def _recipe_files(self) -> dict[str, Path]:
        """Name → file of the recipes shipped with moksori and those of ``recipes_dir``."""
        from moksori.recipes import available_recipes

        return available_recipes([self.settings.recipes_dir])

    def plan(self, voice_id: int, recipe: str | None, user_id: int | None,
             base: tuple[str, Path] | None = None) -> TrainingPlan:
        """What a run would do (:mod:`moksori.studio.plans`): with ``base`` (name, bundle folder)
        and no ``recipe``, fine-tune the base voice with the small-data settings; else train
        ``recipe`` (default: the settings' default recipe), warm-started from ``base`` if given."""
        from moksori.studio.plans import FINETUNE_RECIPE, PlanError, make_plan, pick_finetune_recipe

        with self.db.session() as session:
            voice = self.service.check_voice(session, voice_id, user_id)
            seconds = session.scalar(select(func.coalesce(func.sum(Recording.duration_s), 0.0)).where(
                Recording.voice_id == voice.id, Recording.kept.is_(True)))
        finetune = None
        if base is not None and not recipe:
            stages, (name, finetune) = None, pick_finetune_recipe(self._recipe_files(), base[1]) or (FINETUNE_RECIPE, None)
        else:
            name = recipe or self.settings.default_recipe
            stages = self._resolve_recipe(name)
        try:
            return make_plan(stages, name, base, language=voice.language, minutes=float(seconds or 0.0) / 60.0,
                             finetune_recipe=finetune)
        except PlanError as error:
            raise InvalidInputError(str(error), code="cannot_finetune") from error

    def start_run(
        self, voice_id: int, recipe: str | None, user_id: int | None, *, init_from: str | Path | None = None,
        base: tuple[str, Path] | None = None, device: str | None = None,
    ) -> TrainingRun:
        """Queue a run for a voice: of ``recipe`` (a name from :meth:`recipes`), or with ``base``
        (name, bundle folder) and no recipe, a fine-tune of that voice (see :meth:`plan`; a
        combination that would drop most of the base voice's weights is refused with
        InvalidInputError). ``init_from``: a bundle to warm-start a recipe from without those
        checks. ConflictError when the voice has too few kept takes or a run in progress;
        InvalidInputError for an unknown or broken recipe. ``device`` (any, cpu, cuda): which
        training workers may take the run (see moksori.studio.queue)."""
        self._check_device(device)
        plan = None
        if base is not None:
            with self.db.session() as session:
                self._check_can_start(session, self.service.check_voice(session, voice_id, user_id))
            plan = self.plan(voice_id, recipe, user_id, base)
            if plan.problem:
                raise InvalidInputError(plan.problem, code="incompatible_base")
            recipe, stages, init_from = plan.recipe, plan.stages, base[1]
        else:
            recipe = recipe or self.settings.default_recipe
            stages = self._resolve_recipe(recipe)
        with self.db.session() as session:
            voice = self.service.check_voice(session, voice_id, user_id)
            self._check_can_start(session, voice)
            run = TrainingRun(voice_id=voice.id, recipe=recipe, status="queued")
            session.add(run)
            session.flush()
            folder = self.run_folder(voice.id, run.id)
            run.run_dir = str(folder)
            run.log_path = str(folder / LOG_FILE)
            # Written before the row commits: a folder that cannot be written leaves no run behind.
            folder.mkdir(parents=True, exist_ok=True)
            job = {"recipe": recipe, "stages": stages, "init_from": str(init_from) if init_from else None,
                   "preprocess": plan.preprocess if plan else None, "reuse_vocoder": plan.reuse_vocoder if plan else None,
                   "device": device}
            (folder / JOB_FILE).write_text(json.dumps(job, indent=2, ensure_ascii=False), encoding="utf-8")
        self._log(run, f"queued: recipe {recipe!r}" + (f", fine-tuning from {init_from}" if init_from else ""))
        if plan is not None:
            self._log(run, f"plan: {plan.summary()}")
            self._log(run, f"weights: {plan.weights_line()}")
        if self.training_queue is not None:
            self.training_queue.submit(run.id, run.run_dir)
        else:
            self._queue.put(run.id)
        return run

    def _check_device(self, device: str | None) -> None:
        if device is None or device in ("any", "cpu"):
            return
        if device != "cuda":
            raise InvalidInputError(f"unknown device {device!r}; use any, cpu or cuda")
        if self.training_queue is None:
            import torch

            if not torch.cuda.is_available():
                raise InvalidInputError("this server trains runs itself and has no CUDA GPU; leave device out or "
                                        "use training workers (docs/deploy.md)", code="no_such_device")

    def cancel(self, run_id: int, user_id: int | None) -> TrainingRun:
        """Cancel a queued or running run; ConflictError when it has already ended."""
        with self.db.session() as session:
            run = self._run(session, run_id, user_id)
            if run.status not in ACTIVE_RUN_STATUSES:
                raise ConflictError(f"training run {run_id} has already ended ({run.status})")
            run.status = "cancelled"
        self._signal_cancel([run_id])
        self._log(run, "cancelled by the user")
        return run

    def cancel_voice(self, voice_id: int, timeout_s: float = 30.0) -> None:
        """Cancel every active run of a voice and wait until this process's runner has let go
        of it (used before the voice is deleted)."""
        with self.db.session() as session:
            runs = list(
                session.scalars(
                    select(TrainingRun).where(
                        TrainingRun.voice_id == voice_id, TrainingRun.status.in_(ACTIVE_RUN_STATUSES)
                    )
                )
            )
            for run in runs:
                run.status = "cancelled"
        self._signal_cancel([run.id for run in runs])
        deadline = time.monotonic() + timeout_s
        while self._current in {run.id for run in runs} and time.monotonic() < deadline:
            time.sleep(0.05)

    def runs(self, voice_id: int, user_id: int | None) -> list[TrainingRun]:
        with self.db.session() as session:
            self.service.check_voice(session, voice_id, user_id)
            query = select(TrainingRun).where(TrainingRun.voice_id == voice_id).order_by(TrainingRun.id.desc())
            return list(session.scalars(query))

    def info(self, run_id: int, user_id: int | None, tail_lines: int = 40) -> RunInfo:
        with self.db.session() as session:
            run = self._run(session, run_id, user_id)
        stage = self._stages.get(run.id) or run.status
        return RunInfo(run, stage, self._without_server_paths(read_log_tail(run.log_path, tail_lines)))

    def _without_server_paths(self, log: str) -> str:
        """The log as its owner may see it: the server's folders (the studio's data folder, the
        voices folder, where moksori is installed) are not theirs to know, so they are written as
        <data>, <voices> and <moksori>."""
        folders = {
            "<data>": self.service.files.root,
            "<voices>": self.service.voices_dir,
            "<moksori>": Path(moksori.__file__).parent,
        }
        for name, folder in folders.items():
            for form in {str(folder), str(Path(folder).resolve())}:
                log = log.replace(form, name)
        return log

    @property
    def current_run(self) -> int | None:
        """The id of the run this process's runner is working on, if any."""
        return self._current

    def run_folder(self, voice_id: int, run_id: int) -> Path:
        return self.service.files.path(f"{voice_folder(voice_id)}/runs/{run_id}")

    def _run(self, session: Any, run_id: int, user_id: int | None) -> TrainingRun:
        run = session.get(TrainingRun, run_id)
        missing = NotFoundError(f"no training run with id {run_id}")
        if run is None:
            raise missing
        try:  # someone else's run is answered as a missing one: no word of its voice
            self.service.check_voice(session, run.voice_id, user_id)
        except NotFoundError:
            raise missing from None
        return run

    def _signal_cancel(self, run_ids: list[int]) -> None:
        with self._lock:
            self._cancelled.update(run_ids)
        self._wake.set()

    def _check_can_start(self, session: Any, voice: Voice) -> None:
        active = session.scalar(
            select(TrainingRun.id).where(TrainingRun.voice_id == voice.id, TrainingRun.status.in_(ACTIVE_RUN_STATUSES))
        )
        if active is not None:
            raise ConflictError(f"voice {voice.name!r} is already training (run {active}); wait or cancel it")
        kept = session.scalar(
            select(Recording.id).where(Recording.voice_id == voice.id, Recording.kept.is_(True))
            .offset(self.settings.min_training_takes - 1).limit(1)
        )
        if kept is None:
            raise ConflictError(
                f"voice {voice.name!r} needs at least {self.settings.min_training_takes} kept recordings to train"
            )

    def _resolve_recipe(self, name: str) -> list[dict[str, Any]]:
        """The stages of a recipe as dicts: [{"name", "kind": acoustic|vocoder, "recipe"}]."""
        from moksori.training.pipeline import voice_stages
        from moksori.training.recipe import RecipeError

        files = self._recipe_files()
        if name not in files:
            raise InvalidInputError(f"unknown recipe {name!r}; available: {', '.join(files) or 'none'}")
        path = files[name]
        try:
            stages = voice_stages(path, where=f"recipe {name!r}")
        except (RecipeError, OSError, ValueError) as error:
            raise InvalidInputError(f"recipe {name!r} cannot be used: {error}") from error
        return [{"name": stage.name, "kind": stage.role, "recipe": stage.recipe.to_dict()} for stage in stages]

    # --- the runner ---------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                run_id = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._process(run_id)
            except Exception as error:  # the runner must outlive any one job, and the run must not stay "running"
                log.exception("studio training run %s failed unexpectedly", run_id)
                try:
                    self._finish(run_id, "failed", error=_describe(error))
                except Exception:  # noqa: BLE001 - the database itself is failing; logged, the next start resumes
                    log.exception("could not mark training run %s as failed", run_id)

    def stop_running(self) -> None:
        """Make the run in progress stop at its next check (it stays ``running``, to be resumed)."""
        self._stopping.set()
        self._wake.set()

    def process(self, run_id: int) -> None:
        """Run one queued or running run to its end here (a ``moksori worker`` calls this)."""
        self._process(run_id)

    def _process(self, run_id: int) -> None:
        with self.db.session() as session:
            run = session.get(TrainingRun, run_id)
        if run is None or run.status not in ACTIVE_RUN_STATUSES:
            return
        if run.run_dir is None:  # the server died between creating the row and its folder
            self._finish(run_id, "failed", error="the run's folder was never created; start a new run")
            return
        folder = Path(run.run_dir)
        with _exclusive(folder / LOCK_FILE) as locked:
            if not locked:
                log.info("training run %s is being run by another server process", run_id)
                return
            self._current = run_id
            try:
                self._run_job(run)
            finally:
                self._current = None
                self._stages.pop(run_id, None)
                with self._lock:
                    self._cancelled.discard(run_id)

    def _run_job(self, run: TrainingRun) -> None:
        resumed = run.status == "running"
        self._update(run.id, status="running")
        self._log(run, "server restarted: resuming the run" if resumed else "started")
        try:
            job = json.loads((Path(run.run_dir) / JOB_FILE).read_text(encoding="utf-8"))
            self._pipeline(run, job)
        except JobCancelled:
            self._log(run, "cancelled; the run stopped")
            self._finish(run.id, "cancelled")
        except JobStopping:
            self._log(run, "server stopping: the run will resume from its last checkpoint on the next start")
        except Exception as error:  # noqa: BLE001 - any failure ends the run as failed, with its reason
            self._log(run, "failed:\n" + traceback.format_exc())
            self._finish(run.id, "failed", error=_describe(error))

    def _pipeline(self, run: TrainingRun, job: dict[str, Any]) -> None:
        from moksori.training.pipeline import Stage, make_voice
        from moksori.training.recipe import Recipe

        folder = Path(run.run_dir)
        voice = self._voice(run.voice_id)
        processed = folder / "processed"
        if (processed / "train.jsonl").is_file():
            self._log(run, "data already prepared; skipping export and preprocessing")
        else:
            self._prepare_data(run, voice, folder / "dataset", processed, job.get("preprocess"))
        stages = [Stage(s["name"], Recipe.from_dict(s["recipe"]), s["kind"]) for s in job["stages"]]
        share = (1.0 - DATA_SHARE - BUNDLE_SHARE) / len(stages)
        spans = {stage.name: (DATA_SHARE + index * share, share) for index, stage in enumerate(stages)}

        def on_stage(index: int, stage: Stage, recipe: Recipe) -> None:
            self._check(run.id)
            self._stage(run, f"train {stage.name}")

        def run_stage(name: str, recipe: Recipe, resume: bool) -> Path:
            return self._train_stage(run, name, recipe, resume, spans[name])

        target = self.service.bundle_dir(voice.id)
        make_voice(
            processed, stages, target, run_dir=folder / "train", name=voice.name, init_from=job.get("init_from"),
            reuse_vocoder=job.get("reuse_vocoder"),
            resume=True, progress=False,  # a progress bar only fills the log with carriage returns
            run_stage=run_stage, on_stage=on_stage, description=voice.description,
            extra={"studio_run": run.id, "recipe": job["recipe"]}, overwrite=True,
        )
        _record_data_minutes(target, processed)
        self._check(run.id)
        self._stage(run, "bundle")
        self._voice_ready(run, voice, target)

    def _prepare_data(
        self, run: TrainingRun, voice: Voice, dataset: Path, processed: Path, settings: dict[str, Any] | None = None
    ) -> None:
        """Export and preprocess the kept takes; ``settings`` (a fine-tune's base voice's text
        front end and mel) make the data fit the base voice's weights."""
        from moksori.audio import MelConfig
        from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
        from moksori.data.report import format_report

        self._stage(run, "export")
        count = self.service.export_ljspeech(voice.id, dataset, voice.owner_id)
        self._log(run, f"exported {count} kept recordings to {dataset}")
        self._check(run.id)
        self._stage(run, "preprocess")
        # Preprocessing resamples every clip to the models' mel rate (22,050 Hz).
        if settings:
            config = PreprocessConfig(mel=MelConfig.from_dict(settings["mel"]), language=settings["language"],
                                      add_blank=settings["add_blank"], use_pronunciation=settings["use_pronunciation"])
        else:
            config = PreprocessConfig(language=voice.language)
        report = preprocess_dataset(dataset, processed, config, workers=1, progress=False)
        self._log(run, format_report(report))
        if report.n_train < 1:
            raise JobError(f"only {report.n_kept} recordings passed preprocessing; too few to train (see the log)")
        self._update(run.id, progress=DATA_SHARE)

    def _train_stage(self, run: TrainingRun, name: str, recipe: Any, resume: bool, span: tuple[float, float]) -> Path:
        """Train one stage in a child process (``python -m moksori.studio.jobs train``), following
        its progress and stopping it on cancel."""
        stage_dir = Path(recipe.run_dir)
        recipe_file = Path(run.run_dir) / f"recipe-{name}.yaml"
        _write_yaml(recipe_file, recipe.to_dict())
        if resume:
            self._log(run, f"resuming {name} from step {checkpoint_step(stage_dir / 'latest.pt')} (latest.pt)")
        command = [self.python, "-m", "moksori.studio.jobs", "train", str(recipe_file)] + (["--resume"] if resume else [])
        self._run_child(run, command, stage_dir, recipe.train.steps, span)
        latest = stage_dir / "latest.pt"
        if not latest.is_file():
            raise JobError(f"training stage {name} ended without a checkpoint")
        self._update(run.id, checkpoint_path=str(latest), progress=span[0] + span[1])
        return latest

    def _run_child(
        self, run: TrainingRun, command: list[str], stage_dir: Path, total: int, span: tuple[float, float]
    ) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", MOKSORI_STUDIO_PARENT_PID=str(os.getpid()))
        if self.settings.train_threads:
            env["MOKSORI_STUDIO_TRAIN_THREADS"] = str(self.settings.train_threads)
        with open(run.log_path, "ab") as log_file:
            self._log(run, "$ " + " ".join(command[1:]))
            child = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            self._watch(run, child, stage_dir, total, span)
        finally:
            _stop(child)
        if child.returncode != 0:
            raise JobError(f"training exited with code {child.returncode}; see the log")

    def _watch(
        self, run: TrainingRun, child: subprocess.Popen[bytes], stage_dir: Path, total: int, span: tuple[float, float]
    ) -> None:
        last_step = -1
        while child.poll() is None:
            self._wake.wait(self.poll_s)
            self._wake.clear()
            self._check(run.id)
            record = last_metrics(stage_dir)
            step = int(record.get("step", 0)) if record else 0
            if step != last_step:
                last_step = step
                fraction = min(1.0, step / total) if total else 0.0
                self._update(run.id, step=step, progress=span[0] + span[1] * fraction)
                if record:
                    self._log(run, _metrics_line(record, total))

    def _voice_ready(self, run: TrainingRun, voice: Voice, target: Path) -> None:
        with self.db.session() as session:
            row = session.get(Voice, voice.id)
            if row is None:
                raise JobCancelled()
            row.bundle_path = bundle_name(voice.id)
        self._log(run, f"voice bundle written to {target}")
        self._finish(run.id, "succeeded", progress=1.0)

    # --- bookkeeping --------------------------------------------------------------------------

    def _check(self, run_id: int) -> None:
        """Raise JobStopping / JobCancelled when the server stops or the run was cancelled
        (here, or by another server process through the database)."""
        if self._stopping.is_set():
            raise JobStopping()
        with self._lock:
            if run_id in self._cancelled:
                raise JobCancelled()
        with self.db.session() as session:
            status = session.scalar(select(TrainingRun.status).where(TrainingRun.id == run_id))
        if status is None or status == "cancelled":
            raise JobCancelled()

    def _stage(self, run: TrainingRun, stage: str) -> None:
        self._stages[run.id] = stage
        self._log(run, f"== {stage} ==")

    def _voice(self, voice_id: int) -> Voice:
        with self.db.session() as session:
            voice = session.get(Voice, voice_id)
        if voice is None:
            raise JobCancelled()
        return voice

    def _update(self, run_id: int, **values: Any) -> None:
        with self.db.session() as session:
            run = session.get(TrainingRun, run_id)
            if run is None:
                return
            for key, value in values.items():
                setattr(run, key, value)

    def _finish(self, run_id: int, status: str, **values: Any) -> None:
        """Set the final status, unless the run was cancelled meanwhile (a cancel wins)."""
        with self.db.session() as session:
            run = session.get(TrainingRun, run_id)
            if run is None or (run.status == "cancelled" and status != "cancelled"):
                return
            run.status = status
            for key, value in values.items():
                setattr(run, key, value)

    def _log(self, run: TrainingRun, message: str) -> None:
        """Append to the run's log; a log that cannot be written (read-only or full data folder)
        goes to the server log instead, and never fails the request or the run's bookkeeping."""
        if not run.log_path:
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        try:
            Path(run.log_path).parent.mkdir(parents=True, exist_ok=True)
            with open(run.log_path, "a", encoding="utf-8") as handle:
                handle.write(f"[studio {stamp}] {message}\n")
        except OSError as error:
            log.warning("training run %s: cannot write its log (%s): %s", run.id, error, message[:500])


# --- helpers -----------------------------------------------------------------------------------


def read_log_tail(path: str | None, lines: int = 40, max_bytes: int = 16384) -> str:
    """The last ``lines`` lines of a log file ('' when there is none)."""
    if not path or not Path(path).is_file():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


def last_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The newest training record of a run's metrics.jsonl, reading only the file's end."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 8192))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by the seek, or being written
        if isinstance(record, dict) and record.get("split") == "train" and "step" in record:
            return record
    return None


def _metrics_line(record: dict[str, Any], total: int) -> str:
    shown = {k: v for k, v in record.items() if k in ("loss", "mle", "duration", "mel", "gen", "disc")}
    values = " ".join(f"{k} {v:.4f}" for k, v in shown.items() if isinstance(v, int | float))
    return f"step {record.get('step')}/{total} {values}".rstrip()


def checkpoint_step(path: Path) -> int:
    """The step of a checkpoint, without reading its weights (they are memory-mapped)."""
    from moksori.checkpoint import torch_load

    return int(torch_load(path, mmap=True)["step"])


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000] if not isinstance(error, JobError) else str(error)


def _stop(child: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class _exclusive:
    """``with _exclusive(path) as locked``: a non-blocking exclusive lock on a file, released
    when the block ends or the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: BinaryIO | None = None

    def __enter__(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "ab")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            self.handle = None
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


# --- the training child ------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the server dies, so no orphan keeps training a run that
    the next server resumes."""
    parent = int(os.environ.get("MOKSORI_STUDIO_PARENT_PID", "0"))
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent and os.getppid() != parent:  # the server died before the line above ran
        sys.exit(1)


def child_main(argv: list[str], main: Callable[[list[str]], int] | None = None) -> int:
    """``python -m moksori.studio.jobs train RECIPE [--resume]``: one training stage
    (:func:`moksori.training.pipeline.child_main`) tied to the server process."""
    _die_with_parent()
    threads = os.environ.get("MOKSORI_STUDIO_TRAIN_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    if main is None:
        from moksori.training.pipeline import child_main as main
    return main(argv)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))


def _record_data_minutes(voice_dir: Path, processed: Path) -> None:
    """The minutes of kept recordings the voice was trained on, in its voice.json (the voice page shows them)."""
    import json

    from moksori.synthesis.bundle import read_voice_json, update_voice_json

    seconds = 0.0
    for split in ("train.jsonl", "val.jsonl"):
        path = processed / split
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    seconds += float(json.loads(line).get("duration_s") or 0.0)
    data = dict(read_voice_json(voice_dir).get("data") or {})
    data.update(minutes=round(seconds / 60.0, 2), source="studio recordings")
    update_voice_json(voice_dir, {"data": data})
