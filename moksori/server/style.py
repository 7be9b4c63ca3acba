"""The acoustic model's controls a speech request may set: ``sigma`` (the sampling temperature:
Glow-TTS's noise scale, Flowtron's sigma) and Flowtron's style (a reference recording, its
strength, segments, a mixture component).

A style reference is either a clip shipped with the voice (``style_ref=<clip id>``: the file
``styles/<clip id>.wav`` in the voice folder, with an optional transcript ``styles/<clip id>.txt``)
or, on the POST endpoints, an uploaded recording (``style_ref_wav``: a WAV/FLAC/OGG file as
base64, at most :data:`MAX_REFERENCE_SECONDS` long, read with the bounded upload reader).
Everything is checked before synthesis is queued; a bad value is a 422 naming its field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moksori.audio.io import AudioError
from moksori.synthesis.style_reference import MAX_REFERENCE_SECONDS, load_style_reference
from moksori.models.onnx_runners import MAX_STYLE_SEGMENTS
from moksori.server.errors import ApiError

MAX_SIGMA = 2.0
MAX_STYLE_COMPONENT = 255
MAX_REFERENCE_TEXT = 500
STYLE_DIR = "styles"
_CLIP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

SIGMA_HELP = f"the acoustic model's sampling temperature, 0..{MAX_SIGMA} (Glow-TTS noise scale, Flowtron sigma)"
STRENGTH_HELP = "0..1: how far to move from the voice's own style toward the style reference (Flowtron; default 1)"
COMPONENT_HELP = "mixture component of the prior to sample from (Flowtron voices with a mixture prior)"
SEGMENTS_HELP = f"follow the style reference in 1..{MAX_STYLE_SEGMENTS} segments over time (Flowtron)"
STYLE_REF_HELP = "a style reference clip shipped with the voice (styles/<id>.wav in its folder; Flowtron)"
STYLE_REF_TEXT_HELP = f"what the style reference says, at most {MAX_REFERENCE_TEXT} characters (better transfer)"
STYLE_REF_WAV_HELP = f"an uploaded style reference: an audio file (WAV, FLAC, OGG) as base64, at most {MAX_REFERENCE_SECONDS:g} s"


@dataclass(frozen=True)
class StyleRequest:
    """A request's style reference and settings, checked; :meth:`controls` turns it into the
    Synthesizer's ``style`` on the worker thread. Its ``repr`` (part of the audio cache key)
    names the reference by content digest."""

    clip_id: str | None = None
    audio: bytes | None = field(default=None, repr=False)
    digest: str = ""
    text: str | None = None
    strength: float | None = None
    component: int | None = None
    segments: int | None = None

    def controls(self, synthesizer: Any) -> dict[str, Any]:
        wave = rate = None
        text = self.text
        if (self.clip_id is not None or self.audio is not None) and not synthesizer.onnx_style_references:
            raise ApiError(422, "invalid_style", "this voice runs on an ONNX export that cannot encode a style "
                           "reference; leave out style_ref/style_ref_wav")
        if self.clip_id is not None:
            wave, rate, clip_text = _voice_clip(Path(synthesizer.voice.path), self.clip_id)
            text = text or clip_text
        elif self.audio is not None:
            wave, rate = _decode_upload(self.audio)
        try:
            return synthesizer.style_controls(ref_wave=wave, ref_sample_rate=rate, ref_text=text, strength=self.strength,
                                              component=self.component, segments=self.segments)
        except ValueError as error:
            raise ApiError(422, "invalid_style", str(error)) from None


def acoustic_controls(
    sigma: float | None = None,
    style_ref: str | None = None,
    style_ref_wav: str | None = None,
    style_ref_text: str | None = None,
    style_strength: float | None = None,
    style_component: int | None = None,
    style_segments: int | None = None,
) -> dict[str, Any]:
    """The Synthesizer keywords (``noise_scale``, ``style``) for the fields a request set; the
    value ranges are the request model's, this checks the reference and how the fields combine."""
    controls: dict[str, Any] = {}
    if sigma is not None:
        controls["noise_scale"] = float(sigma)
    if style_ref is not None and style_ref_wav is not None:
        raise ApiError(422, "invalid_style", "style_ref and style_ref_wav: give one style reference, not both")
    if style_ref is not None and not _CLIP_ID.fullmatch(style_ref):
        raise ApiError(422, "invalid_style", f"style_ref must be a clip id (letters, digits, '_', '-', '.'), got {style_ref!r}")
    audio, digest = None, ""
    if style_ref_wav is not None:
        audio = _base64(style_ref_wav)
        digest = hashlib.sha256(audio).hexdigest()
    has_reference = style_ref is not None or audio is not None
    if not has_reference and (style_strength is not None or style_segments is not None or style_ref_text):
        raise ApiError(422, "invalid_style", "style_strength, style_segments and style_ref_text need a style "
                       "reference (style_ref or style_ref_wav)")
    if has_reference or style_component is not None:
        controls["style"] = StyleRequest(style_ref, audio, digest, style_ref_text or None, style_strength,
                                         style_component, style_segments)
    return controls


def resolve_style(options: dict[str, Any], synthesizer: Any) -> dict[str, Any]:
    """``options`` with a :class:`StyleRequest` replaced by the Synthesizer's style dict."""
    style = options.get("style")
    if isinstance(style, StyleRequest):
        return {**options, "style": style.controls(synthesizer)}
    return options


def _base64(text: str) -> bytes:
    # Base64 is 4/3 of the bytes; the request body cap bounds it before this runs.
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_style", "style_ref_wav must be an audio file encoded as base64") from None
    if not data:
        raise ApiError(422, "invalid_style", "style_ref_wav is empty")
    return data


def _decode_upload(data: bytes) -> tuple[Any, int]:
    with tempfile.NamedTemporaryFile(suffix=".audio") as handle:
        handle.write(data)
        handle.flush()
        try:
            return load_style_reference(handle.name)
        except AudioError as error:
            message = str(error).replace(handle.name, "style_ref_wav")
            raise ApiError(422, "invalid_style", f"style_ref_wav: {message}") from None


def _voice_clip(voice_dir: Path, clip_id: str) -> tuple[Any, int, str | None]:
    folder = voice_dir / STYLE_DIR
    path = folder / f"{clip_id}.wav"
    if not path.is_file():
        available = sorted(p.stem for p in folder.glob("*.wav")) if folder.is_dir() else []
        raise ApiError(422, "invalid_style", f"style_ref: this voice has no style clip {clip_id!r}",
                       details={"available": available})
    try:
        wave, rate = load_style_reference(path)
    except AudioError as error:
        raise ApiError(422, "invalid_style", f"style_ref {clip_id!r}: {error}") from None
    transcript = path.with_suffix(".txt")
    text = transcript.read_text(encoding="utf-8").strip()[:MAX_REFERENCE_TEXT] if transcript.is_file() else None
    return wave, rate, text or None


__all__ = [
    "COMPONENT_HELP",
    "MAX_REFERENCE_TEXT",
    "MAX_SIGMA",
    "MAX_STYLE_COMPONENT",
    "MAX_STYLE_SEGMENTS",
    "SEGMENTS_HELP",
    "SIGMA_HELP",
    "STRENGTH_HELP",
    "STYLE_REF_HELP",
    "STYLE_REF_TEXT_HELP",
    "STYLE_REF_WAV_HELP",
    "StyleRequest",
    "acoustic_controls",
    "resolve_style",
]
