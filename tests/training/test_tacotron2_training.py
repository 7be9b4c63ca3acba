"""Tacotron2 through the one training loop: losses and diagnostics logged, exact resume,
teacher-forced mels for vocoder fine-tuning, and the documented command-line path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import torch

from moksori.cli import main
from moksori.training import load_checkpoint, train
from moksori.training.logging import read_metrics

RECIPES = Path(__file__).resolve().parents[2] / "moksori" / "recipes"


def _series(run_dir: Path, key: str, split: str = "train") -> list[float]:
    return [record[key] for record in read_metrics(run_dir, split) if key in record]


def test_tacotron2_trains_with_diagnostics_and_resumes_exactly(make_recipe, tmp_path):
    def recipe(run_dir: Path):
        r = make_recipe("tacotron2", run_dir, checkpoint_interval=2, eval_interval=3, n_audio_examples=0)
        r.model_config["n_frames_per_step"] = 4  # fewer decoder steps: a quicker test
        r.data.batch_size = 2
        r.data.max_val_batches = 1
        return r

    straight = train(recipe(tmp_path / "straight"), max_steps=3)
    resumed = tmp_path / "resumed"
    train(recipe(resumed), max_steps=2)
    train(recipe(resumed), max_steps=3, resume=True)

    loss_a, loss_b = _series(straight, "loss"), _series(resumed, "loss")
    assert len(loss_a) == len(loss_b) == 3 and all(np.isfinite(loss_a))
    # Prenet dropout is random even here: the resumed run draws the same masks.
    assert np.allclose(loss_a, loss_b, atol=1e-5), (loss_a, loss_b)
    state_a, state_b = load_checkpoint(straight)["model"], load_checkpoint(resumed)["model"]
    assert all(torch.allclose(state_a[k].float(), state_b[k].float(), atol=1e-6) for k in state_a)

    assert {"mel", "mel_postnet", "gate", "guided_attention", "guided_attention_weight"} <= set(read_metrics(straight, "train")[0])
    (val,) = read_metrics(straight, "val")
    for key in ("gate_accuracy", "attention_diagonality", "attention_sharpness", "free_alignment_ok",
                "free_diagonality", "free_length_ratio"):
        assert np.isfinite(val[key]) and val[key] >= 0, key
    assert 0 <= val["attention_diagonality"] <= 1 and 0 <= val["free_alignment_ok"] <= 1
    assert any((straight / "logs").iterdir())  # TensorBoard: alignments, mels, audio


def test_teacher_forced_mels_feed_vocoder_finetuning(make_recipe, tmp_path):
    acoustic = train(make_recipe("tacotron2", tmp_path / "acoustic", eval_interval=100), max_steps=1)
    vocoder_recipe = make_recipe("hifigan", tmp_path / "vocoder", eval_interval=100)
    vocoder_recipe.vocoder_finetune_from = str(acoustic / "latest.pt")
    train(vocoder_recipe, max_steps=1)
    cached = sorted((tmp_path / "vocoder").rglob("*.npy"))
    assert cached, "no teacher-forced mels were cached"
    mel = np.load(cached[0])
    assert mel.shape[0] == 80 and np.isfinite(mel).all()


def test_sample_dataset_to_a_spoken_tacotron2_voice(tmp_path, capsys):
    dataset, features = tmp_path / "dataset", tmp_path / "features"
    assert main(["sample-dataset", "--lang", "ko", "--n", "8", "--out", str(dataset)]) == 0
    assert main(["preprocess", str(dataset), "--out", str(features)]) == 0
    run = tmp_path / "acoustic"
    args = ["train", str(RECIPES / "tiny_tacotron2.yaml"), "--data-dir", str(features), "--run-dir", str(run)]
    assert main([*args, "--max-steps", "2"]) == 0
    voice = tmp_path / "voice"
    assert main(["bundle", str(run), "--out", str(voice), "--name", "t2e2e"]) == 0
    out = tmp_path / "hello.wav"
    assert main(["say", "안녕하세요.", "--voice", str(voice), "-o", str(out), "--seed", "0"]) == 0
    captured = capsys.readouterr()
    assert "real-time factor" in captured.out
    # Two steps cannot align: the voice says so instead of returning garbage silently.
    assert "warning: alignment failed in sentence 1" in captured.err
    info = soundfile.info(str(out))
    assert info.samplerate == 22050 and info.duration > 0


def test_finetune_from_a_tacotron2_voice(make_recipe, sample_data, tmp_path):
    from moksori.synthesis import make_bundle
    from moksori.training.finetune import finetune

    acoustic = train(make_recipe("tacotron2", tmp_path / "base", eval_interval=100), max_steps=1)
    base = make_bundle(acoustic, tmp_path / "base_voice", name="t2base")
    result = finetune(sample_data, base, out=tmp_path / "tuned", acoustic_steps=1, vocoder_steps=0,
                      run_dir=tmp_path / "ft", recipe=RECIPES / "finetune_tacotron2_ko.yaml", progress=False)
    voice = result.voice_dir
    assert (voice / "voice.json").is_file()
    tuned = load_checkpoint(tmp_path / "ft" / "acoustic")
    assert tuned["model_name"] == "tacotron2" and tuned["model_config"]["n_frames_per_step"] == 2
