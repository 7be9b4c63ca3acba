import os
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from moksori.evaluation import metrics
from moksori.evaluation.asr import WHISPER_SAMPLE_RATE, asr_unavailable_reason, load_asr, try_load_asr


class FakeSegment:
    def __init__(self, text: str) -> None:
        self.text = text


class FakeWhisperModel:
    """Stands in for faster_whisper.WhisperModel: records how it was built and called."""

    instances: ClassVar[list["FakeWhisperModel"]] = []

    def __init__(self, path: str, **options) -> None:
        self.path, self.options, self.calls = path, options, []
        FakeWhisperModel.instances.append(self)

    def transcribe(self, audio: np.ndarray, **options):
        self.calls.append((audio, options))
        return iter([FakeSegment(" 안녕하세요, "), FakeSegment("오늘 날씨가 좋네요. ")]), None


@pytest.fixture
def fake_faster_whisper(monkeypatch, tmp_path) -> Path:
    """A fake faster_whisper module and a model folder with a model.bin; returns the folder."""
    module = types.ModuleType("faster_whisper")
    module.WhisperModel = FakeWhisperModel
    monkeypatch.setitem(sys.modules, "faster_whisper", module)
    FakeWhisperModel.instances.clear()
    model_dir = tmp_path / "whisper-small-ct2"
    model_dir.mkdir()
    (model_dir / "model.bin").write_bytes(b"\0")
    return model_dir


def test_no_model_folder_means_no_asr_with_a_reason(tmp_path, caplog):
    assert "no ASR model given" in asr_unavailable_reason(None)
    assert "not found" in asr_unavailable_reason(tmp_path / "missing")
    assert "model.bin" in asr_unavailable_reason(tmp_path)
    with caplog.at_level("WARNING"):
        assert load_asr(tmp_path / "missing") is None
    assert "CER not computed" in caplog.text and "missing" in caplog.text


def test_a_local_model_is_loaded_without_download_and_transcribes_at_16k(fake_faster_whisper):
    transcriber, reason = try_load_asr(fake_faster_whisper)
    assert reason is None and transcriber is not None
    (model,) = FakeWhisperModel.instances
    assert model.path == str(fake_faster_whisper)
    assert model.options["local_files_only"] is True

    wave = np.zeros(22050 * 2, dtype=np.float32)
    text = transcriber.transcribe(wave, 22050, "ko")
    assert text == "안녕하세요, 오늘 날씨가 좋네요."
    audio, options = model.calls[0]
    assert audio.dtype == np.float32 and audio.size == 2 * WHISPER_SAMPLE_RATE
    assert options["language"] == "ko"


def test_a_broken_model_folder_gives_a_reason(fake_faster_whisper, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Unable to open file 'model.bin'")

    monkeypatch.setattr(FakeWhisperModel, "__init__", refuse)
    transcriber, reason = try_load_asr(fake_faster_whisper)
    assert transcriber is None and "cannot load the ASR model" in reason and "model.bin" in reason


def test_real_faster_whisper_transcribes_espeak_english():
    pytest.importorskip("faster_whisper", reason="faster_whisper is not installed (optional, for CER)")
    model_dir = os.environ.get("MOKSORI_ASR_MODEL")
    if not model_dir or not Path(model_dir).is_dir():  # else the Whisper base of the judges extra
        from moksori.evaluation.judges import recogniser_unavailable_reason, whisper_model_dir

        reason = recogniser_unavailable_reason()
        if reason is not None:
            pytest.skip(f"no local faster-whisper model (MOKSORI_ASR_MODEL unset) and {reason}")
        model_dir = str(whisper_model_dir())
    from moksori.espeak import synthesize

    text = "The quick brown fox jumps over the lazy dog."
    wave, sample_rate = synthesize(text, voice="en-us")
    transcriber = load_asr(model_dir)
    assert transcriber is not None
    assert metrics.character_error_rate(text, transcriber.transcribe(wave, sample_rate, "en")) < 0.3
