"""Voice bundles: one self-describing folder per voice.

::

    my-voice/
      voice.json      format, name, language, text front end (with its symbol table), audio/mel
                      parameters, acoustic and vocoder model configs, speakers, training summary,
                      licence, and every weight file with its sha256
      acoustic.pt     state dict of the acoustic model (inference weights only)
      vocoder.pt      state dict of the vocoder generator (absent for a Griffin-Lim voice)
      acoustic.onnx   after ``export_onnx`` (optional)
      vocoder.onnx
      lexicon.json    the voice's pronunciation lexicon (optional; moksori lexicon --voice; kept on rebuild)

A bundle is written into a temporary folder next to its destination and renamed into place, so
a reader never sees half a voice and a failed write leaves the old voice as it was.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from moksori.atomic import atomic_write_bytes
from moksori.audio import MelConfig
from moksori import checkpoint as checkpoint_io
from moksori.models import registry
from moksori.models.interfaces import AcousticModel
from moksori.models.interfaces import Vocoder as VocoderInterface
from moksori.text import TextFrontend
from moksori.text.lexicon import LEXICON_FILE
from moksori.synthesis.voice_files import (  # torch-free: the ONNX Runtime path reads voices with it
    ACOUSTIC_FILE,
    ACOUSTIC_ONNX,
    VOCODER_FILE,
    VOCODER_ONNX,
    VOICE_FORMAT,
    VOICE_JSON,
    VoiceError,
    VoiceFacts,
    check_mels_agree as _check_mels_agree,
    field_value as _field,
    file_entry,
    read_voice_json,
    sha256_of,
    verify_files as _verify_files,
)

GRIFFIN_LIM = {"name": registry.GRIFFIN_LIM}
# The weight file of each role in a voice folder.
ROLE_FILES = {registry.ACOUSTIC: ACOUSTIC_FILE, registry.VOCODER: VOCODER_FILE}


@dataclass
class Voice(VoiceFacts):
    """A loaded voice: its parsed ``voice.json`` and models ready for inference (eval mode,
    weight norm folded, flow inverses stored). ``acoustic``/``vocoder`` are the loaded modules
    (``vocoder`` None for a Griffin-Lim voice); ``acoustic_model``/``vocoder_model`` are their
    interfaces (:mod:`moksori.models.interfaces`), which is all that synthesis uses."""

    path: Path
    config: dict[str, Any]
    frontend: TextFrontend
    mel_config: MelConfig
    acoustic: nn.Module
    vocoder: nn.Module | None
    acoustic_model: AcousticModel
    vocoder_model: VocoderInterface
    speakers: list[str] = field(default_factory=list)


# --- checkpoints -------------------------------------------------------------------------------


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a training run folder (its ``latest.pt``)."""
    try:
        return checkpoint_io.resolve_checkpoint(path)
    except checkpoint_io.CheckpointError as error:
        raise VoiceError(str(error)) from error


def load_checkpoint(path: str | Path, *, kinds: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
    """Read and check a moksori checkpoint; ``kinds`` limits the allowed model names."""
    try:
        return checkpoint_io.read_checkpoint(path, kinds=kinds)
    except checkpoint_io.CheckpointError as error:
        raise VoiceError(str(error)) from error


# --- writing -------------------------------------------------------------------------------------


def make_bundle(
    acoustic_ckpt: str | Path,
    out_dir: str | Path,
    *,
    vocoder_ckpt: str | Path | None = None,
    name: str | None = None,
    description: str = "",
    extra: dict[str, Any] | None = None,
    licence: str = "unspecified",
    overwrite: bool = False,
) -> Path:
    """Build a voice folder from an acoustic checkpoint (and a vocoder checkpoint, or a voice folder
    whose vocoder is reused; without one the voice uses Griffin-Lim). ``extra`` is added to the
    training summary. Returns ``out_dir``."""
    out_dir = Path(out_dir)
    acoustic = load_checkpoint(acoustic_ckpt, kinds=registry.names(registry.ACOUSTIC, weights=True))
    vocoder = _vocoder_source(vocoder_ckpt) if vocoder_ckpt is not None else None
    if not acoustic.get("text_frontend"):
        raise VoiceError(f"{acoustic['path']}: field 'text_frontend' is empty; an acoustic checkpoint needs it")
    if vocoder is not None:
        _check_mels_agree(acoustic["mel_config"], vocoder["mel_config"], f"{acoustic['path']} / {vocoder['path']}")
    frontend = TextFrontend.from_settings(acoustic["text_frontend"])  # validates the settings

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        files = {ACOUSTIC_FILE: _save_state_dict(acoustic["model"], temp_dir / ACOUSTIC_FILE)}
        if vocoder is not None:
            files[VOCODER_FILE] = _save_state_dict(vocoder["model"], temp_dir / VOCODER_FILE)
        voice_json = _voice_json(acoustic, vocoder, frontend, name or out_dir.name, description, extra, licence, files)
        _write_json(temp_dir / VOICE_JSON, voice_json)
        _check_replaceable(out_dir, files, overwrite)
        if (out_dir / LEXICON_FILE).is_file():  # the user's pronunciation lexicon outlives a rebuild
            shutil.copy2(out_dir / LEXICON_FILE, temp_dir / LEXICON_FILE)
        _swap_into_place(temp_dir, out_dir)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return out_dir


def _vocoder_source(path: str | Path) -> dict[str, Any]:
    """A vocoder checkpoint, or the vocoder of a voice folder in the same checkpoint-like form."""
    voice_dir = Path(path)
    if not (voice_dir.is_dir() and (voice_dir / VOICE_JSON).is_file()):
        return load_checkpoint(path, kinds=registry.names(registry.VOCODER, weights=True))
    data = read_voice_json(voice_dir)
    _verify_files(voice_dir, data["files"])
    section = data["vocoder"]
    if "model_name" not in section:
        raise VoiceError(f"{voice_dir}: the voice uses Griffin-Lim; it has no vocoder to reuse")
    weights = voice_dir / section.get("file", VOCODER_FILE)
    summary = (data.get("training") or {}).get("vocoder") or {}
    return {
        "path": str(weights),
        "model_name": section["model_name"],
        "model_config": section["model_config"],
        "model": _read_weights(weights),
        "mel_config": section.get("mel", data["audio"]["mel"]),
        "step": summary.get("step"),
        "epoch": summary.get("epoch"),
    }


def _voice_json(
    acoustic: dict[str, Any],
    vocoder: dict[str, Any] | None,
    frontend: TextFrontend,
    name: str,
    description: str,
    extra: dict[str, Any] | None,
    licence: str,
    files: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    mel = MelConfig.from_dict(acoustic["mel_config"])
    training: dict[str, Any] = {"acoustic": _checkpoint_summary(acoustic)}
    if vocoder is not None:
        training["vocoder"] = _checkpoint_summary(vocoder)
    training.update(extra or {})
    return {
        "format": VOICE_FORMAT,
        "name": name,
        "language": frontend.language,
        "description": description,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "text_frontend": acoustic["text_frontend"],
        "audio": {"sample_rate": mel.sample_rate, "mel": mel.to_dict()},
        "acoustic": {"model_name": acoustic["model_name"], "model_config": acoustic["model_config"], "file": ACOUSTIC_FILE},
        "vocoder": (
            {
                "model_name": vocoder["model_name"],
                "model_config": vocoder["model_config"],
                "mel": MelConfig.from_dict(vocoder["mel_config"]).to_dict(),
                "file": VOCODER_FILE,
            }
            if vocoder is not None
            else dict(GRIFFIN_LIM)
        ),
        "speakers": list(acoustic.get("speakers") or []),
        "training": training,
        "licence": licence,
        "files": files,
    }


def _checkpoint_summary(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {
        "checkpoint": Path(checkpoint["path"]).name,
        "model_name": checkpoint["model_name"],
        "step": checkpoint.get("step"),
        "epoch": checkpoint.get("epoch"),
    }


def _save_state_dict(state_dict: dict[str, Any], path: Path) -> dict[str, Any]:
    checkpoint_io.save_state_dict(state_dict, path)
    return file_entry(path)


def _read_weights(path: Path) -> dict[str, Any]:
    try:
        return checkpoint_io.read_state_dict(path)
    except checkpoint_io.CheckpointError as error:
        raise VoiceError(str(error)) from error


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    atomic_write_bytes(path, (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def update_voice_json(voice_dir: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into a bundle's voice.json (atomically) and return the new content."""
    data = read_voice_json(voice_dir)
    data.update(changes)
    _write_json(voice_dir / VOICE_JSON, data)
    return data


def _check_replaceable(out_dir: Path, new_files: dict[str, dict[str, Any]], overwrite: bool) -> None:
    """Refuse to replace anything but the same voice (same weights) unless ``overwrite``."""
    if overwrite or not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise VoiceError(f"{out_dir}: exists and is not a folder")
    if not any(out_dir.iterdir()):
        return
    voice_json = out_dir / VOICE_JSON
    if not voice_json.is_file():
        raise VoiceError(f"{out_dir}: folder is not empty and holds no voice.json; not replacing it (overwrite=True to force)")
    try:
        old_files = json.loads(voice_json.read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        old_files = {}
    # Both weight files count, present or not: the same acoustic model without the vocoder is
    # another (Griffin-Lim) voice, and replacing the folder would delete the trained vocoder.
    keys = set(new_files) | {ACOUSTIC_FILE, VOCODER_FILE}
    same = all((old_files.get(key) or {}).get("sha256") == (new_files.get(key) or {}).get("sha256") for key in keys)
    if not same:
        raise VoiceError(f"{out_dir}: holds a different voice; pass overwrite=True to replace it")


def _swap_into_place(temp_dir: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        os.replace(temp_dir, out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    os.replace(out_dir, old)
    try:
        os.replace(temp_dir, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --- reading -------------------------------------------------------------------------------------


def load_voice(path: str | Path) -> Voice:
    """Load a voice folder: check voice.json and every listed file's sha256, build the models."""
    voice_dir = Path(path)
    data = read_voice_json(voice_dir)
    json_path = voice_dir / VOICE_JSON
    _verify_files(voice_dir, data["files"])
    mel_config = _field(json_path, "audio.mel", lambda: MelConfig.from_dict(data["audio"]["mel"]))
    frontend = _field(json_path, "text_frontend", lambda: TextFrontend.from_settings(data["text_frontend"]))
    vocoder_section = data["vocoder"]
    if "model_name" in vocoder_section:
        _check_mels_agree(data["audio"]["mel"], vocoder_section.get("mel", data["audio"]["mel"]), f"{json_path} vocoder.mel")
    acoustic_family = _family(json_path, data["acoustic"].get("model_name"), registry.ACOUSTIC)
    acoustic = _build(voice_dir, data["acoustic"], acoustic_family)
    if "model_name" in vocoder_section:
        vocoder_family = _family(json_path, vocoder_section["model_name"], registry.VOCODER)
        vocoder = _build(voice_dir, vocoder_section, vocoder_family)
        _check_vocoder_framing(vocoder, mel_config, json_path)
    elif vocoder_section.get("name") == registry.GRIFFIN_LIM:
        vocoder_family, vocoder = registry.get(registry.GRIFFIN_LIM), None
    else:
        raise VoiceError(f"{json_path}: field 'vocoder' names no model_name and is not {registry.GRIFFIN_LIM}")
    speakers = [str(s) for s in data.get("speakers") or []]
    return Voice(
        voice_dir, data, frontend, mel_config, acoustic, vocoder,
        acoustic_family.inference(acoustic, mel_config).eval(),
        vocoder_family.inference(vocoder, mel_config).eval(),
        speakers,
    )


def _family(json_path: Path, name: Any, role: str) -> registry.Family:
    try:
        family = registry.get(str(name), role)
    except ValueError as error:
        raise VoiceError(f"{json_path}: field '{role}.model_name': {error}") from error
    if not family.has_weights:
        raise VoiceError(f"{json_path}: field '{role}.model_name' is {name!r}, which has no weights")
    return family


def _build(voice_dir: Path, section: dict[str, Any], family: registry.Family) -> nn.Module:
    json_path = voice_dir / VOICE_JSON
    role = family.role
    file_name = section.get("file", f"{role}.pt")
    weights = voice_dir / file_name
    if not weights.is_file():
        raise VoiceError(f"{weights}: weight file of field '{role}' is missing")
    model = _field(json_path, f"{role}.model_config", lambda: family.build(section["model_config"]))
    state_dict = _read_weights(weights)
    try:
        model.load_state_dict(state_dict)
    except Exception as error:
        raise VoiceError(f"{weights}: weights do not fit {role}.model_config ({error})") from error
    return prepare_for_inference(model)


def prepare_for_inference(model: nn.Module) -> nn.Module:
    """Eval mode, weight norm folded into the weights, flow inverses precomputed."""
    model.eval()
    if hasattr(model, "remove_weight_norm"):
        model.remove_weight_norm()
    if hasattr(model, "store_inverse"):
        model.store_inverse()
    if hasattr(model, "set_ddi"):
        model.set_ddi(False)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def check_vocoder_fits(voice_json: dict[str, Any], vocoder_json: dict[str, Any], where: str) -> None:
    """VoiceError unless the voice of ``vocoder_json`` has a trained vocoder that reads the mels of
    the voice of ``voice_json`` (both voice.json dicts)."""
    section = vocoder_json["vocoder"]
    if "model_name" not in section:
        raise VoiceError(f"{where}: that voice uses Griffin-Lim; it has no trained vocoder to lend")
    _check_mels_agree(voice_json["audio"]["mel"], section.get("mel", vocoder_json["audio"]["mel"]), where)


def with_vocoder_of(voice: Voice, other: Voice) -> Voice:
    """``voice`` speaking through ``other``'s vocoder (e.g. a Griffin-Lim voice through the shipped
    voice's); VoiceError when ``other`` has none or its mel parameters differ."""
    check_vocoder_fits(voice.config, other.config, f"{other.path} vocoder for {voice.path}")
    config = {**voice.config, "vocoder": other.config["vocoder"]}
    return dataclasses.replace(voice, config=config, vocoder=other.vocoder, vocoder_model=other.vocoder_model)


def _check_vocoder_framing(vocoder: nn.Module, mel: MelConfig, json_path: Path) -> None:
    config = getattr(vocoder, "config", None)
    checks = (("num_mels", mel.n_mels), ("hop_size", mel.hop_length), ("sampling_rate", mel.sample_rate))
    for key, expected in checks:
        actual = getattr(config, key, expected)
        if actual != expected:
            raise VoiceError(f"{json_path}: field 'vocoder.model_config.{key}' is {actual}, the mel config needs {expected}")


__all__ = [
    "VOICE_FORMAT",
    "Voice",
    "VoiceError",
    "check_vocoder_fits",
    "file_entry",
    "load_checkpoint",
    "load_voice",
    "make_bundle",
    "prepare_for_inference",
    "read_voice_json",
    "update_voice_json",
    "with_vocoder_of",
]
