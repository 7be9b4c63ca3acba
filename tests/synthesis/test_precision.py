"""Reduced-precision synthesis (bf16 autocast, int8 dynamic quantisation) on tiny voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from moksori.models import build_model
from moksori.models.interfaces import ConvVocoder
from moksori.models.vocos import VocosConfig
from moksori.synthesis import Synthesizer
from moksori.synthesis.bundle import update_voice_json
from moksori.synthesis.precision import PrecisionError, check_precision, supports, with_precision

TEXT = "안녕하세요. 오늘은 날씨가 좋네요."


def test_bf16_runs_the_declared_modules_and_keeps_durations(voice_dir: Path) -> None:
    fp32 = Synthesizer(voice_dir, use_onnx=False)
    reference = fp32.synthesize(TEXT, seed=3)
    bf16 = Synthesizer(voice_dir, use_onnx=False, precision="bf16")
    assert bf16.precision_modules == ["acoustic.model.decoder", "vocoder.model"]
    reduced = bf16.synthesize(TEXT, seed=3)
    assert reduced.dtype == np.float32 and reduced.shape == reference.shape  # same rounded durations
    assert 0 < np.abs(reduced - reference).max() < 0.5  # really computed in bf16, and close
    # The fp32 synthesizer shares the weights and is untouched by the bf16 one.
    assert np.array_equal(fp32.synthesize(TEXT, seed=3), reference)
    assert all(p.dtype == torch.float32 for p in fp32.voice.acoustic.parameters())


def test_int8_refused_where_nothing_is_quantisable(voice_dir: Path) -> None:
    # Glow-TTS's decoder and HiFi-GAN are convolutions: dynamic int8 covers Linear/LSTM only.
    with pytest.raises(PrecisionError, match="int8 applies to no module"):
        Synthesizer(voice_dir, use_onnx=False, precision="int8")


def test_int8_quantises_vocos_linear_layers_only_in_a_copy() -> None:
    torch.manual_seed(0)
    adapter = ConvVocoder(build_model("vocos", VocosConfig.preset("tiny").to_dict())).eval()
    assert adapter.precision_modules == ("model.embed", "model.convnext")
    assert supports(adapter, "int8")
    reduced = with_precision(adapter, "int8")
    kinds = {type(m).__module__ for m in reduced.modules()}
    assert any("quantized" in kind for kind in kinds)
    assert not any("quantized" in type(m).__module__ for m in adapter.modules())
    assert type(reduced.model.out) is torch.nn.Linear  # the phase/magnitude head stays fp32
    mel = torch.randn(80, 40)
    with torch.inference_mode():
        wave, reference = reduced.infer(mel), adapter.infer(mel)
    assert wave.shape == reference.shape and wave.dtype == torch.float32
    assert 0 < (wave - reference).abs().max() < 0.5 * reference.abs().max() + 1e-3


def test_bad_precision_and_onnx_are_refused(voice_dir: Path, onnx_voice_dir: Path) -> None:
    with pytest.raises(PrecisionError, match="one of fp32, bf16, int8, auto"):
        Synthesizer(voice_dir, precision="fp16")
    assert check_precision(" BF16 ") == "bf16"
    with pytest.raises(PrecisionError, match="ONNX Runtime runs fp32"):
        Synthesizer(onnx_voice_dir, use_onnx=True, precision="bf16")
    assert not Synthesizer(onnx_voice_dir, precision="bf16").uses_onnx  # auto choice: PyTorch


def test_unchecked_precision_warns_and_auto_follows_the_record(
    tmp_path: Path, voice_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from moksori.synthesis import precision as precision_module

    monkeypatch.setattr(precision_module, "native_bf16", lambda: True)  # a bf16 record counts on this CPU

    voice = Path(shutil.copytree(voice_dir, tmp_path / "voice"))
    with caplog.at_level("WARNING"):
        synthesizer = Synthesizer(voice, precision="bf16")
    assert "was not checked for bf16" in (synthesizer.precision_warning or "")
    assert "was not checked for bf16" in caplog.text
    assert Synthesizer(voice, precision="auto").precision == "fp32"
    update_voice_json(voice, {"precision": {"recommended": "bf16", "checked": {"bf16": {"safe": True}}}})
    checked = Synthesizer(voice, precision="auto")
    assert checked.precision == "bf16" and checked.precision_warning is None
    update_voice_json(voice, {"precision": {"recommended": "fp32",
                                            "checked": {"bf16": {"safe": False, "reason": "MCD 0.9 dB"}}}})
    assert "failed its bf16 check (MCD 0.9 dB)" in Synthesizer(voice, precision="bf16").precision_warning


def test_long_sentences_are_vocoded_in_spans_that_join_exactly(voice_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moksori.synthesis import synthesizer as module

    synth = Synthesizer(voice_dir, use_onnx=False)
    whole = synth.synthesize(TEXT, seed=2)
    calls: list[int] = []
    vocode_whole = synth._vocode_whole
    monkeypatch.setattr(synth, "_vocode_whole", lambda mel, options: calls.append(mel.shape[1]) or vocode_whole(mel, options))
    monkeypatch.setattr(module, "VOCODE_CHUNK_FRAMES", 24)
    chunked = synth.synthesize(TEXT, seed=2)
    assert max(calls) <= 24 + 2 * synth._context_frames and len(calls) > 2  # bounded spans
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_a_server_wide_precision_falls_back_to_fp32_where_it_applies_to_nothing(voice_dir: Path) -> None:
    synthesizer = Synthesizer(voice_dir, precision="int8", precision_fallback=True)
    assert synthesizer.precision == "fp32" and synthesizer.precision_modules == []
    assert synthesizer.precision_warning is None


def test_the_server_loads_voices_in_its_precision(voice_dir: Path) -> None:
    from moksori.server.voices import VoiceRegistry

    registry = VoiceRegistry(voice_dir.parent, precision="bf16")
    info = next(info for info in registry.all_voices() if info.path == voice_dir)
    assert registry.synthesizer(info).precision == "bf16"
    assert VoiceRegistry(voice_dir.parent, precision="int8").synthesizer(info).precision == "fp32"
