"""Training plans of the studio: what a run will train, from which voice's weights, about how
long it takes, and whether a warm start keeps the base voice's weights.

* A *fine-tune* plan (the studio's default path) trains the base voice's own architectures (its
  voice.json's acoustic model and vocoder) with the small-data settings of the ``finetune_ko``
  recipe, which ``moksori finetune`` uses; the recordings are preprocessed with the base voice's
  text front end and mel parameters, so every weight fits.
* A *recipe* plan trains a recipe's models from scratch or, warm-started, from a voice.

Before a run starts, the base voice's weights are matched against the modules the run would build,
by name and shape, with the training loop's own warm start; a plan that would drop most of them
(a different architecture or model family) is refused, naming the counts.

The time estimate adds, per stage, the costs that do not shrink with the model (starting the training
process, a floor per step for data loading and the loop, each validation pass, each checkpoint) to
the measured cost of the shipped voice's acoustic model on a 2-core CPU (see :data:`REFERENCE_COST`)
scaled by each model's parameter count and batch size, and per run the data export, preprocessing
and bundling: a rough figure, meant to tell minutes from hours (see the measurements below).
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["FINETUNE_RECIPE", "MIN_LOADED_SHARE", "PlanError", "TrainingPlan", "WeightMatch", "make_plan",
           "pick_finetune_recipe", "stage_seconds"]

FINETUNE_RECIPE = "finetune_ko"
# A warm start that would load fewer than this share of the base voice's tensors is refused.
MIN_LOADED_SHARE = 0.5
# Seconds per training step of a measured run on a 2-core CPU (2 torch threads): the shipped
# voice's Glow-TTS "small" (7.2 M parameters) at batch 8, 0.66 s per step (benchmarks/README.md,
# transfer learning). Other models are scaled from it by parameter count and batch size (vocoders
# too: a rough figure, not a measurement of each family).
REFERENCE_COST = (0.66, 7.18e6, 8)
PREPROCESS_S_PER_MINUTE = 6.0  # feature extraction of one minute of recordings, on the same CPU
# Costs that do not shrink with the model, measured on the same 2-core CPU (shared with other work:
# one run each while it was quiet, so a few tens of percent either way) with
# `OMP_NUM_THREADS=2 moksori train RECIPE` on a 24-clip espeak set (`moksori sample-dataset --n 24`,
# then `moksori preprocess`), the recipe cut to N steps, wall time:
#   tiny_glowtts (0.11 M parameters, batch 4): 40 steps 3.7 s, 200 steps 7.1 s, i.e. 0.021 s a step
#     (the parameter scaling alone said 0.005) and 2.7 s before the first step and after the last;
#     200 steps validating every 50: 11.1 s (1.0 s a pass); checkpointing every 50: 8.6 s (0.45 s each).
#   tiny_hifigan (0.05 M, batch 4): 20 steps 5.1 s, 0.027 s a step (scaling alone: 0.002).
#   finetune_ko's Glow-TTS small (7.2 M, batch 8) 0.50 s a step, Vocos small (3.6 M, batch 16) 0.45 s
#     (the progress bar's steps/s at its fastest; the machine was busy by then).
#   A studio run of tiny_glowtts (300 steps, 5 takes, 16 s of speech; `OMP_NUM_THREADS=1 moksori serve`),
#   Start training to succeeded:
#     26.6 s (the old estimate: 3 s): 2.4 s export and preprocessing, 20.6 s training, 3.6 s the bundle.
STEP_FLOOR_S = 0.02  # a step of the smallest model: data loading, optimiser, loop bookkeeping
STAGE_START_S = 3.0  # the training process starting, building its model and data; its last checkpoint
EVAL_S = 1.0  # one validation pass (plus one step's compute for its batches): examples, plots, logs
CHECKPOINT_S = 0.45  # one checkpoint of a tiny model (plus its weights and optimiser state at WRITE_BYTES_PER_S)
WRITE_BYTES_PER_S = 300e6  # torch.save of a 7.2 M-parameter model with Adam (86 MB): 0.15-0.6 s
RUN_START_S = 6.0  # a run's export, preprocessing start and voice bundle


class PlanError(ValueError):
    """The plan cannot run: the message says why and what to choose instead."""


@dataclass
class WeightMatch:
    """How many of the base voice's tensors a stage's warm start loads (name and shape match)."""

    stage: str
    model: str
    loaded: int = 0
    skipped: int = 0
    examples: list[str] = field(default_factory=list)  # a few skipped tensors and why
    error: str | None = None  # the weights cannot be used at all (another family)

    @property
    def share(self) -> float:
        total = self.loaded + self.skipped
        return self.loaded / total if total else 0.0

    def line(self, base: str) -> str:
        if self.error:
            return f"{self.stage} ({self.model}): no weights of {base} can be used: {self.error}"
        return (f"{self.stage} ({self.model}): warm start from {base} loads {self.loaded} of "
                f"{self.loaded + self.skipped} tensors, skipped {self.skipped}")

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "model": self.model, "loaded": self.loaded, "skipped": self.skipped,
                "examples": self.examples, "error": self.error}


@dataclass
class TrainingPlan:
    """What a studio run will do; ``stages`` and ``preprocess`` go into the run's job.json."""

    kind: str  # "finetune" | "recipe"
    recipe: str
    base_name: str | None
    base_path: str | None
    stages: list[dict[str, Any]]  # {"name", "kind": acoustic|vocoder, "recipe": Recipe.to_dict()}
    preprocess: dict[str, Any] | None  # the base voice's text front end and mel parameters
    matches: list[WeightMatch]
    estimate_s: float
    problem: str | None = None
    reuse_vocoder: str | None = None  # the base voice, whose vocoder the result keeps as it is

    def summary(self) -> str:
        """One line for the page and the run's log."""
        parts = [f"{s['name']} {s['recipe']['model']} {s['recipe']['train']['steps']} steps" for s in self.stages]
        start = f"fine-tune from {self.base_name}" if self.kind == "finetune" else (
            f"recipe {self.recipe}" + (f" warm-started from {self.base_name}" if self.base_name else " from scratch"))
        if self.reuse_vocoder:
            parts.append(f"{self.base_name}'s vocoder as it is")
        return f"{start}: {', then '.join(parts)}; about {format_duration(self.estimate_s)} on a 2-core CPU"

    def weights_line(self) -> str:
        return "; ".join(m.line(self.base_name or "") for m in self.matches) or "no warm start (training from scratch)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "recipe": self.recipe,
            "base_voice": self.base_name,
            "stages": [_stage_json(s) for s in self.stages],
            "weights": [m.to_dict() for m in self.matches],
            "weights_summary": self.weights_line(),
            "estimate_s": round(self.estimate_s),
            "estimate": format_duration(self.estimate_s),
            "summary": self.summary(),
            "ok": self.problem is None,
            "problem": self.problem,
        }


def make_plan(
    recipe_stages: list[dict[str, Any]] | None,
    recipe: str,
    base: tuple[str, Path] | None,
    *,
    language: str,
    minutes: float,
    finetune_recipe: Path | None = None,
) -> TrainingPlan:
    """The plan of a run. ``base`` is (name, bundle folder) of the voice to start from; with
    ``recipe_stages`` None it is a fine-tune plan (``finetune_recipe``'s settings, the base's
    architectures), else the recipe's stages warm-started from ``base`` when given. ``language``
    is the studio voice's, ``minutes`` its kept recordings. PlanError when the base voice cannot
    be fine-tuned at all; a plan that would drop most weights has ``problem`` set."""
    base_json = _base_voice(base, language) if base is not None else None
    if recipe_stages is None:
        if base is None or base_json is None or finetune_recipe is None:
            raise PlanError("fine-tuning needs a voice to start from")
        kind, stages = "finetune", finetune_stages(base_json, base[1], finetune_recipe)
    else:
        kind, stages = "recipe", copy.deepcopy(recipe_stages)
    preprocess = preprocess_settings(base_json) if base_json is not None else None
    matches, estimate = _inspect_cached(stages, base, base_json, language)
    estimate += RUN_START_S + minutes * PREPROCESS_S_PER_MINUTE
    plan = TrainingPlan(kind, recipe, base[0] if base else None, str(base[1]) if base else None, stages, preprocess,
                        matches, estimate)
    plan.problem = _refusal(plan)
    if kind == "finetune" and len(stages) == 1 and base_json is not None and "model_name" in base_json["vocoder"]:
        plan.reuse_vocoder = str(base[1])  # the fine-tune settings train no vocoder: keep the base voice's
    return plan


def pick_finetune_recipe(recipes: dict[str, Path], base_dir: Path) -> tuple[str, Path] | None:
    """The fine-tune settings for a base voice: a ``finetune*`` recipe whose acoustic stage trains
    the base voice's model family (``finetune_tacotron2_ko`` for a Tacotron2 voice), else
    ``finetune_ko``; None when there is neither."""
    from moksori.synthesis.bundle import VoiceError, read_voice_json
    from moksori.training.finetune import _stage_recipes
    from moksori.training.recipe import RecipeError

    try:
        family = read_voice_json(base_dir)["acoustic"].get("model_name")
    except VoiceError:
        family = None
    for name, path in sorted(recipes.items()):
        if not name.startswith("finetune") or name == FINETUNE_RECIPE:
            continue
        try:
            if _stage_recipes(path)["acoustic"].get("model") == family:
                return name, path
        except (RecipeError, OSError, ValueError):
            continue
    return (FINETUNE_RECIPE, recipes[FINETUNE_RECIPE]) if FINETUNE_RECIPE in recipes else None


def finetune_stages(base_json: dict[str, Any], base_dir: Path, recipe_file: Path) -> list[dict[str, Any]]:
    """The stages of ``moksori finetune`` for a base voice: the recipe's training settings with the
    base voice's models and architectures, warm-started from it (no vocoder stage for a
    Griffin-Lim base voice)."""
    from moksori.models import registry
    from moksori.training.finetune import _stage_recipes
    from moksori.training.recipe import Recipe

    recipes = _stage_recipes(recipe_file)
    stages = []
    for name, role in (("acoustic", registry.ACOUSTIC), ("vocoder", registry.VOCODER)):
        part, base_model = recipes[name], base_json[name]
        if "model_name" not in base_model or part["train"].get("steps", 1) < 1:
            continue  # a Griffin-Lim base voice, or a recipe that skips the vocoder
        if part.get("model") != base_model["model_name"]:
            # The recipe's rate and options are its own family's; another family keeps its defaults.
            part["train"].pop("lr", None)
            part.pop("options", None)
        part.update(model=base_model["model_name"], model_config=dict(base_model["model_config"]),
                    init_from=str(base_dir))
        part.pop("vocoder_finetune_from", None)
        part.setdefault("run_dir", f"runs/{name}")
        recipe = Recipe.from_dict(part, f"{recipe_file.name}, {name} stage")
        stages.append({"name": name, "kind": role, "recipe": recipe.to_dict()})
    return stages


def preprocess_settings(base_json: dict[str, Any]) -> dict[str, Any]:
    """The preprocessing that makes data fit the base voice: its text front end and mel."""
    text = base_json["text_frontend"]
    return {"language": text["language"], "add_blank": bool(text.get("add_blank", False)),
            "use_pronunciation": bool(text.get("use_pronunciation", True)), "mel": dict(base_json["audio"]["mel"])}


def format_duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} min" if minutes < 90 else f"{minutes / 60:.1f} h"


# --- checks -----------------------------------------------------------------------------------


def _base_voice(base: tuple[str, Path], language: str) -> dict[str, Any]:
    from moksori.synthesis.bundle import VoiceError, read_voice_json
    from moksori.training.finetune import _is_current_table

    name, path = base
    try:
        data = read_voice_json(path)
    except VoiceError as error:
        raise PlanError(f"voice {name!r} cannot be fine-tuned: {error}") from error
    text = data["text_frontend"]
    if text.get("language") != language:
        raise PlanError(f"voice {name!r} speaks {text.get('language')!r} but this voice is {language!r}; "
                        f"fine-tune from a voice of the same language, or train from scratch")
    if not _is_current_table(text):
        raise PlanError(f"voice {name!r} uses symbol table {(text.get('symbol_table') or {}).get('version')!r}, which "
                        "this moksori does not preprocess with; fine-tune another voice, or train from scratch")
    return data


def _refusal(plan: TrainingPlan) -> str | None:
    for match in plan.matches:
        if match.error or match.share < MIN_LOADED_SHARE:
            why = match.error or (f"only {match.loaded} of its {match.loaded + match.skipped} tensors fit "
                                  f"(names or shapes differ, e.g. {'; '.join(match.examples[:2])})")
            return (f"recipe {plan.recipe!r} does not fit voice {plan.base_name!r}: its {match.stage} stage would "
                    f"drop most of the voice's weights ({why}), which is training from scratch; choose "
                    f"\"fine-tune from {plan.base_name}\" (the voice's own architecture), or train without a base voice")
    return None


_INSPECTED: dict[str, tuple[list[WeightMatch], float]] = {}
_INSPECTED_MAX = 32
_INSPECTED_LOCK = threading.Lock()
# Building a GPU-sized recipe's models takes a few hundred MB for half a second; one build at a
# time, or concurrent plan requests (each recipe and base a new key) add up to gigabytes.
_INSPECT_SLOT = threading.Lock()


def _inspect_cached(
    stages: list[dict[str, Any]], base: tuple[str, Path] | None, base_json: dict[str, Any] | None, language: str
) -> tuple[list[WeightMatch], float]:
    """:func:`_inspect`, remembered per stages, base voice (its files' digests) and language:
    building GPU-sized models takes seconds, and the page asks again whenever a choice changes."""
    import json

    files = (base_json or {}).get("files")
    key = json.dumps([stages, str(base[1]) if base else None, files, language], sort_keys=True, default=str)
    with _INSPECTED_LOCK:
        found = _INSPECTED.get(key)
    if found is None:
        with _INSPECT_SLOT:
            with _INSPECTED_LOCK:
                found = _INSPECTED.get(key)  # built while this request waited
            if found is None:
                from moksori.synthesis.synthesizer import release_memory

                found = _inspect(stages, base, base_json, language)
                release_memory()  # the models are gone; hand their heap back (the server's malloc keeps it)
        with _INSPECTED_LOCK:
            if len(_INSPECTED) >= _INSPECTED_MAX:
                _INSPECTED.pop(next(iter(_INSPECTED)))
            _INSPECTED[key] = found
    return copy.deepcopy(found[0]), found[1]


def _inspect(
    stages: list[dict[str, Any]], base: tuple[str, Path] | None, base_json: dict[str, Any] | None, language: str
) -> tuple[list[WeightMatch], float]:
    """Build each stage's modules as training will (on the CPU, not trained): the warm start's
    counts when a base voice has weights for the stage, and the stage's estimated seconds."""
    import torch

    from moksori.training.pipeline import voice_has
    from moksori.training.recipe import Recipe
    from moksori.training.tasks import build_task

    info = _dataset_info(base_json, language)
    matches, seconds = [], 0.0
    for stage in stages:
        recipe = Recipe.from_dict(stage["recipe"], f"stage {stage['name']}")
        task = build_task(recipe, info, torch.device("cpu"))
        params = sum(p.numel() for p in task.inference_module().parameters())
        seconds += stage_seconds(recipe.train, params, recipe.data.batch_size)
        if base is not None and voice_has(base[1], stage["kind"]):
            matches.append(_match(stage["name"], task, base[1]))
        del task
    return matches, seconds


def _match(stage: str, task: Any, base_dir: Path) -> WeightMatch:
    from moksori.training.warm_start import warm_start

    match = WeightMatch(stage, task.model_name)
    try:
        report = warm_start(task, base_dir)
    except (ValueError, FileNotFoundError, KeyError) as error:
        match.error = str(error)
        return match
    match.loaded, match.skipped, match.examples = len(report.loaded), len(report.skipped), report.skipped[:3]
    return match


def _dataset_info(base_json: dict[str, Any] | None, language: str) -> Any:
    """What the run's preprocessed data will look like: the base voice's front end and mel, or
    the defaults for ``language``."""
    from moksori.audio import MelConfig
    from moksori.text import TextFrontend
    from moksori.training.tasks.base import DatasetInfo

    if base_json is not None:
        settings = {k: v for k, v in preprocess_settings(base_json).items() if k != "mel"}
        mel = MelConfig.from_dict(base_json["audio"]["mel"])
    else:
        settings, mel = {"language": language}, MelConfig()
    frontend = TextFrontend.from_settings(dict(settings))
    text = {**settings, "symbol_table": frontend.symbols.to_dict()}
    return DatasetInfo(root=Path("."), n_vocab=len(frontend.symbols), speakers=[], mel_config=mel, text_settings=text)


def stage_seconds(train: Any, params: int, batch_size: int) -> float:
    """Estimated seconds of one training stage (``train``: its recipe's ``train`` settings): the
    start, every step, every validation pass and every checkpoint (see the measurements at
    :data:`STEP_FLOOR_S`)."""
    if train.steps < 1:
        return 0.0
    step = _seconds_per_step(params, batch_size)
    evals = train.steps // train.eval_interval
    checkpoints = train.steps // train.checkpoint_interval
    checkpoint = CHECKPOINT_S + 12 * params / WRITE_BYTES_PER_S  # float32 weights and two Adam moments
    return STAGE_START_S + train.steps * step + evals * (EVAL_S + step) + checkpoints * checkpoint


def _seconds_per_step(params: int, batch_size: int) -> float:
    seconds, ref_params, ref_batch = REFERENCE_COST
    return STEP_FLOOR_S + (seconds - STEP_FLOOR_S) * (params / ref_params) * (batch_size / ref_batch)


def _stage_json(stage: dict[str, Any]) -> dict[str, Any]:
    recipe = stage["recipe"]
    return {"name": stage["name"], "kind": stage["kind"], "model": recipe["model"],
            "steps": recipe["train"]["steps"], "lr": recipe["train"].get("lr"),
            "batch_size": recipe["data"].get("batch_size"), "freeze": recipe.get("freeze") or [],
            "init_from": bool(recipe.get("init_from"))}
