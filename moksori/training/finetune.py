"""``moksori finetune``: adapt an existing voice (by default the shipped ``ko_default``) to a small
set of one's own recordings, in one call.

1. The base voice is resolved (:func:`moksori.voices.resolve_voice`) and its voice.json read.
2. A raw dataset (anything ``moksori preprocess`` reads) is preprocessed into ``<run_dir>/data``
   with the base voice's text front end (language, blank tokens, pronunciation) and mel
   parameters; an already preprocessed folder is used as it is, after checking that its
   symbol table and mel parameters are the base voice's.
3. The acoustic model is trained from the base voice's weights (its own architecture: the
   recipe's ``model_config`` is replaced by the base voice's), in ``<run_dir>/acoustic``.
4. The vocoder likewise, in ``<run_dir>/vocoder``; with ``vocoder_steps=0`` the base voice's
   vocoder is reused unchanged, and a Griffin-Lim base voice stays Griffin-Lim.
5. Both are bundled into the output voice folder, whose voice.json ``training.finetune``
   records the base voice, the steps and the dataset size.

The training settings (batch sizes, learning rates, schedules) are :data:`FINETUNE_RECIPE`,
the shipped recipe ``finetune_ko`` (``moksori/recipes/``). ``recipe=`` takes another file.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["FINETUNE_RECIPE", "FinetuneError", "FinetuneResult", "check_dataset_matches", "finetune"]

log = logging.getLogger(__name__)

# The training settings of `moksori finetune`, shipped inside the package (so an installed moksori,
# which has no configs/ folder, has them). Per run, finetune() replaces data.dir, run_dir,
# init_from, model and model_config.
FINETUNE_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "finetune_ko.yaml"

_TEXT_KEYS = ("language", "add_blank", "use_pronunciation")


class FinetuneError(ValueError):
    """Fine-tuning cannot start: the base voice, the dataset or the folders do not fit."""


@dataclass
class FinetuneResult:
    """Where everything went, and what voice.json records under ``training.finetune``."""

    voice_dir: Path
    base_voice: Path
    data_dir: Path
    acoustic_run: Path
    vocoder_run: Path | None
    summary: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        s = self.summary
        data = s["dataset"]
        vocoder = {
            "trained": f"vocoder {s['vocoder_steps']} steps",
            "reused": "vocoder reused",
            "griffin_lim": "Griffin-Lim vocoder",
        }[s["vocoder"]]
        return (
            f"{self.voice_dir}: fine-tuned from {s['base_voice']['name']} on {data['n_train']} + {data['n_val']} clips "
            f"({data['minutes']:.1f} min): acoustic {s['acoustic_steps']} steps, {vocoder}"
        )


def finetune(
    dataset: str | Path,
    base: str | Path | None = "default",
    *,
    out: str | Path | None = None,
    name: str | None = None,
    acoustic_steps: int | None = None,
    vocoder_steps: int | None = None,
    freeze: Sequence[str] = (),
    lr: float | None = None,
    vocoder_lr: float | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    recipe: str | Path | Mapping[str, Any] | None = None,
    licence: str | None = None,
    workers: int = 2,
    progress: bool = True,
) -> FinetuneResult:
    """Fine-tune ``base`` (a voice folder, or None/"default" for the shipped voice) on
    ``dataset`` (a raw dataset or a preprocessed folder) and bundle the result.

    ``out`` defaults to ``voices/<name>``, ``name`` to the output folder's name or else the
    dataset's, ``run_dir`` to ``runs/finetune_<name>``. ``acoustic_steps`` / ``vocoder_steps``
    / ``lr`` / ``vocoder_lr`` override the recipe (``lr`` is the Glow-TTS Noam scale,
    ``vocoder_lr`` the vocoder's Adam rate); ``vocoder_steps=0`` reuses the base vocoder.
    ``freeze`` lists acoustic parameter-name prefixes kept fixed (e.g. ``encoder``). ``resume``
    continues the runs in ``run_dir``. ``licence`` defaults to the base voice's.
    """
    from moksori.synthesis.bundle import VoiceError, read_voice_json
    from moksori.voices import resolve_voice

    dataset = Path(dataset)
    if not dataset.exists():
        raise FileNotFoundError(f"{dataset}: dataset not found")
    base_dir = resolve_voice(base)
    try:
        base_json = read_voice_json(base_dir)
    except VoiceError as error:
        raise FinetuneError(f"base voice: {error}") from error
    base_acoustic = base_json["acoustic"]
    base_vocoder = base_json["vocoder"]

    if out is None:
        name = name or _dataset_name(dataset)
        out = Path("voices") / name
    out = Path(out)
    name = name or out.name
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / f"finetune_{name}"
    acoustic_run, vocoder_run = run_dir / "acoustic", run_dir / "vocoder"

    stages = _stage_recipes(recipe)
    acoustic_recipe, vocoder_recipe = stages["acoustic"], stages["vocoder"]
    if acoustic_steps is not None:
        acoustic_recipe["train"]["steps"] = acoustic_steps
    if vocoder_steps is not None:
        vocoder_recipe["train"]["steps"] = vocoder_steps
    if acoustic_recipe["train"].get("steps", 1) < 1:
        raise FinetuneError(f"acoustic steps must be at least 1, got {acoustic_recipe['train']['steps']}")
    if vocoder_recipe["train"].get("steps", 1) < 0:
        raise FinetuneError(f"vocoder steps must not be negative, got {vocoder_recipe['train']['steps']}")
    # The recipe's learning rate and options belong to its own family (the shipped recipe's:
    # Glow-TTS's Noam scale, Vocos's GAN options); a base voice of another family (Tacotron2,
    # Flowtron; WaveGlow, WaveNet) keeps its family's defaults unless ``lr``/``vocoder_lr`` is given.
    for stage_recipe, base_model in ((acoustic_recipe, base_acoustic), (vocoder_recipe, base_vocoder)):
        if "model_name" in base_model and stage_recipe.get("model") != base_model["model_name"]:
            stage_recipe["train"].pop("lr", None)
            stage_recipe.pop("options", None)
    if lr is not None:
        acoustic_recipe["train"]["lr"] = lr
    if vocoder_lr is not None:
        vocoder_recipe["train"]["lr"] = vocoder_lr
    acoustic_recipe["freeze"] = list(acoustic_recipe.get("freeze") or []) + list(freeze)
    train_vocoder = "model_name" in base_vocoder and vocoder_recipe["train"].get("steps", 1) > 0

    # Everything that can be checked before any work.
    _check_freeze(base_acoustic, acoustic_recipe["freeze"])
    _check_runs(run_dir, (acoustic_run, vocoder_run), resume)
    replace_out = _check_out(out, run_dir, overwrite)

    data_dir = _prepare_data(dataset, run_dir / "data", base_json, base_dir, resume, workers, progress)
    check_dataset_matches(data_dir, base_json, base_dir)
    dataset_summary = _dataset_summary(data_dir, dataset)

    from moksori.models import registry
    from moksori.training.pipeline import Stage, make_voice
    from moksori.training.recipe import Recipe

    acoustic_recipe.update(
        model=base_acoustic["model_name"],
        model_config=dict(base_acoustic["model_config"]),  # the base voice's architecture
        init_from=str(base_dir),
    )
    acoustic = Recipe.from_dict(acoustic_recipe, "finetune recipe, acoustic stage")
    stages = [Stage("acoustic", acoustic, registry.ACOUSTIC)]
    if train_vocoder:
        vocoder_recipe.update(
            model=base_vocoder["model_name"],
            model_config=dict(base_vocoder["model_config"]),
            init_from=str(base_dir),
        )
        vocoder = Recipe.from_dict(vocoder_recipe, "finetune recipe, vocoder stage")
        stages.append(Stage("vocoder", vocoder, registry.VOCODER))
        vocoder_kind = "trained"
    else:
        vocoder_kind = "reused" if "model_name" in base_vocoder else "griffin_lim"

    summary = {
        "base_voice": {
            "name": base_json["name"],
            "path": str(base_dir.resolve()),
            "created": base_json.get("created"),
            "acoustic_sha256": (base_json["files"].get(base_acoustic.get("file", "acoustic.pt")) or {}).get("sha256"),
        },
        "acoustic_steps": acoustic.train.steps,
        "acoustic_lr": acoustic.train.lr,
        "freeze": list(acoustic.freeze),
        "vocoder": vocoder_kind,
        "vocoder_steps": vocoder.train.steps if train_vocoder else 0,
        "dataset": dataset_summary,
        "run_dir": str(run_dir.resolve()),
    }

    def extra() -> dict[str, Any]:
        summary["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return {"finetune": summary}

    make_voice(
        data_dir, stages, out, run_dir=run_dir, name=name,
        reuse_vocoder=base_dir if vocoder_kind == "reused" else None,
        resume=resume, progress=progress,
        description=f"{name}: fine-tuned from {base_json['name']} on {dataset_summary['n_train'] + dataset_summary['n_val']} clips",
        extra=extra,
        licence=licence or str(base_json.get("licence") or "unspecified"),
        overwrite=replace_out,
    )
    return FinetuneResult(out, base_dir, data_dir, acoustic_run, vocoder_run if train_vocoder else None, summary)


# --- steps ----------------------------------------------------------------------------------------


def _stage_recipes(recipe: str | Path | Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The acoustic and vocoder stages of the recipe as plain dicts, defaults merged in."""
    from moksori.training.recipe import RecipeError, _merge, _read_yaml

    if recipe is None:
        recipe = FINETUNE_RECIPE
    if isinstance(recipe, Mapping):
        data, where = copy.deepcopy(dict(recipe)), "finetune recipe"
    else:
        from moksori.recipes import resolve_recipe

        try:  # a shipped recipe's name (finetune_tacotron2_ko), as `moksori train` takes it
            path = resolve_recipe(recipe)
        except FileNotFoundError as error:
            raise FinetuneError(str(error)) from None
        data, where = _read_yaml(path), str(recipe)
    if not isinstance(data, Mapping) or not isinstance(data.get("stages"), list):
        raise RecipeError(f"{where}: a finetune recipe has 'stages' (acoustic and vocoder) and optional 'defaults'")
    defaults = dict(data.get("defaults") or {})
    stages = {}
    for stage in data["stages"]:
        if isinstance(stage, Mapping) and stage.get("name") in ("acoustic", "vocoder"):
            merged = _merge(copy.deepcopy(defaults), copy.deepcopy(dict(stage)))
            merged.setdefault("data", {})
            merged.setdefault("train", {})
            stages[stage["name"]] = merged
    missing = [name for name in ("acoustic", "vocoder") if name not in stages]
    if missing:
        raise RecipeError(f"{where}: no stage named {' or '.join(map(repr, missing))}")
    return stages


# Transcript files named for their role, not their voice: the voice is named for their folder.
_GENERIC_LIST_NAMES = {"train", "training", "metadata", "filelist", "list", "transcript", "transcripts", "all"}


def _dataset_name(dataset: Path) -> str:
    """The voice's name from the dataset: the folder's name (my_recordings/train.txt →
    my_recordings), or a transcript file's own name when it names the voice (jimin.txt → jimin)."""
    path = dataset.resolve()
    name = path.name
    if path.is_file():
        stem = path.name.split(".")[0]  # transcript.v.1.4.txt → transcript
        name = path.parent.name if stem.lower() in _GENERIC_LIST_NAMES else path.stem
    return name.removesuffix("_processed") or "my_voice"


def _check_freeze(base_acoustic: Mapping[str, Any], prefixes: list[str]) -> None:
    if not prefixes:
        return
    from moksori.models import registry
    from moksori.training.warm_start import apply_freeze

    model = registry.get(base_acoustic["model_name"]).build(base_acoustic["model_config"])
    try:
        apply_freeze({"model": model}, "model", prefixes)
    except ValueError as error:
        raise FinetuneError(f"--freeze: {error} (the acoustic model's parameter names start with "
                            f"{', '.join(sorted({'.'.join(n.split('.')[:2]) for n, _ in model.named_parameters()}))})") from error


def _check_runs(run_dir: Path, runs: Sequence[Path], resume: bool) -> None:
    if resume:
        return
    started = [run for run in runs if (run / "latest.pt").is_file() or any(run.glob("step_*.pt"))]
    if started:
        raise FinetuneError(
            f"{run_dir} already holds a fine-tuning run ({', '.join(str(r) for r in started)}); "
            f"continue it with --resume or choose another --run-dir"
        )


def _check_out(out: Path, run_dir: Path, overwrite: bool) -> bool:
    """Whether the output folder may be replaced: it is new or empty, ``overwrite``, or it holds
    this run's own earlier voice. Otherwise an error, before any training."""
    if overwrite or not out.exists():
        return overwrite
    if out.is_dir() and not any(out.iterdir()):
        return False
    try:
        data = json.loads((out / "voice.json").read_text(encoding="utf-8"))
        ours = data["training"]["finetune"]["run_dir"] == str(run_dir.resolve())
    except (OSError, ValueError, KeyError, TypeError):
        ours = False
    if not ours:
        raise FinetuneError(f"{out} already exists; choose another --out or pass --overwrite to replace it")
    return True


def _prepare_data(
    dataset: Path, data_dir: Path, base_json: Mapping[str, Any], base_dir: Path, resume: bool, workers: int,
    progress: bool,
) -> Path:
    """The preprocessed folder to train on (see :func:`moksori.training.pipeline.prepare_data`),
    made with the base voice's text front end and mel parameters."""
    from moksori.audio import MelConfig
    from moksori.data.preprocess import PreprocessConfig
    from moksori.training.pipeline import prepare_data

    if (dataset / "config.json").is_file() or (resume and (data_dir / "config.json").is_file()):
        return prepare_data(dataset, data_dir, None, resume=resume)  # already preprocessed

    text = base_json["text_frontend"]
    if not _is_current_table(text):
        table = text.get("symbol_table") or {}
        raise FinetuneError(
            f"the base voice {base_dir} uses symbol table {table.get('version')!r}, which this moksori does not "
            f"preprocess with; fine-tune it with the moksori version that made it, or train a new voice"
        )
    config = PreprocessConfig(
        mel=MelConfig.from_dict(base_json["audio"]["mel"]),
        language=text["language"],
        add_blank=bool(text.get("add_blank", False)),
        use_pronunciation=bool(text.get("use_pronunciation", True)),
    )
    try:
        return prepare_data(dataset, data_dir, config, resume=resume, workers=workers, progress=progress)
    except ValueError as error:
        raise FinetuneError(str(error)) from error


def check_dataset_matches(data_dir: str | Path, base_json: Mapping[str, Any], base_dir: str | Path = "the base voice") -> None:
    """Raise :class:`FinetuneError` unless the preprocessed ``data_dir`` was made with the base
    voice's text front end (symbol table included) and mel parameters."""
    from moksori.audio import MelConfig
    from moksori.data.manifest import load_config

    data_dir = Path(data_dir)
    config = load_config(data_dir)
    text, base_text = dict(config.get("text") or {}), dict(base_json["text_frontend"])
    how = (f"preprocess the recordings with --lang {base_text.get('language')}"
           f"{' --add-blank' if base_text.get('add_blank') else ''}, or give finetune the raw dataset folder "
           f"(it preprocesses it to match)")
    differences = []
    defaults = {"add_blank": False, "use_pronunciation": True}
    for key in _TEXT_KEYS:
        mine, theirs = text.get(key, defaults.get(key)), base_text.get(key, defaults.get(key))
        if mine != theirs:
            differences.append(f"text {key}: {mine!r} in the data, {theirs!r} in the voice")
    table, base_table = text.get("symbol_table") or {}, base_text.get("symbol_table") or {}
    if table != base_table:
        differences.append(
            f"symbol table: {table.get('version')!r} ({len(table.get('symbols') or [])} symbols) in the data, "
            f"{base_table.get('version')!r} ({len(base_table.get('symbols') or [])} symbols) in the voice"
        )
    if differences:
        only_table = all(d.startswith("symbol table") for d in differences)
        if only_table and not _is_current_table(base_text):
            how = ("the voice was made with another symbol table than this moksori preprocesses with; "
                   "fine-tune it with the moksori version that made it, or train a new voice")
        raise FinetuneError(f"{data_dir} does not match the base voice {base_dir}: {'; '.join(differences)}; {how}")
    mel = MelConfig.from_dict(config["mel"]).to_dict()
    base_mel = MelConfig.from_dict(base_json["audio"]["mel"]).to_dict()
    mel_differences = [f"{key}: {mel[key]!r} in the data, {base_mel[key]!r} in the voice"
                       for key in base_mel if mel.get(key) != base_mel[key]]
    if mel_differences:
        raise FinetuneError(
            f"{data_dir} does not match the base voice {base_dir}: mel parameters differ ({'; '.join(mel_differences)}); "
            f"give finetune the raw dataset folder (it preprocesses it with the voice's mel parameters)"
        )
    speakers = [s for s in config.get("speakers") or [] if s]
    n_speakers = int(base_json["acoustic"]["model_config"].get("n_speakers") or 0)
    base_speakers = [str(s) for s in base_json.get("speakers") or []]
    if n_speakers <= 1 and len(speakers) > 1:
        raise FinetuneError(
            f"{data_dir} holds {len(speakers)} speakers but the base voice {base_dir} is single-speaker; "
            f"fine-tune on one speaker's recordings"
        )
    if n_speakers > 1 and speakers != base_speakers:
        raise FinetuneError(
            f"the base voice {base_dir} is multi-speaker ({', '.join(base_speakers)}); the data's speakers "
            f"({', '.join(speakers) or 'one unnamed'}) must be exactly those"
        )


def _is_current_table(text_settings: Mapping[str, Any]) -> bool:
    """Whether this moksori's preprocessing produces the symbol table of ``text_settings``."""
    from moksori.text import TextFrontend

    settings = {key: text_settings[key] for key in _TEXT_KEYS if key in text_settings}
    try:
        current = TextFrontend.from_settings(settings).symbols.to_dict()
    except ValueError:
        return False
    return current == text_settings.get("symbol_table")


def _dataset_summary(data_dir: Path, dataset: Path) -> dict[str, Any]:
    from moksori.data.manifest import read_manifest

    train = read_manifest(data_dir, "train")
    val = read_manifest(data_dir, "val")
    seconds = sum(float(r.get("duration_s") or 0.0) for r in train + val)
    return {
        "source": str(dataset.resolve()),
        "preprocessed": str(data_dir.resolve()),
        "n_train": len(train),
        "n_val": len(val),
        "minutes": round(seconds / 60.0, 2),
    }
