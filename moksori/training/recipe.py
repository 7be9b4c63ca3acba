"""Training recipes: a YAML file → dataclasses, with unknown keys rejected by name.

A recipe names the model, its config (a preset plus explicit keys), the preprocessed data
folder, the training settings and the run folder::

    model: <family>               # a registered family; `moksori models` lists them
    model_config: {preset: base}
    data: {dir: data/kss_processed, batch_size: 32}
    train: {steps: 300000, eval_interval: 1000, checkpoint_interval: 5000}
    run_dir: runs/kss_glowtts

Relative paths (``data.dir``, ``run_dir``, ``init_from``, ``vocoder_finetune_from``) are read
relative to the current directory, as on the command line.

A file may also hold several stages under ``stages:`` (e.g. the acoustic model, then its
vocoder); :func:`load_recipe` picks one by name with ``stage=``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = ["AMP_MODES", "DataRecipe", "Recipe", "RecipeError", "TrainRecipe", "load_recipe", "recipe_stages"]

AMP_MODES = ("off", "bf16", "fp16")


class RecipeError(ValueError):
    """A recipe file or dict that does not describe a valid training run."""


@dataclass
class DataRecipe:
    """Where the preprocessed folder is and how it is batched."""

    dir: str = ""
    batch_size: int = 16
    num_workers: int = 0
    bucket_size_multiplier: int = 50
    # Validation uses at most this many batches of val.jsonl (0: all of them).
    max_val_batches: int = 0

    def check(self, where: str) -> None:
        if not self.dir:
            raise RecipeError(f"{where}.dir: the preprocessed data folder is required")
        _positive(self.batch_size, f"{where}.batch_size")
        _positive(self.bucket_size_multiplier, f"{where}.bucket_size_multiplier")
        if self.num_workers < 0 or self.max_val_batches < 0:
            raise RecipeError(f"{where}: num_workers and max_val_batches must not be negative")


@dataclass
class TrainRecipe:
    """Loop settings, the same for every family. ``lr`` is the family's base learning rate
    (Glow-TTS: the scale of its Noam schedule; GAN vocoders: AdamW's rate); ``lr`` /
    ``grad_clip`` left at ``None`` take the family's own default (Glow-TTS: Noam scale 1.0,
    clip 5.0; HiFi-GAN: the config's learning_rate, no clip). ``grad_clip`` bounds the global
    gradient norm, except for Glow-TTS, where it clamps each gradient element (as its reference
    does). ``grad_clip: 0`` turns clipping off (the norm is still logged). Settings only one
    family has are its ``options``."""

    steps: int = 100_000
    lr: float | None = None
    warmup_steps: int = 4000
    grad_clip: float | None = None
    eval_interval: int = 1000
    checkpoint_interval: int = 5000
    keep_last: int = 5
    seed: int = 1234
    amp: str = "off"
    log_interval: int = 50
    # Consecutive steps with a non-finite loss or gradient norm before training stops.
    max_bad_steps: int = 20
    progress: bool = True

    def check(self, where: str) -> None:
        _positive(self.steps, f"{where}.steps")
        for name in ("eval_interval", "checkpoint_interval", "keep_last", "log_interval", "max_bad_steps"):
            _positive(getattr(self, name), f"{where}.{name}")
        if self.warmup_steps < 0:
            raise RecipeError(f"{where}.warmup_steps: must be >= 0, got {self.warmup_steps}")
        if self.amp not in AMP_MODES:
            raise RecipeError(f"{where}.amp: must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.lr is not None and self.lr <= 0:
            raise RecipeError(f"{where}.lr: must be positive, got {self.lr}")
        if self.grad_clip is not None and self.grad_clip < 0:
            raise RecipeError(f"{where}.grad_clip: must be >= 0 (0 turns clipping off), got {self.grad_clip}")


@dataclass
class Recipe:
    """One training run. ``model_config`` holds ``preset`` (Glow-TTS: base | tiny; HiFi-GAN:
    v1 | v2 | v3 | tiny) and/or explicit config keys that override it. ``freeze`` lists
    parameter-name prefixes to keep fixed (e.g. ``decoder``, ``encoder.encoder``; for a vocoder
    also ``mpd``/``msd``). ``init_from`` warm-starts from a checkpoint or voice bundle;
    ``vocoder_finetune_from`` trains a vocoder on mels from that acoustic checkpoint, aligned
    to the real audio. ``options`` are the family's own training settings (its task's
    ``options_class``: e.g. a GAN vocoder's ``adversarial``, ``stft_loss``; Glow-TTS's
    ``n_audio_examples``); older recipes that put them under ``train`` are read the same."""

    model: str
    data: DataRecipe
    run_dir: str
    model_config: dict[str, Any] = field(default_factory=dict)
    train: TrainRecipe = field(default_factory=TrainRecipe)
    freeze: list[str] = field(default_factory=list)
    init_from: str | None = None
    vocoder_finetune_from: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def check(self) -> None:
        from moksori.models import registry

        try:
            family = registry.get(self.model)
        except ValueError as error:
            raise RecipeError(f"model: {error}") from None
        if not family.trainable:
            raise RecipeError(f"model: {self.model} is not trained; trainable: {', '.join(registry.names(trainable=True))}")
        if not self.run_dir:
            raise RecipeError("run_dir: the run folder is required")
        if not isinstance(self.model_config, dict):
            raise RecipeError("model_config: must be a mapping of config keys (and an optional preset)")
        if not all(isinstance(prefix, str) and prefix for prefix in self.freeze):
            raise RecipeError("freeze: must be a list of parameter-name prefixes")
        if self.vocoder_finetune_from and family.role != registry.VOCODER:
            vocoders = ", ".join(registry.names(registry.VOCODER, trainable=True))
            raise RecipeError(f"vocoder_finetune_from: only a vocoder (model: {vocoders}) can use it")
        self.data.check("data")
        self.train.check("train")
        family.task_class().parse_options(self.options)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "recipe") -> "Recipe":
        if not isinstance(values, Mapping):
            raise RecipeError(f"{where}: expected a mapping, got {type(values).__name__}")
        values = dict(values)
        _reject_unknown(cls, values, where)
        for key in ("model", "data", "run_dir"):
            if key not in values:
                raise RecipeError(f"{where}: missing required key {key!r}")
        values["options"], train = _family_options(values, where)
        values["data"] = _section(DataRecipe, values["data"], f"{where}.data")
        values["train"] = _section(TrainRecipe, train, f"{where}.train")
        values["model_config"] = dict(values.get("model_config") or {})
        values["freeze"] = list(values.get("freeze") or [])
        recipe = cls(**values)
        recipe.check()
        return recipe


def _family_options(values: Mapping[str, Any], where: str) -> tuple[dict[str, Any], Any]:
    """The recipe's ``options``, and its ``train`` section without the keys that are the family's
    options (recipes written before options existed kept them under ``train``)."""
    options = values.get("options") or {}
    train = values.get("train") or {}
    if not isinstance(options, Mapping):
        raise RecipeError(f"{where}.options: expected a mapping, got {type(options).__name__}")
    if not isinstance(train, Mapping):
        return dict(options), train
    from moksori.models import registry

    try:
        known = registry.get(values["model"]).task_class().option_names()
    except (ValueError, ImportError, AttributeError):
        return dict(options), train  # an unknown model: check() says so
    moved = {key: value for key, value in train.items() if key in known}
    return {**moved, **options}, {key: value for key, value in train.items() if key not in known}


def _section(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, Mapping):
        raise RecipeError(f"{where}: expected a mapping, got {type(values).__name__}")
    _reject_unknown(cls, values, where)
    check_field_types(cls, values, where)
    return cls(**dict(values))


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "text", type(None): "null"}


def check_field_types(cls: type, values: Mapping[str, Any], where: str) -> None:
    """RecipeError naming the first key whose value does not fit its field's scalar type (bool,
    int, float, str, or one of them or None); a float field takes an integer too."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        hint = hints.get(key)
        union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        expected = typing.get_args(hint) if union else (hint,)
        if not all(kind in _TYPE_NAMES for kind in expected) or any(_fits(value, kind) for kind in expected):
            continue
        note = ""
        if float in expected and isinstance(value, str) and _is_number(value):
            note = f" (YAML reads a number without a dot as text: write {_with_dot(value)})"
        wanted = " or ".join(_TYPE_NAMES[kind] for kind in expected if kind is not type(None))
        raise RecipeError(f"{where}.{key}: expected {wanted}, got {value!r}{note}")


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _with_dot(text: str) -> str:
    mantissa, _, exponent = text.lower().partition("e")
    return (mantissa if "." in mantissa else f"{mantissa}.0") + (f"e{exponent}" if exponent else "")


def _reject_unknown(cls: type, values: Mapping[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")


def _positive(value: int, name: str) -> None:
    if not isinstance(value, int) or value < 1:
        raise RecipeError(f"{name}: must be a positive integer, got {value!r}")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RecipeError(f"cannot read recipe {path}: {error}") from error
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from error


def recipe_stages(source: str | Path | Mapping[str, Any]) -> list[str]:
    """Names of the stages in a multi-stage recipe file or dict (empty for a single stage)."""
    data = source if isinstance(source, Mapping) else _read_yaml(Path(source))
    if isinstance(data, Mapping) and "stages" in data:
        return [str(stage.get("name", i)) for i, stage in enumerate(data["stages"])]
    return []


def load_recipe(source: str | Path | Mapping[str, Any] | Recipe, stage: str | None = None) -> Recipe:
    """A recipe from a YAML file, a dict, or a ready :class:`Recipe`.

    A multi-stage file (``stages: [{name: acoustic, ...}, {name: vocoder, ...}]``) needs
    ``stage`` unless it has exactly one stage; keys under ``defaults:`` apply to every stage.
    """
    if isinstance(source, Recipe):
        return source
    where = "recipe"
    if isinstance(source, Mapping):
        data: Any = source
    else:
        where = str(source)
        data = _read_yaml(Path(source))
    if not isinstance(data, Mapping):
        raise RecipeError(f"{where}: expected a mapping at the top level")
    if "stages" not in data:
        if stage is not None:
            raise RecipeError(f"{where}: has no stages, but stage {stage!r} was asked for")
        return Recipe.from_dict(data, where)
    return _pick_stage(data, stage, where)


def _pick_stage(data: Mapping[str, Any], stage: str | None, where: str) -> Recipe:
    _reject_unknown_top = sorted(set(data) - {"stages", "defaults"})
    if _reject_unknown_top:
        raise RecipeError(f"{where}: a multi-stage recipe holds only 'stages' and 'defaults', got {_reject_unknown_top}")
    stages = data["stages"]
    if not isinstance(stages, list) or not stages:
        raise RecipeError(f"{where}.stages: expected a non-empty list")
    names = [str(s.get("name", i)) if isinstance(s, Mapping) else str(i) for i, s in enumerate(stages)]
    if stage is None:
        if len(stages) != 1:
            raise RecipeError(f"{where}: choose a stage ({', '.join(names)})")
        index = 0
    elif stage in names:
        index = names.index(stage)
    else:
        raise RecipeError(f"{where}: no stage {stage!r}; stages: {', '.join(names)}")
    merged = _merge(dict(data.get("defaults") or {}), dict(stages[index]))
    merged.setdefault("name", names[index])
    return Recipe.from_dict(merged, f"{where}.stages[{names[index]}]")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), dict(value))
        else:
            out[key] = value
    return out
