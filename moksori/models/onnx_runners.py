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
from statistics import NormalDist
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from moksori.models.alignment import AlignmentReport, check_alignment
from moksori.models.controls import Controls, NoiseSource

# HiFi-GAN's receptive field is 11 frames each way in V1, V2 and V3 (measured); 16 is used for a
# convolutional vocoder that does not declare its own.
DEFAULT_CONTEXT_FRAMES = 16
# Glow-TTS's graph takes noise for at most this many frames per token (times the length scale
# when it is above 1); frame j uses noise column j mod N.
ONNX_NOISE_FRAMES_PER_TOKEN = 16
# Attention models: a sentence may have at most max_decoder_steps * n_frames_per_step /
# FRAMES_PER_SYMBOL symbols: read speech takes 5-8 mel frames per character or jamo (LJSpeech,
# KSS), so 10 leaves room for slow speakers before the step limit would cut a sentence.
FRAMES_PER_SYMBOL = 10
# Prenet noise columns drawn at first; doubled as decoding goes on (a longer draw starts with the
# same values, so the masks do not depend on how far ahead they were drawn).
FIRST_NOISE_STEPS = 64
# Tacotron2's decoder state between two steps, in the order of its DecoderState (the step graph's
# inputs and outputs).
TACOTRON2_STATE = ("attention_hidden", "attention_cell", "decoder_hidden", "decoder_cell", "attention_weights",
                   "attention_weights_cum", "attention_context")


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


def attention_max_symbols(max_decoder_steps: int, n_frames_per_step: int = 1) -> int:
    """The most symbols a sentence may have for an attention decoder's step limit."""
    return max(1, int(max_decoder_steps) * int(n_frames_per_step) // FRAMES_PER_SYMBOL)


def prenet_keep_threshold(p: float) -> float:
    """The standard-normal value below which a fraction ``p`` of draws falls: a unit is dropped when
    its noise is below it, so noise-driven masks drop units with probability ``p``."""
    return NormalDist().inv_cdf(p) if p > 0 else -math.inf


def prenet_masks(noise: np.ndarray, p: float) -> np.ndarray:
    """Dropout masks (0 or ``1/(1-p)``) from standard-normal ``noise`` of the same shape."""
    return (noise > prenet_keep_threshold(p)).astype(noise.dtype) / np.asarray(1.0 - p, dtype=noise.dtype)


class PrenetNoise:
    """Prenet dropout masks ``[rows, channels]`` for decoder step ``t`` of each row, drawn from the
    sentence's noise (Tacotron2's PyTorch decoder and its ONNX loop alike)."""

    def __init__(self, noise: NoiseSource, rows: int, channels: int, p: float, limit: int):
        self.noise, self.rows, self.channels, self.p, self.limit = noise, rows, channels, p, limit
        self.drawn: list[np.ndarray] = []
        self.masks = self.make_masks(np.zeros((rows, channels, 0), np.float32))  # made once per draw

    def make_masks(self, noise: np.ndarray) -> Any:
        return prenet_masks(noise, self.p)

    def column(self, row: int, t: int) -> np.ndarray:
        if not self.drawn or t >= self.drawn[0].shape[1]:
            n = min(self.limit, max(FIRST_NOISE_STEPS, 2 * (self.drawn[0].shape[1] if self.drawn else 0), t + 1))
            self.drawn = [np.asarray(self.noise(r, n, self.channels), dtype=np.float32) for r in range(self.rows)]
            self.masks = self.make_masks(np.stack(self.drawn))
        return self.drawn[row][:, t]

    def __call__(self, t: int, batch: int) -> Any:
        if t >= self.masks.shape[2]:
            self.column(0, t)
        return self.masks[:batch, :, t]


class Tacotron2Onnx(AcousticOnnx):
    """Tacotron2: the encoder is ``acoustic.onnx``, one decoder step ``acoustic.decoder_step.onnx``,
    the postnet ``acoustic.postnet.onnx``; :meth:`onnx_run` runs the decoder loop in Python, with
    the prenet masks and the alignment check of the PyTorch decoder."""

    knobs: ClassVar[tuple[str, ...]] = ("speaker_id",)
    onnx_extra_graphs: ClassVar[tuple[str, ...]] = ("decoder_step", "postnet")

    @classmethod
    def onnx_run(
        cls, sessions: dict[str, Any], metadata: dict[str, str], ids: list[int], controls: Controls,
        noise: NoiseSource, n_mels: int,
    ) -> tuple[np.ndarray, AlignmentReport]:
        meta = {key.removeprefix("tacotron2."): float(value) for key, value in metadata.items()
                if key.startswith("tacotron2.")}
        limit, r = int(meta["max_decoder_steps"]), int(meta["n_frames_per_step"])
        p = meta["p_prenet_dropout"]
        encoder_feeds = {"input": np.asarray([ids], dtype=np.int64)}
        if "sid" in {i.name for i in sessions[""].get_inputs()}:
            encoder_feeds["sid"] = np.asarray([controls.speaker_id or 0], dtype=np.int64)
        memory, processed = sessions[""].run(["memory", "processed_memory"], encoder_feeds)
        tokens = memory.shape[1]
        sizes = [meta["attention_rnn_dim"]] * 2 + [meta["decoder_rnn_dim"]] * 2 + [tokens, tokens, meta["memory_dim"]]
        state = [np.zeros((1, int(size)), dtype=np.float32) for size in sizes]
        masks = PrenetNoise(noise, 1, int(meta["prenet_channels"]), p, limit)
        frame = np.zeros((1, int(meta["frame_dim"])), dtype=np.float32)
        mels, weights, stopped = [], [], False
        fixed = meta.get("benchmark_frames_per_token")
        if fixed is not None:
            limit = min(limit, max(1, math.ceil(len(ids) * fixed / r)))
        for t in range(limit):
            mask = masks(t, 1) if p > 0 else np.ones((1, int(meta["prenet_channels"])), dtype=np.float32)
            feeds = {"frame": frame, "prenet_mask": mask, **dict(zip(TACOTRON2_STATE, state)),
                     "memory": memory, "processed_memory": processed}
            frame, gate, *state = sessions["decoder_step"].run(None, feeds)
            mels.append(frame)
            weights.append(state[4][0])
            if fixed is None and 1.0 / (1.0 + np.exp(-float(gate[0]))) > meta["gate_threshold"]:
                stopped = True
                break
        stopped = stopped or fixed is not None
        mel = np.concatenate(mels, axis=0).reshape(len(mels) * r, n_mels).T[None]
        (mel_postnet,) = sessions["postnet"].run(["mel_postnet"], {"mel": np.ascontiguousarray(mel)})
        report = check_alignment(np.stack(weights, axis=1), len(ids), not stopped, n_frames=max(len(mels), 1))
        return mel_postnet[0], report


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


def _tacotron2(config: Mapping[str, Any]) -> AcousticOnnx:
    return _instance(Tacotron2Onnx, n_speakers=int(config.get("n_speakers", 0) or 0),
                     max_symbols=attention_max_symbols(config["max_decoder_steps"], config["n_frames_per_step"]))


# family name (the registry's) → the runner built from its voice.json ``model_config``
ACOUSTIC_RUNNERS: dict[str, Callable[[Mapping[str, Any]], AcousticOnnx]] = {"glow_tts": _glow_tts,
                                                                            "tacotron2": _tacotron2}
VOCODER_RUNNERS: dict[str, Callable[[Mapping[str, Any]], VocoderOnnx]] = {"hifigan": _hifigan, "vocos": _vocos}


def _instance(cls: type, **facts: Any) -> Any:
    runner = cls()
    runner.__dict__.update(facts)
    # The synthesizer reads ``adapter.model.config`` for style controls only (Flowtron's mixture
    # components), which no torch-free family has: an empty config answers "none".
    runner.model = SimpleNamespace(config=SimpleNamespace())
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
    "FIRST_NOISE_STEPS",
    "FRAMES_PER_SYMBOL",
    "GlowTTSOnnx",
    "ONNX_NOISE_FRAMES_PER_TOKEN",
    "PrenetNoise",
    "TACOTRON2_STATE",
    "Tacotron2Onnx",
    "attention_max_symbols",
    "VOCODER_RUNNERS",
    "VocoderOnnx",
    "acoustic_runner",
    "conv_vocoder_context",
    "prenet_keep_threshold",
    "prenet_masks",
    "vocos_context_frames",
    "vocoder_runner",
]
