from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from moksori.synthesis import (
    Synthesizer,
    VoiceError,
    export_onnx,
    load_voice,
    make_bundle,
)
import math

from moksori.models.glow_tts import ONNX_NOISE_FRAMES_PER_TOKEN, GlowTTSAcoustic
from moksori.models.interfaces import Controls
from moksori.synthesis.inference import sentence_noise
from moksori.synthesis.onnx_runtime import OnnxAcoustic, OnnxVocoder

TEXTS = ("안녕하세요.", "오늘은 날씨가 정말 좋네요, 같이 산책하러 갈까요?")


def test_export_writes_files_and_lists_them(onnx_voice_dir: Path) -> None:
    data = json.loads((onnx_voice_dir / "voice.json").read_text())
    assert {"acoustic.onnx", "vocoder.onnx"} <= set(data["files"])
    for name in ("acoustic.onnx", "vocoder.onnx"):
        model = onnx.load(str(onnx_voice_dir / name))
        onnx.checker.check_model(model)
        assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17
    load_voice(onnx_voice_dir)  # checksums of the new files verify


def test_acoustic_matches_pytorch(onnx_voice_dir: Path, frontend) -> None:
    voice = load_voice(onnx_voice_dir)
    runtime = OnnxAcoustic(onnx_voice_dir / "acoustic.onnx", GlowTTSAcoustic, 80, num_threads=1)
    wrapper = voice.acoustic_model
    for text in TEXTS:  # different lengths: the graph is dynamic in tokens and frames
        ids = frontend.to_ids(text)
        for noise_scale, length_scale in ((0.0, 1.0), (0.0, 1.7), (0.667, 1.0)):
            noise = sentence_noise(0, 0, math.ceil(len(ids) * ONNX_NOISE_FRAMES_PER_TOKEN * max(length_scale, 1)), 80)
            with torch.inference_mode():
                expected = wrapper(torch.tensor([ids]), torch.tensor([len(ids)]),
                                   torch.tensor([noise_scale, length_scale]), torch.from_numpy(noise)[None])[0]
                if noise_scale == 0:
                    plain, _, _ = voice.acoustic.infer(torch.tensor([ids]), torch.tensor([len(ids)]),
                                                       noise_scale=0.0, length_scale=length_scale)
                    assert torch.allclose(plain[0], expected, atol=1e-5)
            got = runtime.infer(ids, Controls(length_scale, noise_scale), lambda row, n, c: sentence_noise(0, 0, n, c))
            assert got.shape == tuple(expected.shape)
            np.testing.assert_allclose(got, expected.numpy(), atol=1e-3)


def test_vocoder_matches_pytorch(onnx_voice_dir: Path) -> None:
    voice = load_voice(onnx_voice_dir)
    runtime = OnnxVocoder(onnx_voice_dir / "vocoder.onnx", num_threads=1)
    generator = torch.Generator().manual_seed(0)
    for frames in (11, 40):
        mel = torch.randn(80, frames, generator=generator) * 2 - 5
        with torch.inference_mode():
            expected = voice.vocoder.infer(mel).numpy()
        got = runtime(mel.numpy())
        assert got.shape == (frames * 256,)
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_synthesizer_picks_onnx_when_present(onnx_voice_dir: Path, voice_dir: Path) -> None:
    auto = Synthesizer(onnx_voice_dir, num_threads=1)
    assert auto.uses_onnx
    assert not Synthesizer(voice_dir).uses_onnx
    torch_path = Synthesizer(onnx_voice_dir, use_onnx=False)
    assert not torch_path.uses_onnx
    with pytest.raises(VoiceError, match="no ONNX files"):
        Synthesizer(voice_dir, use_onnx=True)
    text = "\n\n".join(TEXTS)
    onnx_wave = auto.synthesize(text, seed=4)
    torch_wave = torch_path.synthesize(text, seed=4)
    assert onnx_wave.dtype == np.float32 and onnx_wave.shape == torch_wave.shape
    np.testing.assert_allclose(onnx_wave, torch_wave, atol=2e-3)
    chunks = list(auto.stream(text, seed=4))
    assert len(chunks) == 3  # the first sentence as head + rest, then the second
    np.testing.assert_allclose(np.concatenate(chunks), onnx_wave, atol=1e-5)


def test_griffin_lim_voice_exports_acoustic_only(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    voice = make_bundle(checkpoints["acoustic"], tmp_path / "gl")
    assert [p.name for p in export_onnx(voice)] == ["acoustic.onnx"]
    synth = Synthesizer(voice)
    assert synth.uses_onnx
    assert synth.synthesize(TEXTS[0], seed=0).size > 0


def test_multi_speaker_export(tmp_path: Path, frontend, helpers) -> None:
    model = helpers.tiny_glow_tts(frontend, n_speakers=3)
    ckpt = helpers.write_checkpoint(tmp_path / "ms.pt", model, "glow_tts", frontend=frontend, speakers=["a", "b", "c"])
    voice = make_bundle(ckpt, tmp_path / "ms")
    export_onnx(voice)
    onnx_synth, torch_synth = Synthesizer(voice), Synthesizer(voice, use_onnx=False)
    assert onnx_synth.uses_onnx and "sid" in onnx_synth._onnx_acoustic.input_names
    for speaker in ("a", "c"):
        ids = frontend.to_ids(TEXTS[1])
        controls = Controls(1.0, 0.0, onnx_synth.speaker_id(speaker))
        got = onnx_synth._onnx_acoustic.infer(ids, controls, lambda row, n, c: np.zeros((c, n), np.float32))
        sid = torch.tensor([torch_synth.speaker_id(speaker)])
        with torch.inference_mode():
            expected, _, _ = load_voice(voice).acoustic.infer(torch.tensor([ids]), torch.tensor([len(ids)]), g=sid,
                                                              noise_scale=0.0)
        np.testing.assert_allclose(got, expected[0].numpy(), atol=1e-3)


# --- a Vocos vocoder ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vocos_onnx_voice_dir(tmp_path_factory: pytest.TempPathFactory, checkpoints: dict[str, Path], helpers) -> Path:
    from moksori.models import build_model
    from moksori.models.vocos import VocosConfig

    torch.manual_seed(0)
    # Wider than the tiny preset's receptive field: 5 convolutions of kernel 9 + 2 = 22 frames of context.
    vocos = build_model("vocos", {**VocosConfig.preset("tiny").to_dict(), "kernel_size": 9, "num_layers": 4})
    with torch.no_grad():
        for block in vocos.convnext:  # untrained layer scales are 1/num_layers; make every layer count
            block.gamma.fill_(1.0)
        vocos.out.weight.normal_(0.0, 0.1)
        vocos.out.bias[: vocos.bins].fill_(2.0)  # log-magnitudes around 2: audio of speech-like level
    root = tmp_path_factory.mktemp("vocos_onnx")
    ckpt = helpers.write_checkpoint(root / "vocos.pt", vocos, "vocos")
    voice = make_bundle(checkpoints["acoustic"], root / "voice", vocoder_ckpt=ckpt)
    export_onnx(voice)
    return voice


def test_vocos_vocoder_exports_and_matches_pytorch(vocos_onnx_voice_dir: Path) -> None:
    data = json.loads((vocos_onnx_voice_dir / "voice.json").read_text())
    assert data["vocoder"]["model_name"] == "vocos"
    assert {"acoustic.onnx", "vocoder.onnx"} <= set(data["files"])
    onnx.checker.check_model(onnx.load(str(vocos_onnx_voice_dir / "vocoder.onnx")))
    voice = load_voice(vocos_onnx_voice_dir)
    runtime = OnnxVocoder(vocos_onnx_voice_dir / "vocoder.onnx", num_threads=1)
    generator = torch.Generator().manual_seed(0)
    for frames in (1, 11, 40, 173):  # the graph is dynamic in frames (exported with 32)
        mel = torch.randn(80, frames, generator=generator) * 2 - 5
        with torch.inference_mode():
            expected = voice.vocoder.infer(mel).numpy()
        got = runtime(mel.numpy())
        assert got.shape == (frames * 256,)
        assert np.abs(expected).max() > 0.1
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_vocos_voice_synthesizes_with_onnx_like_pytorch(vocos_onnx_voice_dir: Path) -> None:
    auto = Synthesizer(vocos_onnx_voice_dir, num_threads=1)
    torch_path = Synthesizer(vocos_onnx_voice_dir, use_onnx=False)
    assert auto.uses_onnx and not torch_path.uses_onnx
    assert auto._context_frames == torch_path._context_frames == 22
    text = "\n\n".join(TEXTS)
    onnx_wave = auto.synthesize(text, seed=4)
    torch_wave = torch_path.synthesize(text, seed=4)
    assert onnx_wave.shape == torch_wave.shape and np.abs(torch_wave).max() > 0.1
    np.testing.assert_allclose(onnx_wave, torch_wave, atol=2e-3)
    chunks = list(auto.stream(text, seed=4))
    assert len(chunks) == 3  # the first sentence as head + rest, then the second
    np.testing.assert_allclose(np.concatenate(chunks), onnx_wave, atol=1e-5)
