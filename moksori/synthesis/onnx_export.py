"""Export a voice's models to ONNX (``acoustic.onnx``, ``vocoder.onnx``) and list them in voice.json.

Each family's adapter is the graph (its ``forward``) and describes its inputs (``onnx_graph``);
see the adapter for the input names. Uses the TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``): acoustic models have a data-dependent output length
(Glow-TTS: frames = Σ ceil(durations)), which the tracer records as ONNX ops, while
``torch.export`` needs it bounded up front.
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
from moksori.models.interfaces import OnnxGraph

OPSET = 17


def export_onnx(voice_dir: str | Path, *, opset: int = OPSET) -> list[Path]:
    """Write ``acoustic.onnx`` (and ``vocoder.onnx`` unless the voice uses Griffin-Lim or a vocoder
    without a single graph, which then runs in PyTorch) into the voice folder and add them to voice.json's files list. Returns the written paths."""
    voice = load_voice(voice_dir)
    written = export_acoustic_graphs(voice, voice.path / ACOUSTIC_ONNX, opset=opset)
    if voice.vocoder is not None and getattr(voice.vocoder_model, "has_onnx_graph", True):
        written.append(export_vocoder(voice, voice.path / VOCODER_ONNX, opset=opset))
    files = dict(read_voice_json(voice.path)["files"])
    for path in written:
        files[path.name] = file_entry(path)
    update_voice_json(voice.path, {"files": files, "onnx": {"opset": opset, "torch": torch.__version__}})
    return written


def export_acoustic(voice: Voice, path: Path, *, opset: int = OPSET) -> Path:
    model = voice.acoustic_model.eval()
    return _export(model, model.onnx_graph(voice.mel_config.n_mels), path, opset)


def export_acoustic_graphs(voice: Voice, path: Path, *, opset: int = OPSET) -> list[Path]:
    """Every graph of the acoustic model: the main one at ``path`` (with the adapter's
    ``onnx_metadata``), each extra one at ``<stem>.<name>.onnx`` beside it."""
    model = voice.acoustic_model.eval()
    written = []
    for name, (module, graph) in model.onnx_graphs(voice.mel_config.n_mels).items():
        target = path if not name else path.with_name(f"{path.stem}.{name}.onnx")
        written.append(_export(module.eval(), graph, target, opset, model.onnx_metadata() if not name else None))
    return written


def export_vocoder(voice: Voice, path: Path, *, opset: int = OPSET) -> Path:
    if voice.vocoder is None:
        raise ValueError(f"{voice.path}: the voice uses Griffin-Lim; there is no vocoder to export")
    model = voice.vocoder_model.eval()
    return _export(model, model.onnx_graph(voice.mel_config.n_mels), path, opset)


def _export(
    module: torch.nn.Module, graph: OnnxGraph, path: Path, opset: int, metadata: dict[str, str] | None = None
) -> Path:
    """Export into a temp file next to ``path``, then rename (a reader never sees half a model).
    ``metadata`` goes into the model's ``metadata_props``."""
    with atomic_path(path) as temp, torch.no_grad(), warnings.catch_warnings():
        # Tracer warnings about Python-side shape checks; the graph is verified by the tests.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            graph.args,
            str(temp),
            input_names=graph.input_names,
            output_names=graph.output_names,
            dynamic_axes=graph.dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        if metadata:
            _add_metadata(temp, metadata)
    return path


def _add_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    onnx.save(proto, str(path))


__all__ = ["OPSET", "export_acoustic", "export_acoustic_graphs", "export_onnx", "export_vocoder"]
