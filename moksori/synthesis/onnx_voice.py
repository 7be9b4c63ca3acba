"""An exported voice loaded for ONNX Runtime alone: no torch, no PyTorch weights in memory.

A voice folder with ``acoustic.onnx`` (and its extra graphs) and ``vocoder.onnx`` needs, besides
the graphs, only its voice.json to synthesise: the text front end, the mel parameters and the
facts the synthesizer reads from the model interfaces (speakers, a symbol limit, the vocoder's
receptive field), which :mod:`moksori.models.onnx_runners` derives from the model configs. The
:class:`~moksori.synthesis.synthesizer.Synthesizer` runs such a voice with the same code as any
other (sentences, silences, noise, vocoder spans), so the audio is the same as the ONNX path with
the PyTorch models loaded; only ``import torch`` (~220 MB resident) and the PyTorch weights are
saved.

What needs torch keeps the PyTorch path (:func:`torch_free_reason` says why): families whose
ONNX loop or post-processing is PyTorch code (see ``onnx_runners``), reduced precision (bf16 and
int8 run on the PyTorch models), Griffin-Lim. Flowtron's style references run through its
``acoustic.encode.onnx`` graph; only turning a reference recording into a mel imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moksori.audio.config import MelConfig
from moksori.models import onnx_runners
from moksori.models.onnx_runners import AcousticOnnx, VocoderOnnx
from moksori.synthesis.voice_files import (
    ACOUSTIC_ONNX,
    VOCODER_ONNX,
    VOICE_JSON,
    VoiceError,
    VoiceFacts,
    check_mels_agree,
    field_value,
    read_voice_json,
    verify_files,
)
from moksori.text import TextFrontend

FP32 = "fp32"  # moksori.synthesis.precision.FP32, the only precision ONNX Runtime runs


@dataclass
class OnnxVoice(VoiceFacts):
    """A voice ready for ONNX Runtime: as :class:`moksori.synthesis.bundle.Voice`, but
    ``acoustic_model``/``vocoder_model`` are the families' torch-free runners and
    ``acoustic``/``vocoder`` the paths of the ONNX files in place of PyTorch modules."""

    path: Path
    config: dict[str, Any]
    frontend: TextFrontend
    mel_config: MelConfig
    acoustic: Path
    vocoder: Path
    acoustic_model: AcousticOnnx
    vocoder_model: VocoderOnnx
    speakers: list[str] = field(default_factory=list)


def torch_free_reason(config: dict[str, Any], precision: str = FP32) -> str | None:
    """Why the voice of this voice.json cannot synthesise without torch; None when it can."""
    if precision != FP32:
        return f"precision {precision} runs on the PyTorch models"
    files = config.get("files", {})
    if ACOUSTIC_ONNX not in files:
        return "it has no ONNX files (moksori export VOICE --onnx)"
    acoustic = str(config["acoustic"].get("model_name"))
    if acoustic not in onnx_runners.ACOUSTIC_RUNNERS:
        return f"its acoustic model ({acoustic}) runs its ONNX graphs with PyTorch code"
    vocoder = config["vocoder"].get("model_name")
    if vocoder is None:
        return "its vocoder (Griffin-Lim) runs in PyTorch"
    if vocoder not in onnx_runners.VOCODER_RUNNERS:
        return f"its vocoder ({vocoder}) needs PyTorch at synthesis time"
    if VOCODER_ONNX not in files:
        return "it has no vocoder.onnx (moksori export VOICE --onnx)"
    try:
        onnx_runners.acoustic_runner(acoustic, config["acoustic"]["model_config"])
        onnx_runners.vocoder_runner(str(vocoder), config["vocoder"]["model_config"])
    except (KeyError, TypeError, ValueError) as error:
        return f"its model config lacks what the ONNX runners read ({error!r})"
    return None


def onnxruntime_available() -> bool:
    from moksori.synthesis.onnx_runtime import onnxruntime_available as available

    return available()


def runs_without_torch(voice_dir: str | Path, precision: str = FP32) -> bool:
    """Whether the voice folder synthesises on ONNX Runtime without torch (``precision`` as the
    Synthesizer takes it: ``auto`` is the voice's recommended one)."""
    try:
        config = read_voice_json(voice_dir)
    except VoiceError:
        return False  # loading it the usual way reports what is wrong
    if str(precision).strip().lower() == "auto":
        from moksori.synthesis.precision import recommended

        precision = recommended(config)
    return torch_free_reason(config, str(precision).strip().lower()) is None and onnxruntime_available()


def load_onnx_voice(path: str | Path) -> OnnxVoice:
    """Load an exported voice folder without torch: check voice.json and every listed file's
    sha256 (as :func:`moksori.synthesis.bundle.load_voice`), build the front end and the runners.
    VoiceError naming the reason when the voice needs torch."""
    voice_dir = Path(path)
    data = read_voice_json(voice_dir)
    json_path = voice_dir / VOICE_JSON
    reason = torch_free_reason(data)
    if reason is not None:
        raise VoiceError(f"{voice_dir}: cannot run on ONNX Runtime alone: {reason}")
    verify_files(voice_dir, data["files"])
    mel_config = field_value(json_path, "audio.mel", lambda: MelConfig.from_dict(data["audio"]["mel"]))
    frontend = field_value(json_path, "text_frontend", lambda: TextFrontend.from_settings(data["text_frontend"]))
    acoustic, vocoder = data["acoustic"], data["vocoder"]
    check_mels_agree(data["audio"]["mel"], vocoder.get("mel", data["audio"]["mel"]), f"{json_path} vocoder.mel")
    _check_vocoder_framing(vocoder.get("model_config") or {}, mel_config, json_path)
    acoustic_runner = field_value(json_path, "acoustic.model_config", lambda: onnx_runners.acoustic_runner(
        str(acoustic["model_name"]), acoustic["model_config"]))
    vocoder_runner = field_value(json_path, "vocoder.model_config", lambda: onnx_runners.vocoder_runner(
        str(vocoder["model_name"]), vocoder["model_config"]))
    speakers = [str(s) for s in data.get("speakers") or []]
    return OnnxVoice(voice_dir, data, frontend, mel_config, voice_dir / ACOUSTIC_ONNX, voice_dir / VOCODER_ONNX,
                     acoustic_runner, vocoder_runner, speakers)


def _check_vocoder_framing(model_config: dict[str, Any], mel: MelConfig, json_path: Path) -> None:
    """As bundle's check on a built vocoder: its mel count, hop and rate are the voice's."""
    for key, expected in (("num_mels", mel.n_mels), ("hop_size", mel.hop_length), ("sampling_rate", mel.sample_rate)):
        actual = model_config.get(key, expected)
        if actual != expected:
            raise VoiceError(f"{json_path}: field 'vocoder.model_config.{key}' is {actual}, the mel config needs {expected}")


__all__ = ["OnnxVoice", "load_onnx_voice", "runs_without_torch", "torch_free_reason"]
