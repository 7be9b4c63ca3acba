"""Training: the one loop for every model (:func:`train`), recipes, checkpoints, warm start.

* :mod:`moksori.training.recipe` — YAML recipes → dataclasses
* :mod:`moksori.training.loop` — :func:`train`, the Trainer, DDP/AMP/clipping/resume
* :mod:`moksori.training.tasks` — per-model hooks (Glow-TTS, HiFi-GAN)
* :mod:`moksori.training.checkpoint` — the checkpoint schema, atomic writes, keep-last-N
* :mod:`moksori.training.warm_start` — fine-tuning: matching weights, freezing, aligned mels
* :mod:`moksori.training.logging` — TensorBoard, metrics.jsonl, plots

``moksori train`` (options in ``moksori/cli.py``) calls :func:`moksori.training.loop.run`.
"""

from moksori.training.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    save_checkpoint,
)
from moksori.training.loop import StepContext, Trainer, TrainingError, train
from moksori.training.recipe import Recipe, RecipeError, load_recipe

__all__ = [
    "CHECKPOINT_FORMAT",
    "Recipe",
    "RecipeError",
    "StepContext",
    "Trainer",
    "TrainingError",
    "load_checkpoint",
    "load_recipe",
    "save_checkpoint",
    "train",
]
