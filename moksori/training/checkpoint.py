"""Writing training checkpoints: atomic writes, keep-last-N, and loading for resume.

The format (schema keys, version) and every read live in :mod:`moksori.checkpoint`; files are
``ckpt_{step:08d}.pt`` and ``latest.pt`` in the run folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from moksori.atomic import atomic_path
from moksori.checkpoint import CHECKPOINT_FORMAT, LATEST, SCHEMA_KEYS, CheckpointError, check_checkpoint, torch_load

__all__ = [
    "CHECKPOINT_FORMAT",
    "LATEST",
    "SCHEMA_KEYS",
    "checkpoint_path",
    "list_checkpoints",
    "load_checkpoint",
    "prune_checkpoints",
    "save_checkpoint",
]

_CKPT_NAME = re.compile(r"^ckpt_(\d{8,})\.pt$")


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / f"ckpt_{step:08d}.pt"


def _atomic_torch_save(value: Any, path: Path) -> None:
    try:
        with atomic_path(path, durable=True) as temp, open(temp, "wb") as handle:
            torch.save(value, handle)
    except RuntimeError as error:
        # torch's zip writer answers a failed write (a full disk) with its own RuntimeError
        # ("unexpected pos ..."); the OSError it was handling says what happened.
        failed_write = error.__context__
        if isinstance(failed_write, OSError) and failed_write.errno is not None:
            raise OSError(failed_write.errno, f"cannot write the checkpoint: {failed_write.strerror}", str(path)) from error
        raise


def save_checkpoint(run_dir: str | Path, checkpoint: dict[str, Any], keep_last: int | None = None) -> Path:
    """Write ``checkpoint`` as ``ckpt_{step}.pt`` and ``latest.pt``, each atomically; then delete
    all but the newest ``keep_last`` numbered checkpoints. Returns the numbered file."""
    missing = [key for key in SCHEMA_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"checkpoint lacks schema key(s): {', '.join(missing)}")
    run_dir = Path(run_dir)
    path = checkpoint_path(run_dir, int(checkpoint["step"]))
    _atomic_torch_save(checkpoint, path)
    _atomic_torch_save(checkpoint, run_dir / LATEST)
    _remove_interrupted_writes(run_dir)
    if keep_last is not None:
        prune_checkpoints(run_dir, keep_last)
    return path


# What atomic_path leaves of a checkpoint write when the process is killed (kill -9, OOM) mid-write.
_INTERRUPTED_WRITE = re.compile(r"^\.(ckpt_\d{8,}\.pt|" + re.escape(LATEST) + r")\..+\.tmp$")


def _remove_interrupted_writes(run_dir: Path) -> None:
    """Delete temp files of checkpoint writes a killed run left: each is a whole checkpoint's size."""
    for path in run_dir.iterdir():
        if _INTERRUPTED_WRITE.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Numbered checkpoints of a run, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := _CKPT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` numbered checkpoints; return the deleted paths."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    old = list_checkpoints(run_dir)[:-keep_last]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file (or ``latest.pt`` of a run folder) on the CPU and check its format."""
    path = Path(path)
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        checkpoint = torch_load(path)
    except Exception as error:  # torch raises many kinds (KeyError, OSError, RuntimeError) for a damaged file
        raise CheckpointError(f"{path}: cannot read the checkpoint ({load_failure(error)})") from error
    try:
        check_checkpoint(checkpoint, path)
    except CheckpointError as error:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint ({error})") from error
    return checkpoint


def load_failure(error: BaseException) -> str:
    """Why torch could not read a file, in one line: the error's kind and its first sentence
    (torch's own messages go on with advice that does not apply here)."""
    first = str(error).split(". ")[0].splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
