"""Shared fixtures: one tiny espeak sample set (8 train + 1 val utterances), preprocessed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
from moksori.data.sample_dataset import make_sample_dataset
from moksori.training.recipe import Recipe, load_recipe

CONFIGS = Path(__file__).resolve().parents[2] / "moksori" / "recipes"


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("training_data")
    raw = make_sample_dataset(base / "raw", n=9, workers=1, progress=False)
    config = PreprocessConfig(language="ko", val_fraction=0.1, min_val=1)
    preprocess_dataset(raw, base / "processed", config, workers=1, progress=False)
    return base / "processed"


@pytest.fixture(scope="session")
def make_recipe(sample_data):
    """``make_recipe("glowtts" | "hifigan", run_dir, **overrides)`` (train settings or options): moksori/recipes/tiny_*.yaml
    pointed at the test data, logging every step, no progress bar."""

    def make(name: str, run_dir: Path, **train: object) -> Recipe:
        recipe = load_recipe(CONFIGS / f"tiny_{name}.yaml")
        recipe.data.dir = str(sample_data)
        recipe.run_dir = str(run_dir)
        recipe.train.log_interval = 1
        recipe.train.progress = False
        for key, value in train.items():  # a loop setting, or else one of the family's options
            if hasattr(recipe.train, key):
                setattr(recipe.train, key, value)
            else:
                recipe.options[key] = value
        recipe.check()
        return recipe

    return make


@pytest.fixture(scope="session")
def glow_checkpoint(make_recipe, tmp_path_factory) -> Path:
    """latest.pt of a tiny Glow-TTS trained for 3 steps."""
    from moksori.training import train

    run_dir = train(make_recipe("glowtts", tmp_path_factory.mktemp("glow_src") / "run"), max_steps=3)
    return run_dir / "latest.pt"
