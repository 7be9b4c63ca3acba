"""Shipped recipes are package data: found by name wherever moksori runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from moksori.recipes import RECIPES_DIR, available_recipes, resolve_recipe
from moksori.training.pipeline import voice_stages
from moksori.training.recipe import load_recipe


def test_shipped_recipes_are_found_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/ here
    recipes = available_recipes()
    assert {"glowtts_hifigan_ko", "default_ko", "finetune_ko", "tiny_glowtts", "tiny_hifigan"} <= set(recipes)
    assert resolve_recipe("glowtts_hifigan_ko") == RECIPES_DIR / "glowtts_hifigan_ko.yaml"
    # The old spelling of the README keeps working after the move.
    assert resolve_recipe("configs/tiny_glowtts.yaml") == RECIPES_DIR / "tiny_glowtts.yaml"
    assert [s.role for s in voice_stages(recipes["glowtts_hifigan_ko"])] == ["acoustic", "vocoder"]


def test_an_operators_recipe_is_offered_and_a_path_wins(tmp_path: Path) -> None:
    own = tmp_path / "configs"
    own.mkdir()
    (own / "mine.yaml").write_text((RECIPES_DIR / "tiny_glowtts.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert available_recipes([own])["mine"] == own / "mine.yaml"
    assert resolve_recipe(own / "mine.yaml") == own / "mine.yaml"
    assert load_recipe(resolve_recipe(own / "mine.yaml")).model == "glow_tts"


def test_unknown_recipe_names_the_shipped_ones() -> None:
    with pytest.raises(FileNotFoundError, match=r"no recipe file nope; recipes shipped with moksori: .*glowtts_hifigan_ko"):
        resolve_recipe("nope")
