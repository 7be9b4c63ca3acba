"""Training tasks, one file per family (or per kind: the GAN vocoders share one); the base
class and :func:`build_task` are in :mod:`moksori.training.tasks.base`."""

from moksori.training.tasks.base import Batch, DatasetInfo, OptimizerSpec, Task, build_task

__all__ = ["Batch", "DatasetInfo", "OptimizerSpec", "Task", "build_task"]
