"""The two interfaces every model family offers to synthesis, export, bundles and benchmarks.

* :class:`AcousticModel`: symbol ids → mel (+ lengths, alignment), with the knobs of
  :class:`Controls` that the family reads (``knobs``), and ``teacher_forced_mel`` for vocoder
  fine-tuning data (aligned mels from Glow-TTS, teacher-forced ones from attention models), and
  ``stream`` for one sentence's mel in pieces as they are ready (:class:`MelPiece`).
* :class:`Vocoder`: mel → audio, with its receptive field in frames (``context_frames``; None
  means "not streamable with context": streaming then vocodes whole sentences).

An adapter wraps a trained model (its weights are shared, not copied). Each family's adapter
lives beside its model and is named in the registry (:mod:`moksori.models.registry`); nothing
outside the family knows more about a model than what is written here.

Noise: a sentence's random draws come from a :data:`NoiseSource` that the caller owns (the
synthesizer seeds one per sentence), so a sentence sounds the same alone, in a batch, through
PyTorch or through ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from moksori.models.controls import KNOBS, Controls, NoiseSource, streams_natively
from moksori.models.onnx_runners import (
    DEFAULT_CONTEXT_FRAMES,
    AcousticOnnx,
    VocoderOnnx,
    conv_vocoder_context,
)


class AcousticOutput(NamedTuple):
    mel: torch.Tensor  # [b, n_mels, frames], zero past each row's length
    lengths: torch.Tensor  # [b] frames
    alignment: torch.Tensor | None  # [b, tokens, frames] or None
    # Attention models: one moksori.models.alignment.AlignmentReport per row (the
    # synthesizer retries a failed row with another seed, then reports it); empty: not checked.
    reports: tuple[Any, ...] = ()


class MelPiece(NamedTuple):
    """One piece of a sentence's mel from :meth:`AcousticModel.stream`: the next frames, final
    (the concatenated pieces are the whole-sentence ``infer`` mel)."""

    mel: torch.Tensor  # [n_mels, frames] (frames may be 0 on the last piece)
    last: bool = False
    # On the last piece: the sentence's AlignmentReport (None: the family checks none).
    report: Any = None


@dataclass(frozen=True)
class OnnxGraph:
    """What ``torch.onnx.export`` needs to export an adapter's ``forward``."""

    args: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]


class AcousticModel(AcousticOnnx, nn.Module):
    """Text ids → mel. Subclasses set ``knobs`` and implement :meth:`infer`. The ONNX Runtime side
    (``onnx_feeds``, ``onnx_run``, ``onnx_extra_graph_names``) is :class:`AcousticOnnx`'s, torch-free."""

    # Submodules (dotted paths from the adapter) that may run in reduced precision (bf16/int8, see
    # moksori.synthesis.precision); the rest, e.g. a duration predictor, stays float32.
    precision_modules: ClassVar[tuple[str, ...]] = ()

    @property
    def max_symbols(self) -> int | None:
        """The most symbols one sentence may have (a decoder step limit); longer sentences are
        split at commas/phrases before synthesis. None: no limit."""
        return None

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def n_speakers(self) -> int:
        return int(getattr(self.model, "n_speakers", 0) or 0)

    def infer(
        self, ids: torch.Tensor, lengths: torch.Tensor, controls: Controls, noise: NoiseSource
    ) -> AcousticOutput:
        """``ids`` ``[b, tokens]`` (zero-padded), ``lengths`` ``[b]``."""
        raise NotImplementedError

    def stream(
        self, ids: torch.Tensor, lengths: torch.Tensor, controls: Controls, noise: NoiseSource,
        first_frames: int | None = None,
    ) -> Iterator[MelPiece]:
        """One sentence (batch 1) as mel pieces in order, each as soon as its frames are final; the
        last piece has ``last`` set and carries the alignment report. ``first_frames``: a hint that
        a first piece of about that many frames is wanted early (the start of a stream); a family
        may ignore it. By default one piece from :meth:`infer`. A family overrides this where
        frames can be final before the whole sentence is (Tacotron2's decoder loop, Glow-TTS's
        local flows); Flowtron cannot (its flows reverse the frame order, so the first frame
        depends on the last)."""
        if ids.size(0) != 1:
            raise ValueError(f"stream takes one sentence (batch 1), got a batch of {ids.size(0)}")
        out = self.infer(ids, lengths, controls, noise)
        report = out.reports[0] if out.reports else None
        yield MelPiece(out.mel[0, :, : int(out.lengths[0])], True, report)

    def teacher_forced_mel(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mels for vocoder fine-tuning from a training batch (``ids``, ``mel`` and their lengths,
        ``speaker``): ``[b, n_mels, frames]`` and the valid frames per row (at most the real ones)."""
        raise NotImplementedError(f"{type(self).__name__} cannot make teacher-forced mels")

    # --- ONNX --------------------------------------------------------------------------------
    def onnx_graph(self, n_mels: int) -> OnnxGraph:
        """Example inputs and names for exporting :meth:`forward`."""
        raise NotImplementedError(f"{type(self).__name__} has no ONNX export")

    def onnx_graphs(self, n_mels: int) -> dict[str, tuple[nn.Module, OnnxGraph]]:
        """Every graph to export: ``""`` is the main one (this module's :meth:`forward`), the
        others are named in ``onnx_extra_graphs``."""
        return {"": (self, self.onnx_graph(n_mels))}

    def onnx_metadata(self) -> dict[str, str]:
        """Facts the ONNX runtime loop needs, stored in the main graph's metadata."""
        return {}


class Vocoder(VocoderOnnx, nn.Module):
    """Mel ``[n_mels, frames]`` (or ``[b, n_mels, frames]``) → audio ``[samples]`` (or ``[b, samples]``).
    ``context_frames``, ``has_onnx_graph``, ``knobs`` and the ONNX Runtime side (``onnx_feeds``,
    ``onnx_finish``) are :class:`VocoderOnnx`'s, torch-free."""

    # As AcousticModel.precision_modules: what may run in bf16/int8 (empty: fp32 only).
    precision_modules: tuple[str, ...] = ()

    def infer(self, mel: torch.Tensor, controls: Controls | None = None) -> torch.Tensor:
        raise NotImplementedError

    def stream(self, mel: torch.Tensor, controls: Controls | None = None) -> Iterator[torch.Tensor]:
        """Audio pieces in order, each as soon as it is ready; their concatenation is :meth:`infer`.
        By default one piece. An autoregressive vocoder (WaveNet) overrides it to yield audio as
        it is sampled, and the synthesizer's stream then uses it (:func:`streams_natively`)."""
        yield self.infer(mel, controls)

    def onnx_graph(self, n_mels: int) -> OnnxGraph:
        raise NotImplementedError(f"{type(self).__name__} has no ONNX export")


class ConvVocoder(Vocoder):
    """A feed-forward generator with ``infer(mel)`` (HiFi-GAN, Vocos): local, so streamable with
    context. The model may declare a larger ``context_frames`` of its own, and the submodules that
    may run in reduced precision (``precision_modules``; by default the whole generator)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.context_frames = conv_vocoder_context(getattr(model, "context_frames", 0))
        own = getattr(model, "precision_modules", None)
        self.precision_modules = ("model",) if own is None else tuple(f"model.{path}" for path in own)

    def infer(self, mel: torch.Tensor, controls: Controls | None = None) -> torch.Tensor:
        return self.model.infer(mel)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.model(mel).squeeze(1)

    def onnx_graph(self, n_mels: int) -> OnnxGraph:
        return OnnxGraph(
            (torch.zeros(1, n_mels, 32),), ["mel"], ["wave"], {"mel": {2: "frames"}, "wave": {1: "samples"}}
        )


__all__ = [
    "AcousticModel",
    "AcousticOutput",
    "Controls",
    "ConvVocoder",
    "DEFAULT_CONTEXT_FRAMES",
    "KNOBS",
    "MelPiece",
    "NoiseSource",
    "OnnxGraph",
    "Vocoder",
    "streams_natively",
]
