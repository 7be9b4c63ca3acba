"""Export a voice's models to ONNX (``acoustic.onnx``, ``vocoder.onnx``) and list them in voice.json.

Uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): the Glow-TTS
inference path has a data-dependent output length (frames = Σ ceil(durations)), which the tracer
records as ONNX ops, while ``torch.export`` needs it bounded up front.

acoustic.onnx
    inputs  ``input`` int64 [1, T] symbol ids; ``input_lengths`` int64 [1];
            ``scales`` float32 [2] = [noise_scale, length_scale];
            ``noise`` float32 [1, n_mels, N] standard normal noise (frame j uses column j mod N);
            ``sid`` int64 [1] (multi-speaker voices only)
    output  ``mel`` float32 [1, n_mels, frames]
vocoder.onnx
    input ``mel`` float32 [1, n_mels, frames] → output ``wave`` float32 [1, frames * hop]
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from moksori.atomic import atomic_path
from moksori.synthesis.bundle import (
    ACOUSTIC_ONNX,
    VOCODER_ONNX,
    Voice,
    file_entry,
    load_voice,
    read_voice_json,
    update_voice_json,
)
from moksori.synthesis.inference import GlowTTSInference, VocoderInference

OPSET = 17


def export_onnx(voice_dir: str | Path, *, opset: int = OPSET) -> list[Path]:
    """Write ``acoustic.onnx`` (and ``vocoder.onnx`` unless the voice uses Griffin-Lim) into the
    voice folder and add them to voice.json's files list. Returns the written paths."""
    voice = load_voice(voice_dir)
    written = [export_acoustic(voice, voice.path / ACOUSTIC_ONNX, opset=opset)]
    if voice.vocoder is not None:
        written.append(export_vocoder(voice, voice.path / VOCODER_ONNX, opset=opset))
    files = dict(read_voice_json(voice.path)["files"])
    for path in written:
        files[path.name] = file_entry(path)
    update_voice_json(voice.path, {"files": files, "onnx": {"opset": opset, "torch": torch.__version__}})
    return written


def export_acoustic(voice: Voice, path: Path, *, opset: int = OPSET) -> Path:
    wrapper = GlowTTSInference(voice.acoustic).eval()
    n_tokens = 16
    ids = torch.ones(1, n_tokens, dtype=torch.long)
    args: tuple[torch.Tensor, ...] = (
        ids,
        torch.tensor([n_tokens], dtype=torch.long),
        torch.tensor([0.667, 1.0], dtype=torch.float32),
        torch.zeros(1, voice.mel_config.n_mels, 64),
    )
    names = ["input", "input_lengths", "scales", "noise"]
    if wrapper.multi_speaker:
        args += (torch.zeros(1, dtype=torch.long),)
        names.append("sid")
    dynamic_axes = {"input": {1: "phonemes"}, "noise": {2: "noise_frames"}, "mel": {2: "frames"}}
    return _export(wrapper, args, names, ["mel"], dynamic_axes, path, opset)


def export_vocoder(voice: Voice, path: Path, *, opset: int = OPSET) -> Path:
    if voice.vocoder is None:
        raise ValueError(f"{voice.path}: the voice uses Griffin-Lim; there is no vocoder to export")
    wrapper = VocoderInference(voice.vocoder).eval()
    mel = torch.zeros(1, voice.mel_config.n_mels, 32)
    dynamic_axes = {"mel": {2: "frames"}, "wave": {1: "samples"}}
    return _export(wrapper, (mel,), ["mel"], ["wave"], dynamic_axes, path, opset)


def _export(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    path: Path,
    opset: int,
) -> Path:
    """Export into a temp file next to ``path``, then rename (a reader never sees half a model)."""
    with atomic_path(path) as temp, torch.no_grad(), warnings.catch_warnings():
        # Tracer warnings about Python-side shape checks; the graph is verified by the tests.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            args,
            str(temp),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


__all__ = ["OPSET", "export_acoustic", "export_onnx", "export_vocoder"]
