"""Reading a voice folder's voice.json and checking its files, without torch.

:mod:`moksori.synthesis.bundle` builds the PyTorch models of a voice from these; the ONNX Runtime
path (:mod:`moksori.synthesis.onnx_voice`) reads a voice with them alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from moksori.audio.config import MelConfig

VOICE_FORMAT = "moksori-voice-1"
VOICE_JSON = "voice.json"
ACOUSTIC_FILE = "acoustic.pt"
VOCODER_FILE = "vocoder.pt"
ACOUSTIC_ONNX = "acoustic.onnx"
VOCODER_ONNX = "vocoder.onnx"


class VoiceError(ValueError):
    """A voice bundle or checkpoint that cannot be used; the message names the file and field."""


class VoiceFacts:
    """What a loaded voice tells from its voice.json (``path``, ``config``, ``frontend``,
    ``mel_config`` are the subclass's): the PyTorch :class:`moksori.synthesis.bundle.Voice` and
    the torch-free :class:`moksori.synthesis.onnx_voice.OnnxVoice`."""

    path: Path
    config: dict[str, Any]
    frontend: Any
    mel_config: MelConfig

    @property
    def name(self) -> str:
        return str(self.config["name"])

    @property
    def language(self) -> str:
        return self.frontend.language

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    @property
    def vocoder_name(self) -> str:
        return str(self.config["vocoder"].get("model_name") or self.config["vocoder"].get("name"))

    def onnx_path(self, role: str) -> Path | None:
        """The checked ONNX file of ``role`` ("acoustic" or "vocoder") listed in voice.json, or None."""
        file_name = f"{role}.onnx"
        return self.path / file_name if file_name in self.config.get("files", {}) else None


def file_entry(path: Path) -> dict[str, Any]:
    """The files-list entry of ``path``: its sha256 and size."""
    return {"sha256": sha256_of(path), "bytes": path.stat().st_size}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_voice_json(voice_dir: str | Path) -> dict[str, Any]:
    """Parse and check a bundle's voice.json (format, required fields); no weights are read."""
    voice_dir = Path(voice_dir)
    if not voice_dir.is_dir():
        raise VoiceError(f"{voice_dir}: voice folder not found")
    path = voice_dir / VOICE_JSON
    if not path.is_file():
        raise VoiceError(f"{path}: missing; a voice folder needs a voice.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise VoiceError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise VoiceError(f"{path}: the top level must be an object")
    if data.get("format") != VOICE_FORMAT:
        raise VoiceError(f"{path}: field 'format' is {data.get('format')!r}; this moksori reads {VOICE_FORMAT!r}")
    for key in ("name", "text_frontend", "audio", "acoustic", "vocoder", "files"):
        if key not in data:
            raise VoiceError(f"{path}: field {key!r} is missing")
    return data


def field_value(json_path: Path, name: str, build: Any) -> Any:
    try:
        return build()
    except (KeyError, TypeError, ValueError) as error:
        raise VoiceError(f"{json_path}: field {name!r} is invalid ({error})") from error


def verify_files(voice_dir: Path, files: dict[str, Any]) -> None:
    for file_name, entry in files.items():
        path = voice_dir / file_name
        if not path.is_file():
            raise VoiceError(f"{path}: listed in voice.json 'files' but missing")
        actual = sha256_of(path)
        if actual != entry.get("sha256"):
            raise VoiceError(
                f"{path}: sha256 {actual[:12]}… does not match voice.json files.{file_name}.sha256 "
                f"{str(entry.get('sha256'))[:12]}…; the file is damaged or was replaced"
            )


def check_mels_agree(acoustic_mel: dict[str, Any], vocoder_mel: dict[str, Any], where: str) -> None:
    a, v = MelConfig.from_dict(acoustic_mel).to_dict(), MelConfig.from_dict(vocoder_mel).to_dict()
    differ = [f"{key}: acoustic {a[key]!r} vs vocoder {v[key]!r}" for key in a if a[key] != v[key]]
    if differ:
        raise VoiceError(f"{where}: mel config of the acoustic model and the vocoder disagree ({'; '.join(differ)})")


__all__ = [
    "ACOUSTIC_FILE",
    "ACOUSTIC_ONNX",
    "VOCODER_FILE",
    "VOCODER_ONNX",
    "VOICE_FORMAT",
    "VOICE_JSON",
    "VoiceError",
    "VoiceFacts",
    "check_mels_agree",
    "field_value",
    "file_entry",
    "read_voice_json",
    "sha256_of",
    "verify_files",
]
