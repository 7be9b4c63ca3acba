"""A Tacotron2 voice through the synthesizer, the command line and the server: a failed alignment
is retried once with other noise, then reported (never returned silently); long sentences are
split under the decoder's step limit."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from moksori.bench.serve import write_untrained_checkpoint
from moksori.cli import main
from moksori.models import registry
from moksori.models.tacotron2 import Tacotron2Acoustic, Tacotron2Config
from moksori.synthesis import make_bundle
from moksori.synthesis.synthesizer import Synthesizer
from moksori.text import TextFrontend


def tacotron2_voice(root: Path, max_decoder_steps: int) -> Path:
    """A tiny random Tacotron2 whose stop gate never fires: every sentence hits the step limit."""
    frontend = TextFrontend("ko")
    torch.manual_seed(0)
    family = registry.get("tacotron2")
    model = family.build(Tacotron2Config.tiny(len(frontend.symbols), max_decoder_steps=max_decoder_steps))
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.bias.fill_(-50.0)
    acoustic = write_untrained_checkpoint(root / "acoustic.pt", model, "tacotron2", frontend)
    vocoder_family = registry.get("hifigan")
    vocoder = write_untrained_checkpoint(root / "vocoder.pt", vocoder_family.build(vocoder_family.config("tiny")),
                                         "hifigan", None)
    return make_bundle(acoustic, root / "voice", vocoder_ckpt=vocoder, name="t2")


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> Path:
    return tacotron2_voice(tmp_path_factory.mktemp("tacotron2_voice"), max_decoder_steps=150)


def test_a_failed_alignment_is_retried_with_other_noise_then_reported(voice, monkeypatch):
    calls = []
    original = Tacotron2Acoustic.infer

    def counting(self, ids, lengths, controls, noise):
        calls.append((ids.size(0), noise(0, 1, 2).tobytes()))
        return original(self, ids, lengths, controls, noise)

    monkeypatch.setattr(Tacotron2Acoustic, "infer", counting)
    synthesizer = Synthesizer(voice, use_onnx=False)
    result = synthesizer.synthesize_report("안녕하세요. 반가워요.", seed=1)
    # One batch of both sentences, then one retry of each with different noise.
    assert [rows for rows, _ in calls] == [2, 1, 1]
    assert calls[1][1] != calls[0][1]
    assert [failure.index for failure in result.alignment_failures] == [0, 1]
    assert result.sentences_checked == 2
    assert "hit max_decoder_steps" in result.alignment_summary()
    assert result.alignment_summary().startswith("failed; sentence 1")
    assert result.wave.size > 0  # the audio still comes back, flagged


def test_long_sentences_are_split_under_the_step_limit(tmp_path):
    voice = tacotron2_voice(tmp_path, max_decoder_steps=200)
    synthesizer = Synthesizer(voice, use_onnx=False)
    limit = synthesizer.voice.acoustic_model.max_symbols
    assert limit == 20
    text = "오늘은 날씨가 좋아서, 우리는 공원에 가서 천천히 산책을 하고, 점심을 맛있게 먹었어요."
    sentences = synthesizer._sentences(text, 0.2, 0.6)
    assert len(sentences) > 2
    assert all(len(sentence.ids) <= limit for sentence in sentences)
    assert " ".join(sentence.text for sentence in sentences).split() == text.split()


def test_say_warns_about_a_failed_alignment(voice, tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert main(["say", "안녕하세요.", "--voice", str(voice), "-o", str(out), "--seed", "0", "--no-onnx"]) == 0
    err = capsys.readouterr().err
    assert "warning: alignment failed in sentence 1" in err and "hit max_decoder_steps" in err
    assert out.is_file()


def test_server_names_a_failed_alignment_in_a_header(voice):
    from moksori.server import ServerSettings, create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    settings = ServerSettings(voices_dir=voice.parent, db_url=None, require_api_keys=False)
    with TestClient(create_app(settings)) as client:
        response = client.get("/infer", params={"text": "안녕하세요.", "voice": "t2"})
        assert response.status_code == 200
        assert response.headers["X-Moksori-Alignment"].startswith("failed; sentence 1")
        assert "hit max_decoder_steps" in response.headers["X-Moksori-Alignment"]


def test_an_imported_nvidia_checkpoint_becomes_an_english_voice(tmp_path, capsys):
    """``moksori import tacotron2`` → ``moksori bundle`` → ``moksori say``: the voice reads text with
    NVIDIA's own symbol table and english_cleaners (the importer's layout is checked against
    NVIDIA's names and shapes in tests/models/test_tacotron2.py)."""
    from moksori.synthesis import load_voice

    torch.manual_seed(0)
    model = registry.get("tacotron2").build(Tacotron2Config.tiny(148, max_decoder_steps=30))
    published = tmp_path / "tacotron2_statedict.pt"
    torch.save({"state_dict": model.state_dict(), "optimizer": {}, "learning_rate": 1e-3, "iteration": 1}, published)
    checkpoint = tmp_path / "nvidia.pt"
    assert main(["import", "tacotron2", str(published), "--out", str(checkpoint)]) == 0
    voice_dir = tmp_path / "nvidia_voice"
    assert main(["bundle", str(checkpoint), "--out", str(voice_dir), "--name", "nvidia"]) == 0
    voice = load_voice(voice_dir)
    assert voice.frontend.cleaners == "nvidia_english" and len(voice.frontend.symbols) == 148
    assert voice.frontend.to_ids("Hi, Dr. Who!") == [45, 46, 6, 11, 41, 52, 40, 57, 52, 55, 11, 60, 45, 52, 2]  # "hi, doctor who!"
    for key, value in model.state_dict().items():
        assert torch.equal(voice.acoustic.state_dict()[key], value), key
    out = tmp_path / "hello.wav"
    assert main(["say", "Hello, world.", "--voice", str(voice_dir), "-o", str(out), "--seed", "0"]) == 0
    assert out.is_file() and "real-time factor" in capsys.readouterr().out


def test_exported_voice_speaks_the_same_through_onnxruntime(voice, tmp_path):
    pytest.importorskip("onnxruntime")
    import shutil

    from moksori.synthesis import export_onnx

    copy = tmp_path / "t2_onnx"
    shutil.copytree(voice, copy)
    written = {path.name for path in export_onnx(copy)}
    assert {"acoustic.onnx", "acoustic.decoder_step.onnx", "acoustic.postnet.onnx", "vocoder.onnx"} <= written
    text = "안녕하세요. 반가워요."
    torch_result = Synthesizer(copy, use_onnx=False).synthesize_report(text, seed=3)
    onnx_synth = Synthesizer(copy, use_onnx=True)
    assert onnx_synth.uses_onnx
    onnx_result = onnx_synth.synthesize_report(text, seed=3)
    assert onnx_result.wave.shape == torch_result.wave.shape
    assert abs(onnx_result.wave - torch_result.wave).max() < 1e-3
    assert onnx_result.alignment_summary() == torch_result.alignment_summary()


def test_controls_the_voice_does_not_read_are_refused_by_name(voice):
    """Tacotron2 sets its own pace (no length_scale) and a HiFi-GAN has no sigma or denoiser: the
    audio came back unchanged, as if the control had worked."""
    synthesizer = Synthesizer(voice, use_onnx=False)
    with pytest.raises(ValueError, match=r"speed: voice 't2' \(tacotron2\) has no speed control"):
        synthesizer.synthesize("안녕.", speed=1.5)
    for name, label in (("sigma", "vocoder_sigma"), ("denoise", "denoise")):
        with pytest.raises(ValueError, match=rf"{label}: voice 't2''s vocoder \(hifigan\) has no {name} control"):
            synthesizer.synthesize("안녕.", **{name: 0.5})


def test_say_refuses_a_sampling_temperature_tacotron2_does_not_read(voice, tmp_path, capsys):
    assert main(["say", "안녕.", "--voice", str(voice), "--sigma", "0.3", "-o", str(tmp_path / "x.wav")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "moksori say: error: --sigma/--noise-scale: voice 't2' (tacotron2) has no sampling temperature; leave it out")
    assert not (tmp_path / "x.wav").exists()
