"""How each model family's exported graphs run in ONNX Runtime, without torch.

The PyTorch adapters (:mod:`moksori.models.interfaces` and the family files) inherit these
classes, so there is one implementation of each family's ONNX inputs and loops: an exported voice
runs the same code whether the adapter was built from its weights or not. The torch-free path
(:mod:`moksori.synthesis.onnx_voice`) builds the same classes from voice.json alone
(:func:`acoustic_runner`, :func:`vocoder_runner`): the facts the synthesizer needs (speakers,
symbol limit, a vocoder's receptive field) come from the model config there.

A family missing from :data:`ACOUSTIC_RUNNERS` / :data:`VOCODER_RUNNERS` needs torch at synthesis
time (its loop or its post-processing is PyTorch code: Tacotron2, Flowtron, WaveGlow's denoiser,
WaveNet, Griffin-Lim), and its voices run on the PyTorch path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from moksori.models.controls import Controls, NoiseSource

# HiFi-GAN's receptive field is 11 frames each way in V1, V2 and V3 (measured); 16 is used for a
# convolutional vocoder that does not declare its own.
DEFAULT_CONTEXT_FRAMES = 16
# Glow-TTS's graph takes noise for at most this many frames per token (times the length scale
# when it is above 1); frame j uses noise column j mod N.
ONNX_NOISE_FRAMES_PER_TOKEN = 16


class AcousticOnnx:
    """The ONNX side of an acoustic model (see :class:`moksori.models.interfaces.AcousticModel`)."""

    knobs: ClassVar[tuple[str, ...]] = ()
    # Graphs besides the main one (``acoustic.onnx``), exported as ``acoustic.<name>.onnx``: an
    # autoregressive model exports its encoder, one decoder step and its postnet, and runs the loop
    # in Python (:meth:`onnx_run`).
    onnx_extra_graphs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def onnx_feeds(
        cls, ids: list[int], controls: Controls, noise: NoiseSource, n_mels: int, input_names: set[str]
    ) -> dict[str, np.ndarray]:
        """The ONNX Runtime inputs of one sentence for the graph ``onnx_graph`` describes."""
        raise NotImplementedError(f"{cls.__name__} has no ONNX export")

    @classmethod
    def onnx_extra_graph_names(cls, metadata: dict[str, str]) -> tuple[str, ...]:
        """The extra graphs of an exported voice, from its main graph's metadata (a family whose
        graph count depends on the config, like Flowtron's one per flow, reads it there)."""
        return cls.onnx_extra_graphs

    @classmethod
    def onnx_run(
        cls, sessions: dict[str, Any], metadata: dict[str, str], ids: list[int], controls: Controls,
        noise: NoiseSource, n_mels: int,
    ) -> tuple[np.ndarray, Any]:
        """One sentence through ONNX Runtime: ``sessions`` by graph name (``""`` the main one).
        Returns the mel ``[n_mels, frames]`` and the alignment report (None: not checked)."""
        session = sessions[""]
        input_names = {i.name for i in session.get_inputs()}
        feeds = cls.onnx_feeds(ids, controls, noise, n_mels, input_names)
        return session.run([session.get_outputs()[0].name], feeds)[0][0], None


class VocoderOnnx:
    """The ONNX side of a vocoder (see :class:`moksori.models.interfaces.Vocoder`)."""

    # Mel frames either side that change a frame's audio: a span vocoded with this much context
    # joins its neighbours exactly. None: the output of a span depends on the whole sentence.
    context_frames: int | None = None
    # False: no single mel → wave graph (an autoregressive vocoder: WaveNet); a voice's ONNX
    # export then leaves the vocoder in PyTorch and the acoustic model alone runs in ONNX Runtime.
    has_onnx_graph: ClassVar[bool] = True
    # The Controls fields this vocoder reads (``sigma``, ``denoise``): what a request may set.
    knobs: ClassVar[tuple[str, ...]] = ()

    def onnx_feeds(self, mel: np.ndarray, controls: Controls | None = None) -> dict[str, np.ndarray]:
        """The ONNX Runtime inputs of one sentence's mel ``[n_mels, frames]`` for ``onnx_graph``
        (a flow vocoder adds its noise here: WaveGlow's ``z``)."""
        return {"mel": np.asarray(mel, dtype=np.float32)[None]}

    def onnx_finish(self, wave: np.ndarray, controls: Controls | None = None) -> np.ndarray:
        """What runs on the graph's output outside the graph (WaveGlow's denoiser); by default nothing."""
        return wave


# --- families ----------------------------------------------------------------------------------


class GlowTTSOnnx(AcousticOnnx):
    """Glow-TTS: one graph, ids + noise → mel (:meth:`GlowTTSAcoustic.onnx_graph`)."""

    knobs: ClassVar[tuple[str, ...]] = ("length_scale", "noise_scale", "speaker_id")

    @classmethod
    def onnx_feeds(
        cls, ids: list[int], controls: Controls, noise: NoiseSource, n_mels: int, input_names: set[str]
    ) -> dict[str, np.ndarray]:
        n_noise = math.ceil(len(ids) * ONNX_NOISE_FRAMES_PER_TOKEN * max(controls.length_scale, 1.0))
        feeds = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([controls.noise_scale, controls.length_scale], dtype=np.float32),
            "noise": np.asarray(noise(0, n_noise, n_mels), dtype=np.float32)[None],
        }
        if "sid" in input_names:
            feeds["sid"] = np.asarray([controls.speaker_id or 0], dtype=np.int64)
        return feeds


def vocos_context_frames(num_layers: int, kernel_size: int, win_size: int, hop_size: int) -> int:
    """Vocos's receptive field in mel frames either side (convolutions plus STFT overlap)."""
    return (num_layers + 1) * (kernel_size // 2) + math.ceil(win_size / hop_size / 2)


def conv_vocoder_context(own: int | None) -> int:
    """A convolutional vocoder's context: its own receptive field, at least the default."""
    return max(DEFAULT_CONTEXT_FRAMES, int(own or 0))


# --- the torch-free runners of an exported voice, from its voice.json ----------------------------


def _glow_tts(config: Mapping[str, Any]) -> AcousticOnnx:
    return _instance(GlowTTSOnnx, n_speakers=int(config.get("n_speakers", 0) or 0), max_symbols=None)


def _hifigan(config: Mapping[str, Any]) -> VocoderOnnx:
    return _instance(VocoderOnnx, context_frames=conv_vocoder_context(16))  # Generator.context_frames


def _vocos(config: Mapping[str, Any]) -> VocoderOnnx:
    own = vocos_context_frames(int(config["num_layers"]), int(config["kernel_size"]), int(config["win_size"]),
                               int(config["hop_size"]))
    return _instance(VocoderOnnx, context_frames=conv_vocoder_context(own))


# family name (the registry's) → the runner built from its voice.json ``model_config``
ACOUSTIC_RUNNERS: dict[str, Callable[[Mapping[str, Any]], AcousticOnnx]] = {"glow_tts": _glow_tts}
VOCODER_RUNNERS: dict[str, Callable[[Mapping[str, Any]], VocoderOnnx]] = {"hifigan": _hifigan, "vocos": _vocos}


def _instance(cls: type, **facts: Any) -> Any:
    runner = cls()
    runner.__dict__.update(facts)
    # What the synthesizer reads from ``adapter.model``: its config (e.g. Flowtron's n_components).
    runner.model = SimpleNamespace(config=SimpleNamespace(**facts.get("config", {})))
    return runner


def acoustic_runner(family: str, config: Mapping[str, Any]) -> AcousticOnnx | None:
    """The torch-free acoustic runner of ``family`` for a voice.json ``model_config``; None when
    the family needs torch. KeyError/ValueError for a config that lacks what it needs."""
    make = ACOUSTIC_RUNNERS.get(family)
    return None if make is None else make(config)


def vocoder_runner(family: str, config: Mapping[str, Any]) -> VocoderOnnx | None:
    """As :func:`acoustic_runner`, for a vocoder."""
    make = VOCODER_RUNNERS.get(family)
    return None if make is None else make(config)


__all__ = [
    "ACOUSTIC_RUNNERS",
    "AcousticOnnx",
    "DEFAULT_CONTEXT_FRAMES",
    "GlowTTSOnnx",
    "ONNX_NOISE_FRAMES_PER_TOKEN",
    "VOCODER_RUNNERS",
    "VocoderOnnx",
    "acoustic_runner",
    "conv_vocoder_context",
    "vocos_context_frames",
    "vocoder_runner",
]
