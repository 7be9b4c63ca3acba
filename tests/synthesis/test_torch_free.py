"""The torch-free ONNX Runtime path: an exported voice synthesises without importing torch, with the
same audio as the ONNX path with the PyTorch models loaded."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from moksori.audio import MelConfig, wav_bytes
from moksori.models import onnx_runners, registry
from moksori.synthesis import VoiceError, load_voice
from moksori.synthesis.onnx_voice import load_onnx_voice, runs_without_torch, torch_free_reason
from moksori.synthesis.synthesizer import Synthesizer

LONG = " ".join(["오늘은 바람이 조금 불지만 하늘이 맑아서 산책하기 좋은 날입니다"] * 3)  # > 512 frames: vocoded in spans
TEXT = f"안녕하세요. 반갑습니다!\n\n{LONG}. 고맙습니다."


def test_exported_voice_runs_without_pytorch_models_and_sounds_the_same(onnx_voice_dir: Path) -> None:
    lite = Synthesizer(onnx_voice_dir, num_threads=1)
    loaded = Synthesizer(load_voice(onnx_voice_dir), num_threads=1, use_onnx=True)  # today's ONNX path
    assert lite.torch_free and lite.uses_onnx and isinstance(lite.voice.acoustic, Path)
    assert loaded.uses_onnx and not loaded.torch_free
    assert lite.sample_rate == loaded.sample_rate and lite._context_frames == loaded._context_frames
    options = dict(seed=3, speed=1.2, noise_scale=0.5)
    wave = lite.synthesize(TEXT, **options)
    assert wave.size > 4 * (512 + lite._context_frames) * 256  # long enough that the long sentence went in spans
    np.testing.assert_array_equal(wave, loaded.synthesize(TEXT, **options))
    chunks, expected = list(lite.stream(TEXT, **options)), list(loaded.stream(TEXT, **options))
    assert len(chunks) == len(expected) >= 4
    for got, want in zip(chunks, expected):
        np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def flowtron_onnx_voice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny exported Flowtron voice with a fixed mixture prior, untrained but perturbed so that the
    flows, the gate and the prior's means and variances all shape the mel."""
    import torch

    from moksori.bench import write_untrained_checkpoint
    from moksori.models.flowtron import FlowtronConfig
    from moksori.synthesis import export_onnx, make_bundle
    from moksori.text import TextFrontend

    root = tmp_path_factory.mktemp("flowtron_onnx")
    frontend = TextFrontend("ko", add_blank=True)
    torch.manual_seed(0)
    config = FlowtronConfig.tiny(len(frontend.symbols), max_decoder_steps=150, n_components=2)
    model = registry.get("flowtron").build(config.to_dict())
    with torch.no_grad():
        for flow in model.flows:
            step = getattr(flow, "ar_step", flow)
            step.conv.weight.normal_(0, 0.1)
            step.conv.bias.normal_(0, 0.1)
        getattr(model.flows[-1], "ar_step", model.flows[-1]).gate_layer.linear_layer.weight.normal_(0, 1.0)
        model.gaussian_mixture.mean.normal_(0, 1.0)
        model.gaussian_mixture.log_var.normal_(0, 0.3)
    acoustic = write_untrained_checkpoint(root / "acoustic.pt", model, "flowtron", frontend)
    hifigan = registry.get("hifigan")
    vocoder = write_untrained_checkpoint(root / "vocoder.pt", hifigan.build(hifigan.config("tiny")), "hifigan", None)
    voice = make_bundle(acoustic, root / "flowtron", vocoder_ckpt=vocoder, name="flowtron")
    export_onnx(voice)
    return voice


FLOWTRON_TEXT = "안녕하세요. 반가워요, 오늘은 좋은 날이에요."


@pytest.fixture(scope="module")
def waveglow_onnx_voice_dir(tmp_path_factory: pytest.TempPathFactory, checkpoints: dict[str, Path]) -> Path:
    """A tiny exported Glow-TTS + WaveGlow voice; the WaveGlow's couplings are not the identity (its
    zero ``end`` layers get weights), so its output for a zero mel, the denoiser's bias, is not zero."""
    import torch

    from moksori.bench import write_untrained_checkpoint
    from moksori.synthesis import export_onnx, make_bundle

    root = tmp_path_factory.mktemp("waveglow_onnx")
    family = registry.get("waveglow")
    torch.manual_seed(0)
    model = family.build(family.config("tiny"))
    with torch.no_grad():
        for wn in model.WN:
            wn.end.weight.normal_(0.0, 0.1)
            wn.end.bias.normal_(0.0, 0.1)
    vocoder = write_untrained_checkpoint(root / "vocoder.pt", model, "waveglow", None)
    voice = make_bundle(checkpoints["acoustic"], root / "waveglow", vocoder_ckpt=vocoder, name="waveglow")
    export_onnx(voice)
    return voice


WAVEGLOW_TEXT = "안녕하세요. 반갑습니다!"


@pytest.mark.parametrize(
    ("voice_fixture", "text"),
    [("onnx_voice_dir", TEXT), ("flowtron_onnx_voice_dir", FLOWTRON_TEXT), ("waveglow_onnx_voice_dir", WAVEGLOW_TEXT)],
    ids=["glow_tts", "flowtron", "waveglow"],
)
def test_synthesis_in_a_fresh_process_never_imports_torch(
    voice_fixture: str, text: str, request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    voice_dir = request.getfixturevalue(voice_fixture)
    out = tmp_path / "say.wav"
    script = f"""
import json, sys
from moksori.cli import main
from moksori.synthesis import Synthesizer
rc = main(["say", {text!r}, "--voice", {str(voice_dir)!r}, "-o", {str(out)!r}, "--seed", "3", "--threads", "1"])
synth = Synthesizer({str(voice_dir)!r}, num_threads=1)
chunks = list(synth.stream("하나. 둘.", seed=1))
print(json.dumps({{"rc": rc, "torch": "torch" in sys.modules, "torch_free": synth.torch_free, "chunks": len(chunks)}}))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report.pop("chunks") >= 2  # two sentences (the first may come as a head and its rest)
    assert report == {"rc": 0, "torch": False, "torch_free": True}
    # The file is what the ONNX path with the PyTorch models loaded writes, sample for sample.
    reference = Synthesizer(load_voice(voice_dir), num_threads=1, use_onnx=True).synthesize(text, seed=3)
    expected, _ = soundfile.read(io.BytesIO(wav_bytes(reference, 22050)), dtype="int16")
    got, rate = soundfile.read(out, dtype="int16")
    assert rate == 22050
    np.testing.assert_array_equal(got, expected)


def _tiny_model(name: str, **overrides: object):
    family = registry.get(name)
    config = {**family.config("tiny", n_vocab=20).to_dict(), **overrides}
    return family, family.build(config)


@pytest.mark.parametrize(("name", "overrides"), [
    ("glow_tts", {}), ("glow_tts", {"n_speakers": 3, "gin_channels": 8}),
    ("tacotron2", {}), ("tacotron2", {"max_decoder_steps": 333, "n_frames_per_step": 2, "n_speakers": 2,
                                      "speaker_embedding_dim": 4}),
    ("flowtron", {}), ("flowtron", {"max_decoder_steps": 333, "n_speakers": 3, "n_components": 2}),
])
def test_acoustic_runner_facts_are_the_adapters(name: str, overrides: dict) -> None:
    family, model = _tiny_model(name, **overrides)
    adapter = family.inference(model, MelConfig())
    runner = onnx_runners.acoustic_runner(name, model.config.to_dict())
    assert isinstance(adapter, type(runner))  # the PyTorch adapter runs the same ONNX code
    assert (runner.knobs, runner.max_symbols, runner.n_speakers) == (adapter.knobs, adapter.max_symbols,
                                                                       adapter.n_speakers)
    # the mixture components a request may choose among (Flowtron's style control)
    n_components = [getattr(a.model.config, "n_components", 0) for a in (runner, adapter)]
    assert n_components[0] == n_components[1]


@pytest.mark.parametrize(("name", "overrides"), [
    ("hifigan", {}), ("vocos", {}), ("vocos", {"kernel_size": 9, "num_layers": 4}),
    ("waveglow", {}), ("waveglow", {"n_group": 4, "win_size": 768}),
])
def test_vocoder_runner_facts_are_the_adapters(name: str, overrides: dict) -> None:
    family, model = _tiny_model(name, **overrides)
    adapter = family.inference(model, MelConfig())
    runner = onnx_runners.vocoder_runner(name, model.config.to_dict())
    assert isinstance(adapter, type(runner))
    assert (runner.context_frames, runner.knobs, runner.has_onnx_graph) == (adapter.context_frames, adapter.knobs,
                                                                            adapter.has_onnx_graph)
    if name == "waveglow":  # the framing of its noise and denoiser, and its default seed
        facts = ("n_group", "hop_size", "win_size", "n_mel_channels", "seed")
        assert [getattr(runner, fact) for fact in facts] == [getattr(adapter, fact) for fact in facts]


def test_every_runner_names_a_registered_family_of_its_role() -> None:
    for names, role in ((onnx_runners.ACOUSTIC_RUNNERS, registry.ACOUSTIC), (onnx_runners.VOCODER_RUNNERS, registry.VOCODER)):
        for name in names:
            assert registry.get(name, role).has_weights


def test_what_needs_torch_keeps_the_pytorch_path(onnx_voice_dir: Path, voice_dir: Path) -> None:
    assert not Synthesizer(onnx_voice_dir, use_onnx=False).torch_free
    bf16 = Synthesizer(onnx_voice_dir, precision="bf16")
    assert not bf16.torch_free and not bf16.uses_onnx
    assert not Synthesizer(voice_dir).torch_free  # no ONNX files
    assert runs_without_torch(onnx_voice_dir) and not runs_without_torch(onnx_voice_dir, "int8")
    assert not runs_without_torch(voice_dir) and not runs_without_torch(voice_dir.parent / "missing")
    with pytest.raises(VoiceError, match="no ONNX files"):
        load_onnx_voice(voice_dir)
    config = json.loads((onnx_voice_dir / "voice.json").read_text())
    assert torch_free_reason(config) is None
    cases = {
        "griffin_lim": ({**config, "vocoder": {"name": "griffin_lim"}}, "Griffin-Lim"),
        "waveglow, hifigan's config": ({**config, "vocoder": {**config["vocoder"], "model_name": "waveglow"}},
                                       "model config lacks"),
        "wavenet": ({**config, "vocoder": {**config["vocoder"], "model_name": "wavenet"}}, "wavenet"),
        "flowtron, old config": ({**config, "acoustic": {**config["acoustic"], "model_name": "flowtron"}},
                                 "model config lacks"),
        "no vocoder.onnx": ({**config, "files": {k: v for k, v in config["files"].items() if k != "vocoder.onnx"}},
                            "no vocoder.onnx"),
        "old config": ({**config, "vocoder": {**config["vocoder"], "model_name": "vocos", "model_config": {}}},
                       "model config lacks"),
    }
    for case, (changed, reason) in cases.items():
        assert reason in (torch_free_reason(changed) or ""), case


def test_a_damaged_onnx_file_is_refused_before_synthesis(onnx_voice_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(onnx_voice_dir, tmp_path / "copy"))
    with open(copy / "vocoder.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(VoiceError, match="vocoder.onnx: sha256"):
        load_onnx_voice(copy)


def test_server_with_an_exported_voice_never_imports_torch(onnx_voice_dir: Path, tmp_path: Path) -> None:
    # With a database, as `moksori serve` runs it: the studio (and its judges' check) start too.
    script = f"""
import json, sys, warnings
warnings.simplefilter("ignore")
from fastapi.testclient import TestClient
from moksori.server import ServerSettings, create_app
settings = ServerSettings(voices_dir={str(onnx_voice_dir.parent)!r}, db_url={f"sqlite:///{tmp_path / 'm.db'}"!r},
                          require_api_keys=False, synthesis_threads=1)
with TestClient(create_app(settings)) as client:
    wav = client.get("/infer", params={{"text": "안녕하세요. 반갑습니다.", "voice": {onnx_voice_dir.name!r}, "seed": 1}})
    speech = client.post("/v1/audio/speech", json={{"input": "안녕하세요.", "voice": {onnx_voice_dir.name!r}}})
print(json.dumps({{"infer": [wav.status_code, wav.headers["content-type"], len(wav.content)],
                  "speech": speech.status_code, "torch": "torch" in sys.modules}}))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["infer"][:2] == [200, "audio/wav"] and report["infer"][2] > 1000
    assert report["speech"] == 200 and report["torch"] is False


def test_tacotron2_decoder_loop_runs_without_torch_and_gives_the_same_audio_and_reports(tmp_path: Path) -> None:
    import torch

    from moksori.bench import write_untrained_checkpoint
    from moksori.models.tacotron2 import DecoderState, Tacotron2Config
    from moksori.synthesis import export_onnx, make_bundle
    from moksori.text import TextFrontend

    assert DecoderState._fields == onnx_runners.TACOTRON2_STATE  # the step graph's inputs, by name
    frontend = TextFrontend("ko")
    torch.manual_seed(0)
    model = registry.get("tacotron2").build(Tacotron2Config.tiny(len(frontend.symbols), max_decoder_steps=60))
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.bias.fill_(-50.0)  # the stop gate never fires: every sentence fails
    acoustic = write_untrained_checkpoint(tmp_path / "acoustic.pt", model, "tacotron2", frontend)
    hifigan = registry.get("hifigan")
    vocoder = write_untrained_checkpoint(tmp_path / "vocoder.pt", hifigan.build(hifigan.config("tiny")), "hifigan", None)
    voice = make_bundle(acoustic, tmp_path / "t2", vocoder_ckpt=vocoder, name="t2")
    export_onnx(voice)
    lite = Synthesizer(voice, num_threads=1)
    loaded = Synthesizer(load_voice(voice), num_threads=1, use_onnx=True)
    assert lite.torch_free and not loaded.torch_free
    assert lite._acoustic.max_symbols == loaded._acoustic.max_symbols
    text = "안녕하세요. 반가워요, 오늘은 좋은 날이에요."
    got, expected = lite.synthesize_report(text, seed=2), loaded.synthesize_report(text, seed=2)
    np.testing.assert_array_equal(got.wave, expected.wave)
    assert got.alignment_summary() == expected.alignment_summary()
    assert "hit max_decoder_steps" in got.alignment_summary()


def test_flowtron_flows_run_without_torch_and_give_the_same_audio_and_reports(flowtron_onnx_voice_dir: Path) -> None:
    lite = Synthesizer(flowtron_onnx_voice_dir, num_threads=1)
    loaded = Synthesizer(load_voice(flowtron_onnx_voice_dir), num_threads=1, use_onnx=True)  # the PyTorch adapter's
    assert lite.torch_free and loaded.uses_onnx and not loaded.torch_free
    assert type(loaded._acoustic) is not type(lite._acoustic) and isinstance(loaded._acoustic, type(lite._acoustic))
    for options in (dict(seed=2), dict(seed=5, noise_scale=0.3)):
        got = lite.synthesize_report(FLOWTRON_TEXT, **options)
        expected = loaded.synthesize_report(FLOWTRON_TEXT, **options)
        np.testing.assert_array_equal(got.wave, expected.wave)
        assert got.alignment_summary() == expected.alignment_summary()
    chunks, expected_chunks = list(lite.stream(FLOWTRON_TEXT, seed=2)), list(loaded.stream(FLOWTRON_TEXT, seed=2))
    assert len(chunks) == len(expected_chunks) >= 2
    for got_chunk, want in zip(chunks, expected_chunks):
        np.testing.assert_array_equal(got_chunk, want)
    # A mixture component is checked against the model's count alike.
    for synth in (lite, loaded):
        assert synth.style_controls(component=1) == {"component": 1}
        with pytest.raises(ValueError, match="style_component must be in 0..1"):
            synth.style_controls(component=2)
    # Style references run through the exported reference encoder (acoustic.encode.onnx) alike.
    ref_mel = np.random.default_rng(3).normal(-4.0, 1.5, (80, 40)).astype(np.float32)
    plain = lite.synthesize(FLOWTRON_TEXT, seed=2)
    for style in ({"component": 1}, {"ref_mel": ref_mel, "strength": 0.8},
                  {"ref_mel": ref_mel, "segments": 3, "ref_mel_b": ref_mel[:, :20], "alpha": 0.5}):
        got = lite.synthesize_report(FLOWTRON_TEXT, seed=2, style=style)
        expected = loaded.synthesize_report(FLOWTRON_TEXT, seed=2, style=style)
        np.testing.assert_array_equal(got.wave, expected.wave)
        assert got.alignment_summary() == expected.alignment_summary()
        assert got.wave.shape != plain.shape or not np.allclose(got.wave, plain)


def test_waveglow_noise_and_denoiser_run_without_torch_and_give_the_same_audio(waveglow_onnx_voice_dir: Path) -> None:
    lite = Synthesizer(waveglow_onnx_voice_dir, num_threads=1)
    loaded = Synthesizer(load_voice(waveglow_onnx_voice_dir), num_threads=1, use_onnx=True)  # the PyTorch adapter's
    assert lite.torch_free and loaded.uses_onnx and not loaded.torch_free
    assert isinstance(loaded._vocoder, type(lite._vocoder)) and lite._context_frames is None
    waves = []
    for options in (dict(seed=2), dict(seed=2, sigma=0.3), dict(seed=2, sigma=0.3, denoise=0.0),
                    dict(seed=7, sigma=1.0, denoise=0.3)):
        wave = lite.synthesize(WAVEGLOW_TEXT, **options)
        np.testing.assert_allclose(wave, loaded.synthesize(WAVEGLOW_TEXT, **options), atol=1e-5, rtol=0)
        waves.append(wave)
    assert all(np.abs(a - b).max() > 1e-3 for a, b in zip(waves, waves[1:]))  # seed, sigma and denoise all count
    chunks, expected = list(lite.stream(WAVEGLOW_TEXT, seed=2)), list(loaded.stream(WAVEGLOW_TEXT, seed=2))
    assert len(chunks) == len(expected) >= 2
    for got, want in zip(chunks, expected):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.concatenate(chunks), waves[0], atol=1e-5, rtol=0)
