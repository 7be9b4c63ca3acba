"""Recordings → preprocessed → trained → bundled voice: the one path that ``moksori finetune``, the
studio's training jobs, the demo and the benchmarks share.

* :func:`voice_stages` reads a recipe's stages (an acoustic model, then optionally a vocoder) and
  checks them against the registry;
* :func:`prepare_data` preprocesses a raw dataset (or takes an already preprocessed folder);
* :func:`train_stage` trains one stage in this process (the studio runs it in a child process,
  through :func:`child_main`, so that it can be cancelled and followed);
* :func:`make_voice` trains the stages in order (wiring warm starts and the vocoder's
  teacher-forced mels) and bundles the result.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moksori.models import registry
from moksori.training.recipe import Recipe, RecipeError, load_recipe, recipe_stages

__all__ = [
    "Stage",
    "StageRunner",
    "make_voice",
    "prepare_data",
    "train_stage",
    "voice_has",
    "voice_stages",
]

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """One training stage of a voice: its name in the recipe, the recipe, and the family's role."""

    name: str
    recipe: Recipe
    role: str


# (stage name, ready recipe, resume) -> the stage's latest checkpoint
StageRunner = Callable[[str, Recipe, bool], Path]


def voice_stages(source: str | Path | Mapping[str, Any], where: str | None = None) -> list[Stage]:
    """The stages of a recipe file or dict that make a voice: one acoustic model first, then at
    most one vocoder. :class:`RecipeError` otherwise, naming what is wrong."""
    where = where or (str(source) if not isinstance(source, Mapping) else "recipe")
    names: list[str | None] = list(recipe_stages(source)) or [None]
    stages = []
    for name in names:
        recipe = load_recipe(source, stage=name)
        stages.append(Stage(name or "model", recipe, registry.get(recipe.model).role))
    roles = [stage.role for stage in stages]
    if roles.count(registry.ACOUSTIC) != 1 or roles[0] != registry.ACOUSTIC or roles.count(registry.VOCODER) > 1:
        raise RecipeError(f"{where}: a voice recipe trains one acoustic model first, optionally then one vocoder; it has {roles}")
    return stages


def prepare_data(
    dataset: str | Path, data_dir: str | Path, config: Any, *, resume: bool = False, workers: int = 2,
    progress: bool = True,
) -> Path:
    """The preprocessed folder to train on: ``dataset`` itself when it is one (it has config.json),
    else ``data_dir``, made now with ``config`` (a PreprocessConfig) or reused when resuming."""
    dataset, data_dir = Path(dataset), Path(data_dir)
    if (dataset / "config.json").is_file():
        return dataset
    if resume and (data_dir / "config.json").is_file():
        log.info("resuming: using the preprocessed data in %s", data_dir)
        return data_dir
    from moksori.data.preprocess import preprocess_dataset
    from moksori.data.report import format_report

    report = preprocess_dataset(dataset, data_dir, config, workers=workers, progress=progress)
    log.info("%s", format_report(report))
    if report.n_train < 1:
        raise ValueError(
            f"{dataset}: no usable clips ({report.n_kept} kept, {report.n_rejected} rejected; "
            f"see {data_dir / 'rejected.jsonl'})"
        )
    return data_dir


def train_stage(name: str, recipe: Recipe, resume: bool) -> Path:
    """Train one stage in this process; returns its ``latest.pt``."""
    from moksori.training.loop import train

    run_dir = train(recipe, resume=resume)
    latest = Path(run_dir) / "latest.pt"
    if not latest.is_file():
        raise RuntimeError(f"training stage {name} ended without a checkpoint in {run_dir}")
    return latest


def voice_has(voice_dir: str | Path, role: str) -> bool:
    """Whether a voice folder has trained weights for ``role`` (a Griffin-Lim voice has no vocoder)."""
    from moksori.synthesis.bundle import ROLE_FILES

    return (Path(voice_dir) / ROLE_FILES[role]).is_file()


def stage_recipe(
    stage: Stage, data_dir: Path, run_dir: Path, *, init_from: str | Path | None, checkpoints: Mapping[str, Path],
    progress: bool,
) -> Recipe:
    """The stage's recipe for this run: its data and run folders, a warm start from ``init_from``
    (a voice with weights of the stage's role, unless the recipe names its own), and for a vocoder
    that asks for it, the teacher-forced mels of this run's acoustic model."""
    recipe = copy.deepcopy(stage.recipe)
    recipe.data.dir = str(data_dir)
    recipe.run_dir = str(run_dir)
    recipe.train.progress = progress
    if init_from is not None and recipe.init_from is None and voice_has(init_from, stage.role):
        recipe.init_from = str(init_from)
    if stage.role == registry.VOCODER and recipe.vocoder_finetune_from and registry.ACOUSTIC in checkpoints:
        recipe.vocoder_finetune_from = str(checkpoints[registry.ACOUSTIC])
    return recipe


def make_voice(
    data_dir: str | Path,
    stages: list[Stage],
    out: str | Path,
    *,
    run_dir: str | Path,
    name: str | None = None,
    init_from: str | Path | None = None,
    reuse_vocoder: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    run_stage: StageRunner = train_stage,
    on_stage: Callable[[int, Stage, Recipe], None] | None = None,
    description: str = "",
    extra: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    licence: str = "unspecified",
    overwrite: bool = False,
) -> Path:
    """Train ``stages`` in order on the preprocessed ``data_dir`` (each in ``run_dir/<stage name>``)
    and bundle the result into ``out`` (``extra``, or what it returns when called after training, goes
    into voice.json's training summary). Without a vocoder stage the voice uses ``reuse_vocoder`` (a
    voice folder or vocoder checkpoint) or Griffin-Lim. ``resume`` continues stages that have a
    ``latest.pt``; ``run_stage`` trains one stage (default: in this process)."""
    from moksori.synthesis import make_bundle

    data_dir, run_dir = Path(data_dir), Path(run_dir)
    checkpoints: dict[str, Path] = {}
    for index, stage in enumerate(stages):
        stage_dir = run_dir / stage.name
        recipe = stage_recipe(stage, data_dir, stage_dir, init_from=init_from, checkpoints=checkpoints, progress=progress)
        if on_stage is not None:
            on_stage(index, stage, recipe)
        checkpoints[stage.role] = run_stage(stage.name, recipe, resume and (stage_dir / "latest.pt").is_file())
    vocoder = checkpoints.get(registry.VOCODER, reuse_vocoder)
    return make_bundle(
        checkpoints[registry.ACOUSTIC], out, vocoder_ckpt=vocoder, name=name, description=description,
        extra=extra() if callable(extra) else extra, licence=licence, overwrite=overwrite,
    )


def child_main(argv: list[str]) -> int:
    """``python -m moksori.training.pipeline [train] RECIPE_YAML [--resume]``: train one stage (the
    studio's training child runs this)."""
    import argparse

    if argv[:1] == ["train"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="python -m moksori.training.pipeline")
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    recipe = load_recipe(args.recipe)
    print(train_stage(recipe.name or "model", recipe, args.resume))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(child_main(sys.argv[1:]))
