"""Training recipes shipped with moksori (package data, so an installed moksori has them wherever
it runs). ``moksori train NAME`` takes a recipe by name (``glowtts_hifigan_ko``) or by path; a
user's own recipes live anywhere, conventionally in ``configs/``.

| recipe | what it trains |
| --- | --- |
| ``glowtts_hifigan_ko`` | a base Glow-TTS, then HiFi-GAN V1 on its aligned mels (GPU-sized) |
| ``default_ko`` | the shipped default voice: Glow-TTS small, then Vocos small (CPU-sized) |
| ``finetune_ko`` | ``moksori finetune``'s small-data settings |
| ``tiny_glowtts``, ``tiny_hifigan`` | tiny models for tests and ``moksori demo`` |
| ``waveglow_ko`` | a base Glow-TTS, then WaveGlow (NVIDIA's config) on its aligned mels (GPU-sized) |
| ``tiny_waveglow`` | a tiny WaveGlow for tests |
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent
RECIPE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")

__all__ = ["RECIPES_DIR", "available_recipes", "resolve_recipe"]


def available_recipes(extra_dirs: Iterable[str | Path] = ()) -> dict[str, Path]:
    """Recipe name → file: the shipped recipes, then the ``*.yaml`` files of ``extra_dirs`` (an
    operator's own; a later folder's recipe replaces an earlier one of the same name)."""
    found: dict[str, Path] = {}
    for folder in (RECIPES_DIR, *map(Path, extra_dirs)):
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                if RECIPE_NAME.fullmatch(path.stem):
                    found[path.stem] = path
    return found


def resolve_recipe(spec: str | Path, extra_dirs: Iterable[str | Path] = ()) -> Path:
    """A recipe file from a path or a recipe name; FileNotFoundError names what exists."""
    path = Path(spec)
    if path.is_file():
        return path
    recipes = available_recipes(extra_dirs)
    name = path.name.removesuffix(".yaml") if path.parent == Path(".") or path.parent.name == "configs" else None
    if name in recipes:
        return recipes[name]
    raise FileNotFoundError(f"no recipe file {spec}; recipes shipped with moksori: {', '.join(recipes)}")
