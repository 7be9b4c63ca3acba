"""Per-family training hooks: what the one training loop needs to know about a model family.

A :class:`Task` builds its modules from a recipe and the preprocessed data folder, names its
optimizers and learning-rate schedules, and runs one training step through the loop's
:class:`~moksori.training.loop.StepContext` (which owns AMP, gradient scaling, clipping and
the non-finite checks). Loss maths stays in the model files; tasks only call it. Each family's
task lives in its own file here and is named in the registry (:mod:`moksori.models.registry`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from moksori.audio import MelConfig
from moksori.data.manifest import load_config
from moksori.models import registry
from moksori.text import TextFrontend
from moksori.training.logging import Examples
from moksori.training.recipe import Recipe, RecipeError, check_field_types

if TYPE_CHECKING:
    from moksori.training.loop import StepContext

__all__ = ["Batch", "DatasetInfo", "OptimizerSpec", "Task", "build_task"]

Batch = dict[str, Any]


@dataclass
class DatasetInfo:
    """What a task needs to know about the preprocessed folder it trains on."""

    root: Path
    n_vocab: int
    speakers: list[str]
    mel_config: MelConfig
    text_settings: dict[str, Any]

    @classmethod
    def from_dir(cls, path: str | Path) -> "DatasetInfo":
        root = Path(path)
        if not (root / "config.json").is_file():
            raise FileNotFoundError(f"{root} is not a preprocessed folder (no config.json); run `moksori preprocess` first")
        config = load_config(root)
        text_settings = dict(config["text"])
        frontend = TextFrontend.from_settings(dict(text_settings))
        return cls(
            root=root,
            n_vocab=len(frontend.symbols),
            # A single unnamed speaker is stored as [""]; checkpoints list no speakers then.
            speakers=[name for name in config.get("speakers") or [] if name] if len(config.get("speakers") or []) <= 1
            else list(config["speakers"]),
            mel_config=MelConfig.from_dict(config["mel"]),
            text_settings=text_settings,
        )


@dataclass
class OptimizerSpec:
    """An optimizer and its learning rate as a function of (step, epoch); the loop sets the rate
    before every step, so a resumed run needs no scheduler state to continue exactly."""

    name: str
    optimizer: torch.optim.Optimizer
    lr_at: Callable[[int, int], float]


class Task:
    """Base of the per-model hooks. Subclasses fill :attr:`nets` (name → module; the inference
    module under :attr:`inference_name`) in ``__init__`` and implement the hooks below."""

    inference_name: str = "model"
    # The family's own training settings (a dataclass; the recipe's ``options``), or None.
    options_class: type | None = None
    load_wave: bool = False
    default_grad_clip: float = 0.0
    # True: the clip (recipe grad_clip or default_grad_clip) clamps each gradient element, not the norm.
    grad_clip_by_value: bool = False

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        self.recipe = recipe
        self.model_name = recipe.model  # the registry family this task trains
        self.options = self.parse_options(recipe.options)
        self.info = info
        self.device = device
        self.nets: dict[str, nn.Module] = {}
        self.aligned_mel_dir: Path | None = None
        # What the training step calls: the same modules, wrapped in DDP when distributed.
        self.runtime: dict[str, nn.Module] = {}

    @classmethod
    def option_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls.options_class)} if cls.options_class is not None else set()

    @classmethod
    def parse_options(cls, values: Mapping[str, Any]) -> Any:
        """The recipe's ``options`` as :attr:`options_class`; RecipeError naming a bad key."""
        unknown = sorted(set(values) - cls.option_names())
        if unknown:
            known = ", ".join(sorted(cls.option_names())) or "none"
            raise RecipeError(f"options: unknown key(s) {', '.join(map(repr, unknown))}; known: {known}")
        if cls.options_class is None:
            return None
        check_field_types(cls.options_class, values, "options")
        try:
            return cls.options_class(**values)
        except (TypeError, ValueError) as error:
            raise RecipeError(f"options: {error}") from error

    def net(self, name: str) -> nn.Module:
        return self.runtime.get(name, self.nets[name])

    def inference_module(self) -> nn.Module:
        return self.nets[self.inference_name]

    def model_config(self) -> dict[str, Any]:
        return self.inference_module().config.to_dict()

    def text_frontend(self) -> dict[str, Any] | None:
        return None

    def grad_clip(self) -> float:
        clip = self.recipe.train.grad_clip
        return self.default_grad_clip if clip is None else float(clip)

    def train(self, mode: bool = True) -> None:
        for module in self.nets.values():
            module.train(mode)

    def trainable(self, *names: str) -> list[nn.Parameter]:
        return [p for name in names for p in self.nets[name].parameters() if p.requires_grad]

    # --- hooks ------------------------------------------------------------------------------
    def optimizers(self) -> list[OptimizerSpec]:
        raise NotImplementedError

    def initialize(self, batch: Batch) -> None:
        """Data-dependent initialisation on the first batch of a fresh (not warm-started) run."""

    def prepare_data(self, rank: int, world_size: int) -> None:
        """Build caches the data loader needs (rank 0 writes, others wait in the loop's barrier).
        By default: a vocoder with ``vocoder_finetune_from`` caches that acoustic model's
        teacher-forced mels, which :meth:`wrap_dataset` then trains on."""
        source = self.recipe.vocoder_finetune_from
        if not source:
            return
        from moksori.training.warm_start import cache_aligned_mels

        self.aligned_mel_dir = Path(self.recipe.run_dir) / "aligned_mels"
        if rank == 0:
            cache_aligned_mels(source, self.info.root, self.aligned_mel_dir, device=self.device)

    def wrap_dataset(self, dataset: torch.utils.data.Dataset) -> torch.utils.data.Dataset:
        if self.aligned_mel_dir is None:
            return dataset
        from moksori.training.warm_start import AlignedMelDataset

        return AlignedMelDataset(dataset, self.aligned_mel_dir)

    def train_step(self, batch: Batch, step: int, ctx: "StepContext") -> dict[str, float]:
        raise NotImplementedError

    def validate(self, batch: Batch) -> dict[str, float]:
        raise NotImplementedError

    def examples(self, batch: Batch, step: int) -> Examples:
        return Examples()


def check_model_config(config_cls: type, values: Mapping[str, Any]) -> None:
    """RecipeError naming a ``model_config`` key whose value is not of its field's type
    (``use_cumm_attention: "no"`` would otherwise be true). Unknown keys are the config's own
    check (a vocoder config accepts some that older voices wrote)."""
    check_field_types(config_cls, {key: value for key, value in values.items() if key != "preset"}, "model_config")


def vocoder_config(
    recipe: Recipe, info: DatasetInfo, config_cls: type, default_preset: str, framing: dict[str, str]
) -> Any:
    """A vocoder config: preset, recipe keys, then the data's framing (``framing``: config key →
    MelConfig field, in the family's own names)."""
    values = dict(recipe.model_config)
    check_model_config(config_cls, values)
    preset = values.pop("preset", default_preset)
    try:
        base = config_cls.preset(str(preset)).to_dict()
    except ValueError as error:
        raise RecipeError(f"model_config.preset: {error}") from error
    for key, mel_key in framing.items():
        data_value = getattr(info.mel_config, mel_key)
        if key in values and values[key] != data_value:
            raise RecipeError(
                f"model_config.{key} is {values[key]} but the data's mel config has {mel_key}={data_value}"
            )
        values[key] = data_value
    base.update(values)
    try:
        return config_cls.from_dict(base)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"model_config: {error}") from error


def build_task(recipe: Recipe, info: DatasetInfo, device: torch.device) -> Task:
    """The training task of the recipe's model family (from the registry)."""
    try:
        family = registry.get(recipe.model)
        cls = family.task_class()
    except ValueError as error:
        raise RecipeError(f"model: {error}") from None
    return cls(recipe, info, device)
