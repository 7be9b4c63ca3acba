"""`moksori finetune`: a tiny random base voice fine-tuned for a few steps on six espeak clips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import moksori.voices as shipped
from moksori.bench.serve import build_tiny_voice
from moksori.cli import main
from moksori.data.sample_dataset import make_sample_dataset
from moksori.synthesis import load_voice, read_voice_json
from moksori.training import load_recipe
from moksori.training.finetune import FINETUNE_RECIPE, FinetuneError, finetune



@pytest.fixture(scope="module")
def base_voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_voice(tmp_path_factory.mktemp("base") / "base", name="base")


@pytest.fixture(scope="module")
def raw_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_dataset(tmp_path_factory.mktemp("raw") / "my_recordings", n=6, workers=1, progress=False)


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory, base_voice: Path, raw_dataset: Path):
    root = tmp_path_factory.mktemp("finetune")
    return finetune(
        raw_dataset, base_voice, out=root / "voices" / "mine", run_dir=root / "run",
        acoustic_steps=2, vocoder_steps=2, workers=1, progress=False,
    )


def _weights(voice_dir: Path, file_name: str) -> dict[str, torch.Tensor]:
    return torch.load(voice_dir / file_name, map_location="cpu", weights_only=True)


def _changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    assert a.keys() == b.keys()
    return any(not torch.equal(a[key], b[key]) for key in a)


def test_builtin_recipe_is_packaged_with_both_stages() -> None:
    stages = {load_recipe(FINETUNE_RECIPE, stage=name).model for name in ("acoustic", "vocoder")}
    assert stages == {"glow_tts", "vocos"}


def test_a_shipped_finetune_recipe_is_taken_by_name_as_train_takes_it() -> None:
    from moksori.training.finetune import _stage_recipes

    assert _stage_recipes("finetune_tacotron2_ko")["acoustic"]["model"] == "tacotron2"
    with pytest.raises(FinetuneError, match="no recipe file finetune_nope; recipes shipped with moksori: .*finetune_ko"):
        _stage_recipes("finetune_nope")


@pytest.mark.parametrize(("relative", "name"), [
    ("my_recordings/train.txt", "my_recordings"),  # a list named for its role: the folder names the voice
    ("my_recordings/metadata.csv", "my_recordings"),
    ("kss/transcript.v.1.4.txt", "kss"),
    ("lists/jimin.txt", "jimin"),  # a list named for its voice
    ("jimin_processed", "jimin"),
])
def test_the_voice_is_named_for_the_dataset_not_its_list_file(tmp_path: Path, relative: str, name: str) -> None:
    from moksori.training.finetune import _dataset_name

    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir() if not path.suffix else path.touch()
    assert _dataset_name(path) == name


def test_finetune_preprocesses_trains_and_bundles(finetuned, base_voice: Path, raw_dataset: Path) -> None:
    out = finetuned.voice_dir
    voice = load_voice(out)  # loads: checksums, configs and weights agree
    assert voice.name == "mine" and voice.vocoder is not None
    assert _changed(_weights(out, "acoustic.pt"), _weights(base_voice, "acoustic.pt"))
    assert _changed(_weights(out, "vocoder.pt"), _weights(base_voice, "vocoder.pt"))

    data = read_voice_json(out)
    base = read_voice_json(base_voice)
    assert data["text_frontend"] == base["text_frontend"] and data["acoustic"]["model_config"] == base["acoustic"]["model_config"]
    summary = data["training"]["finetune"]
    assert summary["base_voice"]["name"] == "base" and summary["base_voice"]["path"] == str(base_voice.resolve())
    assert summary["acoustic_steps"] == 2 and summary["vocoder_steps"] == 2 and summary["vocoder"] == "trained"
    assert summary["dataset"]["n_train"] + summary["dataset"]["n_val"] == 6 and summary["dataset"]["minutes"] > 0
    assert summary["dataset"]["source"] == str(raw_dataset.resolve())
    assert data["training"]["acoustic"]["step"] == 2
    assert (finetuned.data_dir / "config.json").is_file() and finetuned.data_dir == finetuned.acoustic_run.parent / "data"
    assert "fine-tuned from base on" in finetuned.describe()


def test_a_second_run_in_the_same_folder_needs_resume(finetuned, base_voice: Path, raw_dataset: Path) -> None:
    root = finetuned.acoustic_run.parent
    with pytest.raises(FinetuneError, match="--resume"):
        finetune(raw_dataset, base_voice, out=finetuned.voice_dir, run_dir=root, acoustic_steps=3, progress=False)


def test_resume_continues_the_runs_and_rebundles(finetuned, base_voice: Path, raw_dataset: Path, tmp_path: Path) -> None:
    # On a copy, so that the other tests see the fixture's voice as it was.
    root = tmp_path / "run"
    shutil.copytree(finetuned.acoustic_run.parent, root)
    out = tmp_path / "mine"
    result = finetune(raw_dataset, base_voice, out=out, run_dir=root, acoustic_steps=3, vocoder_steps=2,
                      resume=True, workers=1, progress=False)
    data = read_voice_json(out)
    assert data["training"]["acoustic"]["step"] == 3 and data["training"]["vocoder"]["step"] == 2
    assert result.data_dir == root / "data"  # preprocessed data reused
    # Resuming again into the same voice folder replaces this run's own voice.
    finetune(raw_dataset, base_voice, out=out, run_dir=root, acoustic_steps=4, vocoder_steps=2,
             resume=True, workers=1, progress=False)
    assert read_voice_json(out)["training"]["acoustic"]["step"] == 4


def test_cli_from_default_on_a_preprocessed_folder_reusing_the_vocoder(
    finetuned, base_voice: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.setattr(shipped, "default_voice_path", lambda: base_voice)
    out = tmp_path / "voices" / "cli_voice"
    code = main([
        "finetune", str(finetuned.data_dir), "--from", "default", "--out", str(out), "--run-dir", str(tmp_path / "run"),
        "--acoustic-steps", "1", "--vocoder-steps", "0", "--freeze", "encoder", "--lr", "0.1",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"voice written to {out}" in printed and "vocoder reused" in printed
    summary = read_voice_json(out)["training"]["finetune"]
    assert summary["vocoder"] == "reused" and summary["freeze"] == ["encoder"] and summary["acoustic_lr"] == 0.1
    assert not (tmp_path / "run" / "data").exists()  # the preprocessed folder was used as it is
    assert not _changed(_weights(out, "vocoder.pt"), _weights(base_voice, "vocoder.pt"))
    acoustic, base = _weights(out, "acoustic.pt"), _weights(base_voice, "acoustic.pt")
    assert all(torch.equal(acoustic[k], base[k]) for k in acoustic if k.startswith("encoder."))  # frozen
    assert _changed(acoustic, base)
    load_voice(out)


def _fake_preprocessed(finetuned, tmp_path: Path, change) -> Path:
    folder = tmp_path / "processed"
    folder.mkdir(parents=True)
    config = json.loads((finetuned.data_dir / "config.json").read_text("utf-8"))
    change(config)
    (folder / "config.json").write_text(json.dumps(config), "utf-8")
    return folder


def test_mismatched_symbol_table_is_a_clear_error(finetuned, base_voice: Path, tmp_path: Path) -> None:
    def other_table(config):
        config["text"]["symbol_table"] = {"version": "ko-jamo-old", "symbols": config["text"]["symbol_table"]["symbols"][:-3]}

    data = _fake_preprocessed(finetuned, tmp_path, other_table)
    with pytest.raises(FinetuneError, match="symbol table: 'ko-jamo-old'") as error:
        finetune(data, base_voice, out=tmp_path / "v", run_dir=tmp_path / "run", acoustic_steps=1, progress=False)
    assert "--lang ko" in str(error.value)
    assert not (tmp_path / "run").exists() and not (tmp_path / "v").exists()


def test_mismatched_language_and_mel_are_clear_errors(finetuned, base_voice: Path, tmp_path: Path) -> None:
    def english(config):
        config["text"]["language"] = "en"

    with pytest.raises(FinetuneError, match="text language: 'en' in the data, 'ko' in the voice"):
        finetune(_fake_preprocessed(finetuned, tmp_path / "a", english), base_voice, out=tmp_path / "v", progress=False)

    def other_rate(config):
        config["mel"]["sample_rate"] = 16000

    with pytest.raises(FinetuneError, match="mel parameters differ .*sample_rate: 16000 in the data, 22050 in the voice"):
        finetune(_fake_preprocessed(finetuned, tmp_path / "b", other_rate), base_voice, out=tmp_path / "v", progress=False)


def test_bad_freeze_prefix_and_existing_output_fail_before_any_work(base_voice: Path, raw_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(FinetuneError, match="--freeze: .*'encoderr'"):
        finetune(raw_dataset, base_voice, out=tmp_path / "v", run_dir=tmp_path / "run", freeze=["encoderr"], progress=False)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(FinetuneError, match="already exists.*--overwrite"):
        finetune(raw_dataset, base_voice, out=tmp_path / "taken", run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_missing_shipped_voice_is_a_clear_error(raw_dataset: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setattr(shipped, "default_voice_path", lambda: tmp_path / "nothing")
    assert main(["finetune", str(raw_dataset), "--out", str(tmp_path / "v"), "--run-dir", str(tmp_path / "run")]) == 2
    assert "ships no default voice" in capsys.readouterr().err


def test_griffin_lim_base_stays_griffin_lim(raw_dataset: Path, finetuned, tmp_path: Path) -> None:
    base = build_tiny_voice(tmp_path / "gl", name="gl", griffin_lim=True)
    result = finetune(finetuned.data_dir, base, out=tmp_path / "out", run_dir=tmp_path / "run", acoustic_steps=1,
                      progress=False)
    data = read_voice_json(result.voice_dir)
    assert data["vocoder"] == {"name": "griffin_lim"} and data["training"]["finetune"]["vocoder"] == "griffin_lim"
    assert result.vocoder_run is None and not (tmp_path / "run" / "vocoder").exists()


def test_finetune_help_names_every_option(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--from", "--out", "--name", "--acoustic-steps", "--vocoder-steps", "--freeze", "--lr",
                   "--run-dir", "--resume"):
        assert option in text


def test_a_base_vocoder_of_another_family_keeps_its_own_settings(finetuned, tmp_path: Path) -> None:
    """The recipe's vocoder stage (Vocos, GAN options) on a WaveGlow base voice: its lr and
    options are the recipe family's, so the base family's defaults are used, as for the acoustic."""
    from moksori.bench import write_untrained_checkpoint
    from moksori.models import registry
    from moksori.synthesis import make_bundle
    from moksori.text import TextFrontend

    frontend = TextFrontend("ko")
    glow, waveglow = registry.get("glow_tts"), registry.get("waveglow")
    acoustic = write_untrained_checkpoint(tmp_path / "a.pt", glow.build(glow.config("tiny", n_vocab=len(frontend.symbols))),
                                          "glow_tts", frontend)
    vocoder = write_untrained_checkpoint(tmp_path / "v.pt", waveglow.build(waveglow.config("tiny")), "waveglow", None)
    base = make_bundle(acoustic, tmp_path / "wg", vocoder_ckpt=vocoder, name="wg")
    result = finetune(finetuned.data_dir, base, out=tmp_path / "out", run_dir=tmp_path / "run", acoustic_steps=1,
                      vocoder_steps=1, progress=False)
    data = read_voice_json(result.voice_dir)
    assert data["vocoder"]["model_name"] == "waveglow" and data["training"]["finetune"]["vocoder"] == "trained"
