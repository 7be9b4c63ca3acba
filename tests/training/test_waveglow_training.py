"""WaveGlow through the real training loop: maximum likelihood falls when overfitting the tiny
sample set, checkpoints hold the model, a resumed run continues exactly, teacher-forced mels."""

import numpy as np
import pytest
import torch

from moksori.models.waveglow import WaveGlow, WaveGlowConfig
from moksori.training import load_checkpoint, train
from moksori.training.logging import read_metrics


def _series(run_dir, key):
    return [record[key] for record in read_metrics(run_dir, "train") if key in record]


def waveglow_recipe(make_recipe, run_dir, **overrides):
    recipe = make_recipe("waveglow", run_dir, **overrides)
    recipe.data.batch_size = 2
    return recipe


@pytest.fixture(scope="module")
def waveglow_run(make_recipe, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("waveglow") / "run"
    return train(waveglow_recipe(make_recipe, run_dir, checkpoint_interval=3, eval_interval=3), max_steps=6)


def test_tiny_waveglow_likelihood_rises_when_overfitting(make_recipe, tmp_path):
    recipe = waveglow_recipe(make_recipe, tmp_path / "run", eval_interval=20, lr=2e-3)
    run_dir = train(recipe, max_steps=20)
    loss = _series(run_dir, "loss")
    assert len(loss) == 20 and np.isfinite(loss).all()
    # A negative log-likelihood per sample (0 at the start: the flow begins as an orthogonal map of
    # near-silent audio) falls by nats, not by a ratio. Measured: means of the first and last five
    # steps -0.12 -> -0.93.
    assert np.mean(loss[-5:]) < np.mean(loss[:5]) - 0.5, (loss[:5], loss[-5:])
    assert np.isfinite(read_metrics(run_dir, "val")[-1]["loss"])


def test_waveglow_checkpoint_holds_the_model(waveglow_run):
    checkpoint = load_checkpoint(waveglow_run)
    assert (checkpoint["model_name"], checkpoint["step"]) == ("waveglow", 6)
    assert checkpoint["text_frontend"] is None
    config = WaveGlowConfig.from_dict(checkpoint["model_config"])
    assert config == WaveGlowConfig.preset("tiny")
    model = WaveGlow(config)
    model.load_state_dict(checkpoint["model"])
    assert model.eval().infer(torch.zeros(1, 80, 10), sigma=0.5).shape == (1, 10 * 256)
    assert set(checkpoint["train_state"]["optimizers"]) == {"model"}


def test_waveglow_resume_matches_uninterrupted_run(make_recipe, waveglow_run, tmp_path):
    resumed = tmp_path / "resumed"
    train(waveglow_recipe(make_recipe, resumed, checkpoint_interval=3, eval_interval=3), max_steps=3)
    train(waveglow_recipe(make_recipe, resumed, checkpoint_interval=3, eval_interval=3), max_steps=6, resume=True)
    loss_a, loss_b = _series(waveglow_run, "loss"), _series(resumed, "loss")
    assert len(loss_b) == 6
    np.testing.assert_allclose(loss_b, loss_a, rtol=1e-5)
    state_a, state_b = load_checkpoint(waveglow_run)["model"], load_checkpoint(resumed)["model"]
    assert all(torch.allclose(state_a[key], state_b[key], atol=1e-6) for key in state_a)


def test_waveglow_recipe_errors_name_the_field(make_recipe, tmp_path):
    from moksori.training import RecipeError

    recipe = waveglow_recipe(make_recipe, tmp_path / "run")
    recipe.model_config = {"preset": "v1"}
    with pytest.raises(RecipeError, match=r"model_config.preset: unknown WaveGlow preset 'v1'"):
        train(recipe, max_steps=1)
    recipe.model_config = {"preset": "tiny", "n_group": 7}
    with pytest.raises(RecipeError, match=r"model_config: WaveGlowConfig.n_group: must be even"):
        train(recipe, max_steps=1)


def test_waveglow_trains_on_teacher_forced_glow_tts_mels(make_recipe, glow_checkpoint, tmp_path):
    recipe = waveglow_recipe(make_recipe, tmp_path / "run", eval_interval=100)
    recipe.vocoder_finetune_from = str(glow_checkpoint)
    run_dir = train(recipe, max_steps=2)
    assert len(list((run_dir / "aligned_mels").glob("*.npy"))) == 9
    assert np.isfinite(_series(run_dir, "loss")).all() and len(_series(run_dir, "loss")) == 2


# --- end to end: bundle with an acoustic model, say (CLI), stream, ONNX, import ---------------

THREE = "안녕하세요. 오늘은 날씨가 좋네요.\n\n같이 산책하러 갈까요?"


def _model_tests():
    """tests/models/test_waveglow.py, for its NVIDIA-format checkpoint maker."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "models" / "test_waveglow.py"
    spec = importlib.util.spec_from_file_location("waveglow_model_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_waveglow_voice_speaks_through_the_cli_streams_and_exports(waveglow_run, glow_checkpoint, tmp_path):
    import soundfile

    from moksori.cli import main
    from moksori.synthesis import Synthesizer, export_onnx, read_voice_json

    voice_dir = tmp_path / "voice"
    assert main(["bundle", str(glow_checkpoint), "--vocoder", str(waveglow_run), "--out", str(voice_dir)]) == 0
    assert read_voice_json(voice_dir)["vocoder"]["model_name"] == "waveglow"
    outputs = {}
    for name, flags in {"default": [], "plain": ["--vocoder-sigma", "0.5", "--denoise", "0"],
                        "strong": ["--denoise", "0.5"]}.items():
        out = tmp_path / f"{name}.wav"
        assert main(["say", THREE, "--voice", str(voice_dir), "-o", str(out), "--seed", "1", "--speed", "0.5",
                     "--no-onnx", *flags]) == 0
        outputs[name], rate = soundfile.read(out, dtype="float32")
        assert rate == 22050 and np.isfinite(outputs[name]).all() and np.abs(outputs[name]).max() > 0
    assert outputs["default"].shape == outputs["plain"].shape == outputs["strong"].shape
    assert not np.allclose(outputs["default"], outputs["plain"]) and not np.allclose(outputs["default"], outputs["strong"])
    # The denoiser takes energy away.
    assert np.square(outputs["strong"]).sum() < np.square(outputs["default"]).sum()
    for flag, value in (("--vocoder-sigma", "-1"), ("--denoise", "nan")):
        with pytest.raises(SystemExit):  # argparse: "argument --denoise: must be a finite number >= 0"
            main(["say", "안녕", "--voice", str(voice_dir), "-o", str(tmp_path / "x.wav"), flag, value])

    # Streaming vocodes whole sentences (context_frames None) and equals synthesize.
    synth = Synthesizer(voice_dir, use_onnx=False)
    options = {"seed": 3, "speed": 0.5, "sentence_silence_s": 0.1, "paragraph_silence_s": 0.2}
    whole = synth.synthesize(THREE, **options)
    chunks = list(synth.stream(THREE, **options))
    assert len(chunks) == 3
    np.testing.assert_allclose(np.concatenate(chunks), whole, atol=1e-6)

    written = export_onnx(voice_dir)
    assert {p.name for p in written} == {"acoustic.onnx", "vocoder.onnx"}
    onnx_synth = Synthesizer(voice_dir, use_onnx=True)
    assert onnx_synth.uses_onnx
    for controls in ({}, {"sigma": 0.3, "denoise": 0.0}):
        np.testing.assert_allclose(onnx_synth.synthesize(THREE, **options, **controls),
                                   synth.synthesize(THREE, **options, **controls), atol=2e-4)


def test_nvidia_checkpoint_imports_through_the_cli_into_a_voice(glow_checkpoint, tmp_path):
    from moksori.checkpoint import read_checkpoint
    from moksori.cli import main
    from moksori.synthesis import Synthesizer

    source = tmp_path / "waveglow_256channels.pt"
    _model_tests()._save_nvidia_checkpoint(source)
    imported = tmp_path / "waveglow_imported.pt"
    assert main(["import", "waveglow", str(source), "--out", str(imported)]) == 0
    checkpoint = read_checkpoint(imported, kinds=["waveglow"])
    assert checkpoint["model_config"]["n_flows"] == 4 and checkpoint["step"] == 0
    voice_dir = tmp_path / "voice"
    assert main(["bundle", str(glow_checkpoint), "--vocoder", str(imported), "--out", str(voice_dir)]) == 0
    wave = Synthesizer(voice_dir, use_onnx=False).synthesize("안녕하세요.", seed=1)
    assert np.isfinite(wave).all() and np.abs(wave).max() > 0
    assert main(["import", "hifigan", str(source), "--out", str(tmp_path / "x.pt")]) == 2  # no importer: one clear line
