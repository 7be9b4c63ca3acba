from pathlib import Path

import pytest

from moksori.training.recipe import Recipe, RecipeError, load_recipe, recipe_stages

CONFIGS = Path(__file__).resolve().parents[2] / "moksori" / "recipes"


def _minimal(**extra):
    return {"model": "glow_tts", "data": {"dir": "d"}, "run_dir": "r", **extra}


def test_minimal_recipe_gets_defaults():
    recipe = load_recipe(_minimal())
    assert isinstance(recipe, Recipe)
    assert (recipe.train.amp, recipe.train.lr, recipe.data.batch_size) == ("off", None, 16)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (_minimal(trian={}), "'trian'"),
        (_minimal(train={"stpes": 3}), r"recipe\.train: unknown key\(s\) 'stpes'"),
        (_minimal(data={"dir": "d", "batchsize": 3}), "'batchsize'"),
        (_minimal(train={"amp": "fp8"}), "amp"),
        (_minimal(model="wavenet9"), "unknown model"),
        ({"model": "glow_tts", "run_dir": "r"}, "missing required key 'data'"),
        (_minimal(vocoder_finetune_from="x.pt"), "only a vocoder"),
        (_minimal(train={"steps": 0}), "steps"),
    ],
)
def test_bad_recipes_name_the_problem(values, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(values)


def test_yaml_file_errors_name_the_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: glow_tts\ndata: {dir: d}\nrun_dir: r\nfreez: [decoder]\n")
    with pytest.raises(RecipeError, match=r"r\.yaml.*'freez'"):
        load_recipe(path)


@pytest.mark.parametrize("name", ["tiny_glowtts.yaml", "tiny_hifigan.yaml"])
def test_shipped_tiny_recipes_load(name):
    recipe = load_recipe(CONFIGS / name)
    assert recipe.model_config["preset"] == "tiny"


def test_two_stage_korean_recipe():
    path = CONFIGS / "glowtts_hifigan_ko.yaml"
    assert recipe_stages(path) == ["acoustic", "vocoder"]
    acoustic = load_recipe(path, stage="acoustic")
    vocoder = load_recipe(path, stage="vocoder")
    assert (acoustic.model, vocoder.model) == ("glow_tts", "hifigan")
    assert acoustic.data.dir == vocoder.data.dir  # from the shared defaults
    assert vocoder.model_config["preset"] == "v1"
    with pytest.raises(RecipeError, match="choose a stage"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="no stage 'x'"):
        load_recipe(path, stage="x")


def test_family_settings_are_options_and_old_recipes_still_read() -> None:
    base = {"data": {"dir": "d"}, "run_dir": "r"}
    new = load_recipe({**base, "model": "hifigan", "options": {"adversarial": False, "stft_loss": True}})
    # Recipes written before options existed kept these keys under train: they are moved.
    old = load_recipe({**base, "model": "hifigan", "train": {"steps": 7, "adversarial": False, "stft_loss": True}})
    assert new.options == old.options == {"adversarial": False, "stft_loss": True} and old.train.steps == 7
    assert not hasattr(old.train, "adversarial")
    assert load_recipe({**base, "model": "glow_tts", "options": {"n_audio_examples": 2}}).options == {"n_audio_examples": 2}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": "glow_tts", "options": {"adversarial": False}}, r"options: unknown key\(s\) 'adversarial'; known: n_audio_examples"),
        ({"model": "glow_tts", "train": {"adversarial": False}}, r"recipe.train: unknown key\(s\) 'adversarial'"),
        ({"model": "hifigan", "options": {"adversarial_start_step": -1}}, r"options: adversarial_start_step must be >= 0"),
        ({"model": "hifigan", "options": ["adversarial"]}, r"recipe.options: expected a mapping"),
    ],
)
def test_bad_options_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        load_recipe({"data": {"dir": "d"}, "run_dir": "r", **values})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # PyYAML reads 1e-3 (no dot) as text
        (_minimal(train={"lr": "1e-3"}), r"recipe\.train\.lr: expected a number, got '1e-3' .*1\.0e-3"),
        (_minimal(train={"seed": "abc"}), r"recipe\.train\.seed: expected an integer, got 'abc'"),
        (_minimal(train={"steps": 1.5}), r"recipe\.train\.steps: expected an integer, got 1\.5"),
        (_minimal(data={"dir": "d", "num_workers": "x"}), r"recipe\.data\.num_workers: expected an integer"),
        (_minimal(train={"progress": "no"}), r"recipe\.train\.progress: expected true or false, got 'no'"),
        (_minimal(model="tacotron2", options={"gate_pos_weight": "abc"}), r"options\.gate_pos_weight: expected a number"),
        (_minimal(model="flowtron", options={"use_attn_prior": "maybe"}), r"options\.use_attn_prior: expected true or false"),
    ],
)
def test_values_of_the_wrong_type_are_refused_by_key(values: dict, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        load_recipe(values)


def test_numbers_of_either_kind_and_none_are_accepted_where_they_fit() -> None:
    recipe = load_recipe(_minimal(model="tacotron2", train={"lr": 1, "grad_clip": None}, options={"gate_pos_weight": 5}))
    assert (recipe.train.lr, recipe.train.grad_clip, recipe.options["gate_pos_weight"]) == (1, None, 5)


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("flowtron", {"n_flows": "two"}, r"model_config\.n_flows: expected an integer, got 'two'"),
        ("flowtron", {"use_cumm_attention": "no"}, r"model_config\.use_cumm_attention: expected true or false, got 'no'"),
        ("glowtts", {"hidden_channels": 19.5}, r"model_config\.hidden_channels: expected an integer"),
        ("wavenet", {"layers": "4"}, r"model_config\.layers: expected an integer"),
        ("hifigan", {"upsample_initial_channel": "x"}, r"model_config\.upsample_initial_channel: expected an integer"),
    ],
)
def test_model_config_types_are_checked_by_name(name, values, message, make_recipe, sample_data, tmp_path) -> None:
    import torch

    from moksori.training.tasks import DatasetInfo, build_task

    recipe = make_recipe(name, tmp_path / "run")
    recipe.model_config.update(values)
    with pytest.raises(RecipeError, match=message):
        build_task(recipe, DatasetInfo.from_dir(sample_data), torch.device("cpu"))
