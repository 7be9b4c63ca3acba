"""Run logging: TensorBoard (scalars, mel/alignment images, audio), a metrics.jsonl file, plots.

Only rank 0 logs; other ranks get a :class:`RunLogger` with ``enabled=False`` that does nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["Examples", "RunLogger", "logger", "plot_alignment", "plot_mels", "read_metrics"]

logger = logging.getLogger("moksori.training")

METRICS_FILE = "metrics.jsonl"


@dataclass
class Examples:
    """What a task shows in TensorBoard at an evaluation: images ``(H, W, 3)`` uint8 and audio
    (1-D float waves in [-1, 1]) by tag."""

    images: dict[str, np.ndarray] = field(default_factory=dict)
    audio: dict[str, np.ndarray] = field(default_factory=dict)


def _figure_to_array(figure: Any) -> np.ndarray:
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    import matplotlib.pyplot as plt

    plt.close(figure)
    return image


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_mels(mels: Mapping[str, Any]) -> np.ndarray:
    """One panel per log-mel ``(n_mels, frames)`` (numpy or torch), stacked vertically."""
    plt = _pyplot()
    figure, axes = plt.subplots(len(mels), 1, figsize=(10, 2.6 * len(mels)), squeeze=False)
    for axis, (title, mel) in zip(axes[:, 0], mels.items()):
        mel = _as_numpy(mel)
        image = axis.imshow(mel, aspect="auto", origin="lower", interpolation="none")
        axis.set_title(title)
        axis.set_ylabel("mel channel")
        figure.colorbar(image, ax=axis)
    axes[-1, 0].set_xlabel("frame")
    figure.tight_layout()
    return _figure_to_array(figure)


def plot_alignment(alignment: Any, title: str = "alignment") -> np.ndarray:
    """An alignment ``(tokens, frames)`` as an image, frames along x."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    image = axis.imshow(_as_numpy(alignment), aspect="auto", origin="lower", interpolation="none")
    figure.colorbar(image, ax=axis)
    axis.set_xlabel("frame")
    axis.set_ylabel("token")
    axis.set_title(title)
    figure.tight_layout()
    return _figure_to_array(figure)


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


class RunLogger:
    """TensorBoard writer plus ``metrics.jsonl`` (one JSON object per logged step) in the run folder."""

    def __init__(
        self, run_dir: str | Path, *, enabled: bool = True, sample_rate: int = 22050, resume_step: int | None = None
    ) -> None:
        """``resume_step``: a resumed run drops what an interrupted run logged after that step."""
        self.enabled = enabled
        self.sample_rate = sample_rate
        self.run_dir = Path(run_dir)
        self._writer: Any = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as error:  # tensorboard is a declared dependency; say so if missing
                raise RuntimeError("training logs need the 'tensorboard' package: pip install tensorboard") from error
            if resume_step is not None:
                self._truncate_metrics(resume_step)
            purge = resume_step + 1 if resume_step is not None else None
            self._writer = SummaryWriter(log_dir=str(self.run_dir / "logs"), purge_step=purge)

    def _truncate_metrics(self, step: int) -> None:
        path = self.run_dir / METRICS_FILE
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if (logged := _logged_step(line)) is not None and logged <= step]
        if len(kept) != len(lines):
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        if not self.enabled:
            return
        with self._writing_logs():
            for name, value in values.items():
                if math.isfinite(value):
                    self._writer.add_scalar(f"{prefix}/{name}", value, step)
        record = {"step": step, "split": prefix, **{k: float(v) for k, v in values.items()}}
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def examples(self, examples: Examples, step: int) -> None:
        if not self.enabled:
            return
        with self._writing_logs():
            for tag, image in examples.images.items():
                self._writer.add_image(tag, image, step, dataformats="HWC")
            for tag, wave in examples.audio.items():
                wave = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)
                self._writer.add_audio(tag, wave, step, sample_rate=self.sample_rate)

    def flush(self) -> None:
        if self._writer is not None:
            with self._writing_logs():
                self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            with self._writing_logs():
                writer.close()

    @contextlib.contextmanager
    def _writing_logs(self):
        """TensorBoard writes from a thread and re-raises its error without a file name
        ("[Errno 28] No space left on device"): name the logs folder."""
        try:
            yield
        except OSError as error:
            if error.filename is not None:
                raise
            reason = error.strerror or str(error)
            raise OSError(error.errno, f"cannot write the TensorBoard logs: {reason}", str(self.run_dir / "logs")) from error


def _logged_step(line: str) -> int | None:
    """The step of a metrics.jsonl line; None for a blank line or one torn by a killed run or a full disk."""
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return None


def read_metrics(run_dir: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """The records of a run's ``metrics.jsonl``, optionally only one split ("train", "val")."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if split is None or r.get("split") == split]
