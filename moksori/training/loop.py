"""The one training loop for every model.

:func:`train` reads a recipe, builds the model's :class:`~moksori.training.tasks.Task`, and runs
steps: length-bucketed batches, DDP when started by ``torchrun``, AMP (fp16 or bf16 on CUDA, bf16
on CPU), gradient
clipping, non-finite loss/gradient skipping, validation, TensorBoard, atomic checkpoints with
exact resume. Nothing in here knows a model's maths; the task's ``train_step`` does, through
the :class:`StepContext` helper.

Exact resume: the learning rate is a function of (step, epoch), the data order a function of
(seed, epoch) with the position inside the epoch saved, and every step reseeds torch from
(seed, step, rank), so a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from moksori.cpu import native_bf16
from moksori.data.dataset import LengthBucketSampler, TTSDataset, collate_tts
from moksori.errors import UserError
from moksori.training.checkpoint import (
    CHECKPOINT_FORMAT,
    LATEST,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from moksori.training.logging import RunLogger, logger
from moksori.training.recipe import Recipe, load_recipe
from moksori.training.tasks import DatasetInfo, OptimizerSpec, Task, build_task
from moksori.training.warm_start import apply_freeze, warm_start

__all__ = ["NonFiniteStep", "StepContext", "Trainer", "TrainingError", "run", "train"]


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (e.g. too many consecutive non-finite steps, a run folder that
    already holds checkpoints); the message says what to change."""


class NonFiniteStep(Exception):
    """A loss or gradient norm of this step is NaN/inf; the loop skips the step."""

    def __init__(self, what: str, value: float) -> None:
        super().__init__(f"non-finite {what} ({value})")
        self.what = what
        self.value = value


# --- distributed ------------------------------------------------------------------------------


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    started_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed() -> DistInfo:
    """Join the process group when started by torchrun (RANK/WORLD_SIZE/LOCAL_RANK set)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    started_here = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo", rank=rank, world_size=world_size)
        started_here = True
    return DistInfo(rank, world_size, local_rank, device, started_here)


def _warn_about_amp(amp: str, device: torch.device) -> None:
    if amp == "fp16" and device.type != "cuda":
        logger.warning("amp=fp16 needs CUDA; training in float32 on %s (amp=bf16 runs on a CPU)", device)
    elif amp == "bf16" and device.type == "cpu" and not native_bf16():
        logger.warning("amp=bf16 on a CPU without bf16 instructions (avx512_bf16/amx_bf16) is emulated and "
                       "slower than float32 here; set train.amp: off for speed")


def _barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


# --- the step helper handed to tasks -----------------------------------------------------------


class StepContext:
    """AMP, gradient scaling, clipping and non-finite checks for one training step.

    A task calls :meth:`optimize` once per optimizer per step with that optimizer's loss.
    """

    def __init__(
        self,
        device: torch.device,
        amp: str,
        grad_clip: float,
        optimizers: Mapping[str, torch.optim.Optimizer],
        distributed: bool,
        clip_by_value: bool = False,
    ) -> None:
        self.device = device
        # CPU autocast runs bf16 only; fp16 autocast (with its gradient scaler) is a CUDA thing.
        self.amp = amp if device.type == "cuda" or amp == "bf16" else "off"
        self.grad_clip = grad_clip
        # True: clamp each gradient element to ±grad_clip (Task.grad_clip_by_value); else clip the global norm.
        self.clip_by_value = clip_by_value
        self.optimizers = dict(optimizers)
        self.distributed = distributed
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == "fp16" else None
        self.grad_norms: dict[str, float] = {}
        self._unscaled = False

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _all_finite(self, value: torch.Tensor) -> bool:
        finite = torch.isfinite(value.detach()).all().float()
        if self.distributed:
            # Every rank must skip together, or DDP's gradient all-reduce would wait forever.
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite.item() > 0)

    def optimize(self, name: str, loss: torch.Tensor, parameters: list[nn.Parameter]) -> float:
        """Backward ``loss``, clip, and step optimizer ``name``. Returns the gradient norm
        (before clipping). Raises :class:`NonFiniteStep` without stepping on a NaN/inf loss,
        or on a NaN/inf gradient norm outside fp16 (where the scaler skips such steps itself)."""
        if not self._all_finite(loss):
            raise NonFiniteStep(f"{name} loss", float(loss.detach()))
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optimizer)
            self._unscaled = True
        else:
            loss.backward()
        max_norm = self.grad_clip if self.grad_clip > 0 and not self.clip_by_value else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(parameters, max_norm)) if parameters else 0.0
        if self.clip_by_value and self.grad_clip > 0 and parameters:
            torch.nn.utils.clip_grad_value_(parameters, self.grad_clip)
        self.grad_norms[name] = norm
        if self.scaler is not None:
            self.scaler.step(optimizer)
            return norm
        if not math.isfinite(norm):
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteStep(f"{name} gradient norm", norm)
        optimizer.step()
        return norm

    def begin(self) -> None:
        self.grad_norms = {}

    def end(self) -> None:
        if self.scaler is not None and self._unscaled:
            self.scaler.update()
        self._unscaled = False


# --- data --------------------------------------------------------------------------------------


class ResumableBatches(Sampler[list[int]]):
    """A :class:`LengthBucketSampler` that can start an epoch part-way (for exact resume)."""

    def __init__(self, sampler: LengthBucketSampler) -> None:
        self.sampler = sampler
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.sampler.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[list[int]]:
        return iter(list(self.sampler)[self.start :])

    def __len__(self) -> int:
        return max(len(self.sampler) - self.start, 0)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, as PyTorch's DataLoader counts them)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def loader_workers(requested: int, world_size: int = 1) -> int:
    """DataLoader workers per process: the recipe's count, at most this machine's CPUs shared
    among the processes less one for the process itself (more only makes PyTorch warn and the
    workers fight the training step for the CPUs)."""
    return min(requested, max(0, usable_cpus() // max(1, world_size) - 1))


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _config_difference(run_config: Any, recipe_config: Mapping[str, Any], error: Exception) -> str:
    """Why a run's weights do not load into the recipe's model: the model_config keys that differ,
    else the first line of torch's message."""
    run_config = run_config if isinstance(run_config, Mapping) else {}
    changed = [f"{key} {run_config[key]} in the run, {recipe_config[key]} now"
               for key in recipe_config if key in run_config and run_config[key] != recipe_config[key]]
    if changed:  # from the recipe's model_config, or from the data (symbols, mels, speakers)
        return "the model the recipe and data make differs from the run's: " + "; ".join(changed[:5])
    return f"the run's checkpoint does not fit the recipe's model ({str(error).splitlines()[0]})"


def _seed_step(seed: int, step: int, rank: int) -> None:
    torch.manual_seed((seed * 1_000_003 + step * 7919 + rank) % (2**63))


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- the trainer -------------------------------------------------------------------------------


class Trainer:
    """One training run; :func:`train` is the usual entry point."""

    def __init__(
        self,
        recipe: Recipe,
        *,
        resume: bool = False,
        init_from: str | None = None,
        run_dir: str | None = None,
        max_steps: int | None = None,
    ) -> None:
        if run_dir is not None:
            recipe.run_dir = str(run_dir)
        if max_steps is not None:
            if max_steps < 1:
                raise ValueError(f"max_steps must be positive, got {max_steps}")
            recipe.train.steps = max_steps
        if init_from is not None:
            recipe.init_from = init_from
        if resume and recipe.init_from:
            logger.info("resuming: init_from %s is ignored (the run's own checkpoint is loaded)", recipe.init_from)
        self.recipe = recipe
        self.resume = resume
        self.run_dir = Path(recipe.run_dir)
        self.task: Task | None = None  # the trained modules, after run()

    def run(self) -> Path:
        dist_info = setup_distributed()
        try:
            self._run(dist_info)
        finally:
            if dist_info.started_here:
                dist.destroy_process_group()
        return self.run_dir

    # --- setup ---------------------------------------------------------------------------
    def _load_resume_checkpoint(self) -> dict[str, Any] | None:
        latest = self.run_dir / LATEST
        numbered = list_checkpoints(self.run_dir)
        if not latest.is_file() and numbered:
            latest = numbered[-1]  # latest.pt was never written (the disk filled up after ckpt_N.pt)
        if self.resume:
            if not latest.is_file():
                raise FileNotFoundError(f"cannot resume: no {LATEST} in {self.run_dir}")
            checkpoint = load_checkpoint(latest)
            if checkpoint["model_name"] != self.recipe.model:
                raise TrainingError(f"cannot resume: the run's checkpoint is a {checkpoint['model_name']} model, "
                                    f"the recipe trains {self.recipe.model}")
            if not isinstance(checkpoint.get("train_state"), Mapping):
                raise TrainingError(f"cannot resume: {latest} holds no training state (an imported checkpoint?); "
                                    f"start a new run from its weights with --init-from")
            return checkpoint
        if latest.is_file():
            raise TrainingError(
                f"{self.run_dir} already holds checkpoints; resume it (--resume) or choose another run folder"
            )
        return None

    def _loaders(self, task: Task, info: DistInfo) -> tuple[DataLoader, ResumableBatches, DataLoader | None]:
        data = self.recipe.data
        train_set = task.wrap_dataset(TTSDataset(data.dir, "train", load_wave=task.load_wave))
        if len(train_set) == 0:
            raise TrainingError(f"{data.dir}: train.jsonl holds no utterances")
        sampler = LengthBucketSampler(
            TTSDataset(data.dir, "train").frame_lengths,
            data.batch_size,
            bucket_size_multiplier=data.bucket_size_multiplier,
            seed=self.recipe.train.seed,
            num_replicas=info.world_size,
            rank=info.rank,
        )
        batches = ResumableBatches(sampler)
        pin = info.device.type == "cuda"
        workers = loader_workers(data.num_workers, info.world_size)
        if workers != data.num_workers and info.is_main:
            logger.info("data: %d loader workers asked for, %d CPUs here: using %d per process",
                        data.num_workers, usable_cpus(), workers)
        train_loader = DataLoader(
            train_set, batch_sampler=batches, collate_fn=collate_tts, num_workers=workers, pin_memory=pin
        )
        val_set = task.wrap_dataset(TTSDataset(data.dir, "val", load_wave=task.load_wave))
        val_loader = None
        if len(val_set) and info.is_main:
            val_loader = DataLoader(
                val_set, batch_size=data.batch_size, shuffle=False, collate_fn=collate_tts,
                num_workers=workers, pin_memory=pin,
            )
        return train_loader, batches, val_loader

    def _wrap_ddp(self, task: Task, info: DistInfo) -> None:
        if not info.enabled:
            return
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [info.local_rank] if info.device.type == "cuda" else None
        for name, module in task.nets.items():
            if any(p.requires_grad for p in module.parameters()):
                # A task whose steps leave some parameters unused (Flowtron's one-flow curriculum) says so.
                unused = bool(getattr(task, "ddp_find_unused_parameters", False))
                task.runtime[name] = DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=unused)

    # --- checkpoints ---------------------------------------------------------------------
    def _checkpoint(self, task: Task, specs: list[OptimizerSpec], ctx: StepContext, info: DatasetInfo,
                    step: int, epoch: int, batch_in_epoch: int) -> dict[str, Any]:
        def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
            return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

        others = {name: cpu_state(m) for name, m in task.nets.items() if name != task.inference_name}
        return {
            "format": CHECKPOINT_FORMAT,
            "model_name": task.model_name,
            "model_config": task.model_config(),
            "model": cpu_state(task.inference_module()),
            "step": step,
            "epoch": epoch,
            "text_frontend": task.text_frontend(),
            "mel_config": info.mel_config.to_dict(),
            "speakers": list(info.speakers),
            "train_state": {
                "modules": others,
                "optimizers": {spec.name: spec.optimizer.state_dict() for spec in specs},
                "learning_rates": {spec.name: spec.optimizer.param_groups[0]["lr"] for spec in specs},
                "scaler": ctx.scaler.state_dict() if ctx.scaler is not None else None,
                "rng": _rng_state(),
                "recipe": self.recipe.to_dict(),
                "batch_in_epoch": batch_in_epoch,
            },
        }

    def _restore(self, checkpoint: dict[str, Any], task: Task, specs: list[OptimizerSpec], ctx: StepContext) -> None:
        state = checkpoint["train_state"]
        try:
            task.inference_module().load_state_dict(checkpoint["model"])
            for name, module in task.nets.items():
                if name != task.inference_name:
                    module.load_state_dict(state["modules"][name])
        except RuntimeError as error:  # torch's list of every mismatched tensor
            raise TrainingError(f"cannot resume: {_config_difference(checkpoint.get('model_config'), task.model_config(), error)}; "
                                "resume with the run's own recipe.yaml, or start a new run with --init-from") from error
        for spec in specs:
            try:
                spec.optimizer.load_state_dict(state["optimizers"][spec.name])
            except (KeyError, ValueError) as error:
                raise TrainingError(
                    f"cannot resume optimizer {spec.name!r} (did the freeze list change?): {error}"
                ) from error
        if ctx.scaler is not None and state.get("scaler"):
            ctx.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])

    # --- the run -------------------------------------------------------------------------
    def _run(self, info: DistInfo) -> None:
        recipe = self.recipe
        train = recipe.train
        random.seed(train.seed + info.rank)
        np.random.seed((train.seed + info.rank) % 2**32)
        torch.manual_seed(train.seed + info.rank)
        checkpoint = self._load_resume_checkpoint()
        data_info = DatasetInfo.from_dir(recipe.data.dir)
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            logs = self.run_dir / "logs"
            logger.info("TensorBoard logs: %s (view them: tensorboard --logdir %s)", logs, logs)

        torch.manual_seed(train.seed)  # the same initial weights on every rank
        task = build_task(recipe, data_info, info.device)
        self.task = task
        warm_started = False
        if checkpoint is None and recipe.init_from:
            report = warm_start(task, recipe.init_from)
            warm_started = True
            if info.is_main:
                # One line in the log; every name in the run folder.
                (self.run_dir / "warm_start.json").write_text(json.dumps(report.to_dict(), indent=1), "utf-8")
                logger.warning("%s (all names: %s)", report.describe(), self.run_dir / "warm_start.json")
        frozen = apply_freeze(task.nets, task.inference_name, recipe.freeze)
        if frozen and info.is_main:
            logger.info("frozen: %d parameter tensors (%s)", len(frozen), ", ".join(recipe.freeze))

        if info.is_main:
            task.prepare_data(info.rank, info.world_size)
        _barrier(info)
        if not info.is_main:
            task.prepare_data(info.rank, info.world_size)
        train_loader, batches, val_loader = self._loaders(task, info)

        specs = task.optimizers()
        ctx = StepContext(info.device, train.amp, task.grad_clip(),
                          {s.name: s.optimizer for s in specs}, info.enabled, task.grad_clip_by_value)
        if info.is_main:
            _warn_about_amp(train.amp, info.device)
        step = epoch = batch_in_epoch = 0
        if checkpoint is not None:
            self._restore(checkpoint, task, specs, ctx)
            step, epoch = int(checkpoint["step"]), int(checkpoint["epoch"])
            batch_in_epoch = int(checkpoint["train_state"]["batch_in_epoch"])
        elif not warm_started:
            batches.set_position(0, 0)
            task.initialize(_to_device(next(iter(train_loader)), info.device))
        if info.is_main:  # only now: a refused resume or warm start leaves the run's record as it was
            (self.run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False), "utf-8")
        self._wrap_ddp(task, info)

        run_logger = RunLogger(self.run_dir, enabled=info.is_main, sample_rate=data_info.mel_config.sample_rate,
                               resume_step=step if checkpoint is not None else None)
        try:
            self._steps(task, specs, ctx, data_info, info, run_logger, train_loader, batches, val_loader,
                        step, epoch, batch_in_epoch)
        finally:
            run_logger.close()

    def _steps(self, task, specs, ctx, data_info, info, run_logger, train_loader, batches, val_loader,
               step, epoch, batch_in_epoch) -> None:
        train = self.recipe.train
        total = train.steps
        if step >= total:
            logger.info("run %s is already at step %d (of %d); nothing to do", self.run_dir, step, total)
            return
        progress = tqdm(total=total, initial=step, disable=not (info.is_main and train.progress),
                        desc=f"train {task.model_name}", unit="step", dynamic_ncols=True)
        sums: dict[str, float] = {}
        counted = skipped = bad_in_row = 0
        window_start, window_step = time.perf_counter(), step
        batches.set_position(epoch, batch_in_epoch)
        task.train(True)
        try:
            while step < total:
                for batch in train_loader:
                    batch_in_epoch += 1
                    metrics = self._one_step(task, specs, ctx, batch, step, epoch, info)
                    if metrics is None:
                        skipped += 1
                        bad_in_row += 1
                        if bad_in_row > train.max_bad_steps:
                            raise TrainingError(
                                f"{bad_in_row} consecutive steps had a non-finite loss or gradient "
                                f"(limit max_bad_steps={train.max_bad_steps}); check the data and the learning rate"
                            )
                    else:
                        bad_in_row = 0
                        counted += 1
                        for key, value in metrics.items():
                            sums[key] = sums.get(key, 0.0) + value
                    step += 1
                    progress.update(1)

                    if step % train.log_interval == 0 or step == total:
                        elapsed = time.perf_counter() - window_start
                        rate = (step - window_step) / elapsed if elapsed > 0 else 0.0
                        values = {k: v / counted for k, v in sums.items()} if counted else {}
                        values.update({f"lr/{s.name}": s.optimizer.param_groups[0]["lr"] for s in specs})
                        values.update(steps_per_s=rate, skipped_steps=float(skipped), epoch=float(epoch))
                        run_logger.scalars("train", values, step)
                        if "loss" in values:
                            progress.set_postfix(loss=f"{values['loss']:.4f}", steps_s=f"{rate:.2f}")
                        sums, counted, skipped = {}, 0, 0
                        window_start, window_step = time.perf_counter(), step

                    if step % train.eval_interval == 0 and val_loader is not None:
                        self._evaluate(task, val_loader, info, run_logger, step)
                    if step % train.checkpoint_interval == 0 or step == total:
                        if info.is_main:
                            save_checkpoint(
                                self.run_dir,
                                self._checkpoint(task, specs, ctx, data_info, step, epoch, batch_in_epoch),
                                keep_last=train.keep_last,
                            )
                        _barrier(info)
                    if step >= total:
                        break
                else:
                    epoch += 1
                    batch_in_epoch = 0
                    batches.set_position(epoch, 0)
        finally:
            progress.close()

    def _one_step(self, task: Task, specs: list[OptimizerSpec], ctx: StepContext, batch: dict[str, Any],
                  step: int, epoch: int, info: DistInfo) -> dict[str, float] | None:
        """One step; ``None`` when it was skipped for a non-finite loss or gradient."""
        _seed_step(self.recipe.train.seed, step, info.rank)
        for spec in specs:
            for group in spec.optimizer.param_groups:
                group["lr"] = spec.lr_at(step, epoch)
        ctx.begin()
        try:
            metrics = task.train_step(_to_device(batch, info.device), step, ctx)
        except NonFiniteStep as error:
            for spec in specs:
                spec.optimizer.zero_grad(set_to_none=True)
            logger.warning("step %d: %s; step skipped (no optimizer update). utterances: %s",
                           step, error, ", ".join(batch["id"]))
            return None
        finally:
            ctx.end()
        metrics.update({f"grad_norm/{name}": norm for name, norm in ctx.grad_norms.items()})
        return metrics

    @torch.no_grad()
    def _evaluate(self, task: Task, val_loader: DataLoader, info: DistInfo, run_logger: RunLogger, step: int) -> None:
        task.train(False)
        try:
            sums: dict[str, float] = {}
            count = 0
            first = None
            limit = self.recipe.data.max_val_batches
            for index, batch in enumerate(val_loader):
                if limit and index >= limit:
                    break
                batch = _to_device(batch, info.device)
                if first is None:
                    first = batch
                size = len(batch["id"])
                for key, value in task.validate(batch).items():
                    sums[key] = sums.get(key, 0.0) + value * size
                count += size
            if count:
                run_logger.scalars("val", {k: v / count for k, v in sums.items()}, step)
            if first is not None:
                run_logger.examples(task.examples(first, step), step)
            run_logger.flush()
        finally:
            task.train(True)


def train(
    recipe: str | Path | Mapping[str, Any] | Recipe,
    *,
    resume: bool = False,
    init_from: str | None = None,
    run_dir: str | None = None,
    max_steps: int | None = None,
    stage: str | None = None,
) -> Path:
    """Train the model a recipe describes; returns the run folder.

    ``resume`` continues from ``latest.pt`` in the run folder exactly where it stopped;
    ``init_from`` warm-starts from a checkpoint or voice bundle (weights whose names and
    shapes match); ``run_dir`` and ``max_steps`` override the recipe's run folder and step
    count; ``stage`` picks one stage of a multi-stage recipe file.
    """
    loaded = load_recipe(recipe, stage=stage)
    if isinstance(recipe, Recipe):
        loaded = Recipe.from_dict(recipe.to_dict())  # the caller's object stays unchanged
    return Trainer(loaded, resume=resume, init_from=init_from, run_dir=run_dir, max_steps=max_steps).run()


# --- command line (`moksori train`) ------------------------------------------------------------


def run(args: Any) -> int:
    """Run ``moksori train`` from parsed arguments; prints the run folder. Works under torchrun."""
    import logging as std_logging

    if not std_logging.getLogger().handlers:
        std_logging.basicConfig(level=std_logging.INFO, format="%(message)s")
    from moksori.recipes import resolve_recipe

    recipe = load_recipe(resolve_recipe(args.recipe), stage=args.stage)
    if getattr(args, "data_dir", None):
        recipe.data.dir = args.data_dir
    if getattr(args, "vocoder_finetune_from", None):
        recipe.vocoder_finetune_from = args.vocoder_finetune_from
        recipe.check()
    run_dir = train(recipe, resume=args.resume, init_from=args.init_from, run_dir=args.run_dir,
                    max_steps=args.max_steps)
    if int(os.environ.get("RANK", "0")) == 0:
        print(run_dir)
    return 0
