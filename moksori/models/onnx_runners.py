"""How each model family's exported graphs run in ONNX Runtime, without torch.

The PyTorch adapters (:mod:`moksori.models.interfaces` and the family files) inherit these
classes, so there is one implementation of each family's ONNX inputs and loops: an exported voice
runs the same code whether the adapter was built from its weights or not. The torch-free path
(:mod:`moksori.synthesis.onnx_voice`) builds the same classes from voice.json alone
(:func:`acoustic_runner`, :func:`vocoder_runner`): the facts the synthesizer needs (speakers,
symbol limit, a vocoder's receptive field) come from the model config there. The autoregressive
families (Tacotron2's decoder, Flowtron's flows) run their frame loops here in NumPy, one graph
call per frame; WaveGlow's noise and its denoiser (STFT, bias subtraction, inverse STFT) are NumPy
here too, the denoiser's bias measured by running the vocoder graph once on zeros.

A family missing from :data:`ACOUSTIC_RUNNERS` / :data:`VOCODER_RUNNERS` needs torch at synthesis
time (it has no single graph: WaveNet, Griffin-Lim), and its voices run on the PyTorch path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    def onnx_style_references(cls, metadata: dict[str, str]) -> bool:
        """Whether the export handles style references (``ref_mel``) as the PyTorch model does;
        False where it lacks a graph for them, so a caller with a reference uses PyTorch."""
        return True

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

    def onnx_finish(self, wave: np.ndarray, controls: Controls | None = None,
                    graph: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None) -> np.ndarray:
        """What runs on the graph's output outside the graph (WaveGlow's denoiser); by default
        nothing. ``graph`` runs ``vocoder.onnx`` on other inputs (feeds → the first row of its
        output), for post-processing that measures the model (WaveGlow's bias)."""
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


# --- Flowtron ------------------------------------------------------------------------------------

# The metadata of Flowtron's ``acoustic.onnx`` (each name under this prefix): what its frame loop
# needs, and a fixed mixture prior's means and log variances ``[n_mel, k]`` as JSON.
FLOWTRON_METADATA_PREFIX = "flowtron."
FLOWTRON_METADATA = ("n_flows", "n_speakers", "n_mel_channels", "n_hidden", "n_lstm_layers", "max_decoder_steps",
                     "gate_threshold", "use_gate_layer", "n_components", "mixture_mean", "mixture_log_var",
                     "reference_encoder")
# A flow frame graph's LSTM states: inputs by these names, outputs as ``out_<name>``, in this order.
FLOWTRON_FRAME_STATE = ("attention_h", "attention_c", "lstm_h", "lstm_c")
# With cumulative attention (``use_cumm_attention``) also the accumulated and the previous weights [1, tokens].
FLOWTRON_LOCATION_STATE = ("attn_cumulative", "attn_previous")
FLOWTRON_STYLE_KEYS = ("ref_mel", "ref_ids", "strength", "segments", "ref_mel_b", "ref_ids_b", "z_b", "alpha",
                       "component")
MAX_STYLE_SEGMENTS = 64


def flowtron_metadata(facts: Mapping[str, Any]) -> dict[str, str]:
    """The ONNX metadata of Flowtron's main graph from its facts (lists are written as JSON)."""
    unknown = sorted(set(facts) - set(FLOWTRON_METADATA))
    if unknown:
        raise ValueError(f"unknown Flowtron ONNX metadata {', '.join(unknown)}")
    return {FLOWTRON_METADATA_PREFIX + key: json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
            for key, value in facts.items()}


def _flowtron_facts(metadata: Mapping[str, str]) -> dict[str, str]:
    return {key.removeprefix(FLOWTRON_METADATA_PREFIX): value for key, value in metadata.items()
            if key.startswith(FLOWTRON_METADATA_PREFIX)}


def _array(value: Any, dtype: Any) -> np.ndarray:
    """A fresh array of ``value`` (a list, an array, or a torch tensor on any device)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=dtype)


def _style_mel(value: Any, n_mel: int, name: str) -> np.ndarray:
    mel = _array(value, np.float32)
    if mel.ndim == 3 and mel.shape[0] == 1:
        mel = mel[0]
    if mel.ndim != 2 or mel.shape[0] != n_mel or mel.shape[1] < 2:
        raise ValueError(f"style {name} must be a mel [{n_mel}, frames >= 2], got shape {tuple(mel.shape)}")
    if not np.isfinite(mel).all():
        raise ValueError(f"style {name} has non-finite values")
    return mel


@dataclass(frozen=True)
class FlowtronStyle:
    """What ``Controls.style`` may hold for Flowtron (all optional; arrays are NumPy):

    * ``ref_mel`` ``[n_mel, frames]``: a reference recording's mel; its z (the forward pass) is
      averaged over time (``segments`` > 1: over that many equal segments, laid out over the
      generated frames in order) and the prior is centred there. ``ref_ids``: the reference's
      transcript as symbol ids; without it the sentence's own text is used to encode the
      reference (an approximation: the reference is then read against the wrong text).
    * ``strength`` in [0, 1]: how far the prior's mean moves from its own mean toward the
      reference's (0: plain sampling, 1: centred on the reference).
    * ``ref_mel_b`` (+ ``ref_ids_b``) or ``z_b`` ``[n_mel]``: a second style; ``alpha`` in [0, 1]
      interpolates the mean ``(1 - alpha) z_a + alpha z_b`` (``z_a``: the reference's mean, or
      the prior's own without ``ref_mel``).
    * ``component``: the mixture component to sample from (models with ``n_components`` > 1;
      default: the reference's most likely component, else 0).

    References need Flowtron's forward pass: on ONNX Runtime the ``encode`` graph runs it
    (:class:`FlowtronOnnx`); an export without that graph refuses references.
    """

    ref_mel: np.ndarray | None = None
    ref_ids: np.ndarray | None = None
    strength: float = 1.0
    segments: int = 1
    ref_mel_b: np.ndarray | None = None
    ref_ids_b: np.ndarray | None = None
    z_b: np.ndarray | None = None
    alpha: float = 0.0
    component: int | None = None

    @classmethod
    def from_controls(cls, style: Mapping[str, Any], n_mel: int, n_components: int) -> "FlowtronStyle":
        """The checked style of a request; ValueError naming the key otherwise."""
        unknown = sorted(set(style) - set(FLOWTRON_STYLE_KEYS))
        if unknown:
            raise ValueError(f"unknown Flowtron style key(s) {', '.join(unknown)}; "
                             f"known: {', '.join(FLOWTRON_STYLE_KEYS)}")
        values = dict(style)
        for key in ("ref_mel", "ref_mel_b"):
            if values.get(key) is not None:
                values[key] = _style_mel(values[key], n_mel, key)
        for key in ("ref_ids", "ref_ids_b"):
            if values.get(key) is not None:
                ids = _array(values[key], np.int64).reshape(-1)
                if ids.size == 0:
                    raise ValueError(f"style {key} is empty")
                values[key] = ids
        if values.get("z_b") is not None:
            z_b = _array(values["z_b"], np.float32)
            if z_b.shape != (n_mel,):
                raise ValueError(f"style z_b must have shape [{n_mel}], got {tuple(z_b.shape)}")
            values["z_b"] = z_b
        for key in ("strength", "alpha"):
            if key in values:
                value = float(values[key])
                if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                    raise ValueError(f"style {key} must be in [0, 1], got {values[key]!r}")
                values[key] = value
        if "segments" in values:
            segments = int(values["segments"])
            if not 1 <= segments <= MAX_STYLE_SEGMENTS:
                raise ValueError(f"style segments must be in 1..{MAX_STYLE_SEGMENTS}, got {values['segments']!r}")
            values["segments"] = segments
        if values.get("component") is not None:
            if n_components < 2:
                raise ValueError("style component: this Flowtron has a plain Gaussian prior (no mixture components)")
            component = int(values["component"])
            if not 0 <= component < n_components:
                raise ValueError(f"style component must be in 0..{n_components - 1}, got {values['component']!r}")
            values["component"] = component
        if values.get("ref_mel_b") is not None and values.get("z_b") is not None:
            raise ValueError("style: give either ref_mel_b or z_b, not both")
        return cls(**values)


def fixed_prior(mixture: Mapping[str, np.ndarray] | None, n_mel: int,
                component: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std ``[n_mel, 1]`` (float32) of Flowtron's prior without a reference: N(0, 1), or
    a mixture's ``component`` (default 0). ``mixture``: ``mean``/``log_var`` ``[n_mel, k]``."""
    if mixture is None:
        return np.zeros((n_mel, 1), np.float32), np.ones((n_mel, 1), np.float32)
    k = 0 if component is None else component
    mean = np.asarray(mixture["mean"], np.float32)[:, k : k + 1]
    log_var = np.asarray(mixture["log_var"], np.float32)[:, k : k + 1]
    # exp in float64, rounded once: the float32 exp of torch and NumPy differ in the last bit
    return np.ascontiguousarray(mean), np.exp(0.5 * log_var.astype(np.float64)).astype(np.float32)


def styled_mean(style: FlowtronStyle, mean0: Any, z_a: Any | None, z_b: Any | None) -> Any:
    """The prior's mean moved toward the style: ``z_a`` (the reference's segment means, or the
    prior's own ``mean0``) interpolated toward ``z_b`` by ``alpha``, the whole by ``strength``.
    NumPy arrays ``[n_mel, 1 or segments]``."""
    if z_a is None and z_b is None:
        return mean0
    z_a = mean0 if z_a is None else z_a
    target = z_a if z_b is None else (1 - style.alpha) * z_a + style.alpha * z_b
    return (1 - style.strength) * mean0 + style.strength * target


def segment_means(z: np.ndarray, segments: int) -> np.ndarray:
    """Means of ``z`` ``[n_mel, frames]`` over ``segments`` equal spans: ``[n_mel, segments]``."""
    bounds = np.round(np.linspace(0, z.shape[1], segments + 1)).astype(np.int64).tolist()
    means = [z[:, a : max(b, a + 1)].mean(axis=1) for a, b in zip(bounds[:-1], bounds[1:])]
    return np.stack(means, axis=1).astype(np.float32)


def spread_segments(means: np.ndarray, frames: int) -> np.ndarray:
    """Segment means ``[n_mel, k]`` laid over ``frames`` frames in order: ``[n_mel, frames]``."""
    index = (np.arange(frames) * means.shape[1]) // max(frames, 1)
    return means[:, index]


def flowtron_prior(
    style: FlowtronStyle, n_mel: int, mixture: Mapping[str, np.ndarray] | None, z_ref: np.ndarray | None,
    prob: np.ndarray | None, z_ref_b: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flowtron's prior for a style: its own mean and std ``[n_mel, 1]`` and the styled mean
    ``[n_mel, k]`` (k: the style's segments with a reference, else 1). ``z_ref``/``z_ref_b``: the z
    ``[n_mel, frames]`` of ``ref_mel``/``ref_mel_b`` (None without); ``prob``: ``ref_mel``'s mixture
    weights ``[k]``, whose most likely component is sampled unless the style names one."""
    component = style.component
    if mixture is not None and component is None and prob is not None:
        component = int(np.argmax(prob))
    mean0, std0 = fixed_prior(mixture, n_mel, component)
    z_a = None if z_ref is None else segment_means(z_ref, style.segments)
    if z_ref_b is not None:
        z_b = z_ref_b.mean(axis=1, keepdims=True)
    else:
        z_b = None if style.z_b is None else style.z_b[:, None]
    return mean0, std0, styled_mean(style, mean0, z_a, z_b)


def flowtron_flow_inverse(
    session: Any, z: np.ndarray, keys: np.ndarray, values: np.ndarray, gate_threshold: float | None,
    n_hidden: int, n_lstm_layers: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One flow's inverse over ``z`` ``[frames, c]`` in its processing order, frame by frame
    (``session``: the flow's frame graph); with ``gate_threshold`` it stops after the frame whose
    gate fires. Returns x ``[frames', c]`` and the attention ``[frames', tokens]``. A graph with
    cumulative attention also carries :data:`FLOWTRON_LOCATION_STATE` (its ``keys`` are the memory)."""
    names = FLOWTRON_FRAME_STATE
    state = [np.zeros((1, 1, n_hidden), np.float32)] * 2 + [np.zeros((n_lstm_layers, 1, n_hidden), np.float32)] * 2
    if FLOWTRON_LOCATION_STATE[0] in {i.name for i in session.get_inputs()}:
        names += FLOWTRON_LOCATION_STATE
        state += [np.zeros((1, values.shape[1]), np.float32)] * 2
    frame = np.zeros((1, 1, z.shape[1]), np.float32)
    xs, attns = [], []
    for t in range(len(z)):
        feeds = {"frame": frame, "z": np.ascontiguousarray(z[t][None, None]),
                 **dict(zip(names, state)), "keys": keys, "values": values}
        out = session.run(None, feeds)
        frame = out[0]
        xs.append(frame[0, 0])
        attns.append(out[1][0, 0])
        state = out[-len(names):]
        if gate_threshold is not None and 1.0 / (1.0 + np.exp(-float(out[2][0]))) > gate_threshold:
            break
    return np.stack(xs), np.stack(attns)


class FlowtronOnnx(AcousticOnnx):
    """Flowtron: ``acoustic.onnx`` encodes the text into every flow's attention keys and values,
    ``acoustic.flow<i>.onnx`` is one frame of flow ``i``'s inverse and ``acoustic.encode.onnx``
    (exports that list ``reference_encoder``) runs the flows forward on a style reference (mel →
    z, with a mixture prior also its mixture and weights). :meth:`onnx_run` samples z from the
    styled prior (:func:`flowtron_prior`) and runs the flows' frame loops, the last flow first,
    until its gate fires; with reference segments, again over that many frames (as the adapter)."""

    knobs: ClassVar[tuple[str, ...]] = ("noise_scale", "speaker_id", "style")

    @classmethod
    def onnx_extra_graph_names(cls, metadata: dict[str, str]) -> tuple[str, ...]:
        meta = _flowtron_facts(metadata)
        flows = tuple(f"flow{i}" for i in range(int(meta["n_flows"])))
        return flows + (("encode",) if cls.onnx_style_references(metadata) else ())

    @classmethod
    def onnx_style_references(cls, metadata: dict[str, str]) -> bool:
        return bool(int(_flowtron_facts(metadata).get("reference_encoder", 0)))

    @classmethod
    def onnx_run(
        cls, sessions: dict[str, Any], metadata: dict[str, str], ids: list[int], controls: Controls,
        noise: NoiseSource, n_mels: int,
    ) -> tuple[np.ndarray, AlignmentReport]:
        meta = _flowtron_facts(metadata)
        n_mel, n = int(meta["n_mel_channels"]), int(meta["max_decoder_steps"])
        style = FlowtronStyle.from_controls(controls.style, n_mel, int(meta["n_components"]))
        _, std0, styled = cls.onnx_prior(sessions, meta, style, ids, controls)
        sigma, eps = float(controls.noise_scale), np.asarray(noise(0, n, n_mel))
        keys, values = cls.onnx_memory(sessions[""], meta, ids, controls)
        # Segment means need the sentence's length: a first pass with the segments' average finds it.
        z = styled.mean(axis=1, keepdims=True) + sigma * std0 * eps
        x, attn, hit_limit = cls.onnx_flows(sessions, meta, z.T.astype(np.float32), keys, values, gated=True)
        if style.segments > 1 and style.ref_mel is not None:
            frames = len(x)
            z = spread_segments(styled, frames) + sigma * std0 * eps[:, :frames]
            x, attn, _ = cls.onnx_flows(sessions, meta, z.T.astype(np.float32), keys, values, gated=False)
            hit_limit = frames >= n
        report = check_alignment(np.ascontiguousarray(attn.T), len(ids), hit_limit, n_frames=max(len(x), 1))
        return np.ascontiguousarray(x.T), report  # flow 0's alignment [tokens, frames] above

    @staticmethod
    def onnx_flows(
        sessions: dict[str, Any], meta: Mapping[str, str], z: np.ndarray, keys: np.ndarray, values: np.ndarray,
        gated: bool,
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """The flows' inverse of z ``[frames, c]``: x ``[frames', c]``, flow 0's attention
        ``[frames', tokens]`` and whether the gate (``gated`` and the model has one) ran to the limit."""
        use_gate, hit_limit, x, attn = gated and bool(int(meta["use_gate_layer"])), False, z, None
        n_flows = int(meta["n_flows"])
        for order, i in enumerate(reversed(range(n_flows))):
            backward = i % 2 == 1  # AR_Back_Step: the flow reads the frames in reverse
            gate_threshold = float(meta["gate_threshold"]) if use_gate and order == 0 else None
            x, attn = flowtron_flow_inverse(sessions[f"flow{i}"], x[::-1] if backward else x, keys[i], values[i],
                                            gate_threshold, int(meta["n_hidden"]), int(meta["n_lstm_layers"]))
            if backward:
                x, attn = x[::-1], attn[::-1]
            if gate_threshold is not None:
                hit_limit = len(x) >= int(meta["max_decoder_steps"])
        return x, attn, hit_limit

    @classmethod
    def onnx_prior(
        cls, sessions: dict[str, Any], meta: Mapping[str, str], style: FlowtronStyle, ids: list[int],
        controls: Controls,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`flowtron_prior` of the style, its references encoded by the ``encode`` graph."""
        mixture = None
        if int(meta["n_components"]) > 1:
            mixture = {key: np.asarray(json.loads(meta[f"mixture_{key}"]), np.float32) for key in ("mean", "log_var")}
        z_ref = prob = z_ref_b = None
        if style.ref_mel is not None or style.ref_mel_b is not None:
            if "encode" not in sessions:
                raise ValueError("Flowtron style references (ref_mel) need the reference encoder graph "
                                 "(acoustic.encode.onnx), which this export lacks: re-export the voice "
                                 "(moksori export VOICE --onnx); a model with use_cumm_attention has none "
                                 "(its forward pass is a frame loop): use it with PyTorch for references")
        if style.ref_mel is not None:
            ref_ids = ids if style.ref_ids is None else style.ref_ids
            encoded = cls.onnx_encode(sessions["encode"], meta, style.ref_mel, ref_ids, controls)
            z_ref = encoded["z"]
            if "prob" in encoded:  # a mixture prior: the reference's weights (and its predicted components)
                prob = encoded["prob"]
                mixture = {"mean": encoded["mean"], "log_var": encoded["log_var"]}
        if style.ref_mel_b is not None:
            ref_ids_b = ids if style.ref_ids_b is None else style.ref_ids_b
            z_ref_b = cls.onnx_encode(sessions["encode"], meta, style.ref_mel_b, ref_ids_b, controls)["z"]
        return flowtron_prior(style, int(meta["n_mel_channels"]), mixture, z_ref, prob, z_ref_b)

    @staticmethod
    def onnx_encode(session: Any, meta: Mapping[str, str], mel: np.ndarray, ids: Any,
                    controls: Controls) -> dict[str, np.ndarray]:
        """The ``encode`` graph's outputs for a reference ``mel`` ``[c, frames]`` read with ``ids``,
        by name, first row: ``z`` ``[c, frames]`` (and ``mean``, ``log_var`` ``[c, k]``, ``prob`` ``[k]``)."""
        feeds = {"input": np.asarray(ids, dtype=np.int64).reshape(1, -1), "mel": np.asarray(mel, np.float32)[None],
                 **_flowtron_speaker_feed(session, meta, controls)}
        names = [output.name for output in session.get_outputs()]
        return {name: value[0] for name, value in zip(names, session.run(names, feeds))}

    @staticmethod
    def onnx_memory(session: Any, meta: Mapping[str, str], ids: list[int],
                    controls: Controls) -> tuple[np.ndarray, np.ndarray]:
        """Every flow's attention keys and values ``[n_flows, 1, tokens, n_attn]`` of the text (with
        cumulative attention the keys' place holds the memory ``[n_flows, 1, tokens, n_memory]``)."""
        feeds = {"input": np.asarray([ids], dtype=np.int64), **_flowtron_speaker_feed(session, meta, controls)}
        keys, values = session.run(["keys", "values"], feeds)
        return keys, values


def _flowtron_speaker_feed(session: Any, meta: Mapping[str, str], controls: Controls) -> dict[str, np.ndarray]:
    """``sid`` for a graph that takes one (several speakers), checked against the model's count."""
    if "sid" not in {i.name for i in session.get_inputs()}:
        return {}
    speaker = int(controls.speaker_id or 0)
    if not 0 <= speaker < int(meta["n_speakers"]):
        raise ValueError(f"speaker id out of range: this model has {meta['n_speakers']} speaker(s)")
    return {"sid": np.asarray([speaker], dtype=np.int64)}


def vocos_context_frames(num_layers: int, kernel_size: int, win_size: int, hop_size: int) -> int:
    """Vocos's receptive field in mel frames either side (convolutions plus STFT overlap)."""
    return (num_layers + 1) * (kernel_size // 2) + math.ceil(win_size / hop_size / 2)


def conv_vocoder_context(own: int | None) -> int:
    """A convolutional vocoder's context: its own receptive field, at least the default."""
    return max(DEFAULT_CONTEXT_FRAMES, int(own or 0))


# --- WaveGlow -------------------------------------------------------------------------------------

# Sampling temperature and denoiser strength of NVIDIA's inference scripts and notebooks.
WAVEGLOW_SIGMA = 0.666
WAVEGLOW_DENOISE = 0.01
# Frames of zero mel vocoded to measure the denoiser's bias spectrum (NVIDIA's denoiser uses 88).
WAVEGLOW_BIAS_FRAMES = 88


# The denoiser's STFT is written here in NumPy rather than taken from librosa or torch: the
# torch-free ONNX path loads neither (librosa pulls numba and scipy, tens of MB per process), and
# the framing must be torch.stft's exactly so that both paths give the same audio.


def hann_window(win: int, n_fft: int) -> np.ndarray:
    """A periodic Hann window of ``win`` samples centred in ``n_fft`` (torch.stft's layout), float64."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    left = (n_fft - win) // 2
    return np.pad(window, (left, n_fft - win - left))


def stft(audio: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """``[b, samples]`` → complex ``[b, n_fft // 2 + 1, 1 + samples // hop]``: frames centred on
    multiples of ``hop``, the edges padded with ``n_fft // 2`` zeros (reflection would need more
    samples than a short span has)."""
    padded = np.pad(np.asarray(audio, np.float64), ((0, 0), (n_fft // 2, n_fft // 2)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop]
    return np.fft.rfft(frames * window, axis=-1).transpose(0, 2, 1)


def istft(spec: np.ndarray, n_fft: int, hop: int, window: np.ndarray, length: int) -> np.ndarray:
    """Inverse of :func:`stft` (weighted overlap-add): ``[b, bins, frames]`` → ``[b, length]`` float64."""
    segments = np.fft.irfft(spec.transpose(0, 2, 1), n=n_fft, axis=-1) * window  # [b, frames, n_fft]
    batch, frames = segments.shape[:2]
    blocks = -(-n_fft // hop)  # each segment spans this many hop-long blocks of the output
    extra = blocks * hop - n_fft
    segments = np.pad(segments, ((0, 0), (0, 0), (0, extra))).reshape(batch, frames, blocks, hop)
    weights = np.pad(window**2, (0, extra)).reshape(blocks, hop)
    out = np.zeros((batch, frames + blocks - 1, hop))
    envelope = np.zeros((frames + blocks - 1, hop))
    for k in range(blocks):
        out[:, k : k + frames] += segments[:, :, k]
        envelope[k : k + frames] += weights[k]
    start = n_fft // 2
    out, envelope = out.reshape(batch, -1)[:, start : start + length], envelope.reshape(-1)[start : start + length]
    short = length - out.shape[1]
    if short > 0:
        out, envelope = np.pad(out, ((0, 0), (0, short))), np.pad(envelope, (0, short), constant_values=1.0)
    return out / np.where(envelope > 1e-11, envelope, 1.0)


class SpectralDenoiser:
    """Removes a vocoder's constant hiss: the magnitude spectrum of its output for a zero mel
    (``bias_spec`` ``[bins, 1]``, averaged over frames) is subtracted, times ``strength``, from the
    magnitude of the audio's STFT; the audio's phase is kept. NumPy, float64 inside."""

    def __init__(self, bias_audio: np.ndarray, n_fft: int = 1024, hop: int = 256, win: int = 1024) -> None:
        self.n_fft, self.hop, self.win = n_fft, hop, win
        self.window = hann_window(win, n_fft)
        magnitude = np.abs(self.stft(np.reshape(bias_audio, (1, -1))))[0]
        self.bias_spec = magnitude.mean(axis=-1, keepdims=True).astype(np.float32)

    def stft(self, audio: np.ndarray) -> np.ndarray:
        """``[b, samples]`` → complex ``[b, bins, frames]`` (this denoiser's framing)."""
        return stft(audio, self.n_fft, self.hop, self.window)

    def denoise(self, audio: np.ndarray, strength: float = WAVEGLOW_DENOISE) -> np.ndarray:
        """``audio`` ``[samples]`` or ``[b, samples]`` → denoised float32, same shape and length."""
        audio = np.asarray(audio)
        flat = audio.reshape(-1, audio.shape[-1])
        spec = self.stft(flat)
        magnitude = np.maximum(np.abs(spec) - self.bias_spec.astype(np.float64) * strength, 0.0)
        denoised = magnitude * np.exp(1j * np.angle(spec))
        out = istft(denoised, self.n_fft, self.hop, self.window, flat.shape[-1])
        return out.reshape(audio.shape).astype(np.float32)


class WaveGlowOnnx(VocoderOnnx):
    """WaveGlow: ``vocoder.onnx`` is the flow (``mel`` + noise ``z`` → wave). The noise is drawn
    here: ``sigma`` (default 0.666) times a draw seeded by the request's ``seed``, or else the
    vocoder's own ``seed``, so the same mel gives the same audio; the denoiser runs on the output
    at strength ``denoise`` (default 0.01; 0 turns it off), its bias measured once, lazily.
    Streaming vocodes whole sentences (``context_frames`` None: see :mod:`moksori.models.waveglow`).

    Reads ``n_group``, ``hop_size``, ``win_size`` and ``n_mel_channels`` (the model config's; the
    PyTorch adapter's are properties of its model) and ``seed``."""

    knobs: ClassVar[tuple[str, ...]] = ("sigma", "denoise")
    # The denoiser's class: the PyTorch adapter's also takes tensors.
    denoiser_class: ClassVar[type[SpectralDenoiser]] = SpectralDenoiser
    n_group: int
    hop_size: int
    win_size: int
    n_mel_channels: int
    seed: int = 0

    def settings(self, controls: Controls | None) -> tuple[float, float, int]:
        """sigma, denoiser strength and noise seed of a request (defaults where it gives none)."""
        sigma = WAVEGLOW_SIGMA if controls is None or controls.sigma is None else float(controls.sigma)
        denoise = WAVEGLOW_DENOISE if controls is None or controls.denoise is None else float(controls.denoise)
        seed = getattr(controls, "seed", None)
        return sigma, denoise, self.seed if seed is None else int(seed)

    def groups(self, frames: int) -> int:
        """Groups of ``n_group`` samples that ``frames`` mel frames give (frames·hop samples)."""
        return frames * self.hop_size // self.n_group

    def z_noise(self, groups: int, sigma: float, seed: int) -> np.ndarray:
        """``sigma`` · N(0, 1) ``[n_group, groups]`` float32 from ``seed``, drawn group by group so
        that a longer draw starts with the same values."""
        draw = np.random.default_rng(seed).standard_normal((groups, self.n_group), dtype=np.float32)
        return np.ascontiguousarray((np.float32(sigma) * draw).T)

    def onnx_feeds(self, mel: np.ndarray, controls: Controls | None = None) -> dict[str, np.ndarray]:
        sigma, _, seed = self.settings(controls)
        z = self.z_noise(self.groups(mel.shape[-1]), sigma, seed)
        return {"mel": np.asarray(mel, dtype=np.float32)[None], "z": z[None]}

    def onnx_finish(self, wave: np.ndarray, controls: Controls | None = None,
                    graph: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None) -> np.ndarray:
        _, denoise, _ = self.settings(controls)
        return self.denoiser(graph).denoise(wave, denoise) if denoise > 0 else wave

    def bias_audio(self, graph: Callable[[dict[str, np.ndarray]], np.ndarray] | None) -> np.ndarray:
        """The model's output for zero mel with zero noise (``graph``: ``vocoder.onnx``)."""
        if graph is None:
            raise ValueError("WaveGlow's denoiser measures its bias with the vocoder graph: pass graph")
        groups = self.groups(WAVEGLOW_BIAS_FRAMES)
        feeds = {"mel": np.zeros((1, self.n_mel_channels, WAVEGLOW_BIAS_FRAMES), np.float32),
                 "z": np.zeros((1, self.n_group, groups), np.float32)}
        return np.asarray(graph(feeds), dtype=np.float32)

    def denoiser(self, graph: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None) -> SpectralDenoiser:
        """The denoiser of this model, its bias measured on first use and kept: by ``graph`` when
        given, else as :meth:`bias_audio` does without one (the PyTorch adapter: on its model). So
        the ONNX paths with and without torch give the same audio."""
        cache = self.__dict__.setdefault("_denoisers", {})
        source = "model" if graph is None else "graph"
        if source not in cache:
            cache[source] = self.denoiser_class(self.bias_audio(graph), n_fft=self.win_size, hop=self.hop_size,
                                                win=self.win_size)
        return cache[source]


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


def _flowtron(config: Mapping[str, Any]) -> AcousticOnnx:
    runner = _instance(FlowtronOnnx, n_speakers=int(config.get("n_speakers", 1)),
                       max_symbols=attention_max_symbols(config["max_decoder_steps"]))
    # The synthesizer checks a requested mixture component against the model's count.
    runner.model.config.n_components = int(config.get("n_components", 0) or 0)
    return runner


def _waveglow(config: Mapping[str, Any]) -> VocoderOnnx:
    facts = {key: int(config[key]) for key in ("n_group", "hop_size", "win_size", "n_mel_channels")}
    return _instance(WaveGlowOnnx, seed=0, **facts)  # seed: WaveGlowVocoder's default


# family name (the registry's) → the runner built from its voice.json ``model_config``
ACOUSTIC_RUNNERS: dict[str, Callable[[Mapping[str, Any]], AcousticOnnx]] = {
    "glow_tts": _glow_tts, "tacotron2": _tacotron2, "flowtron": _flowtron}
VOCODER_RUNNERS: dict[str, Callable[[Mapping[str, Any]], VocoderOnnx]] = {
    "hifigan": _hifigan, "vocos": _vocos, "waveglow": _waveglow}


def _instance(cls: type, **facts: Any) -> Any:
    runner = cls()
    runner.__dict__.update(facts)
    # The synthesizer reads ``adapter.model.config`` for style controls only (Flowtron's mixture
    # components): an empty config answers "none".
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
    "FLOWTRON_FRAME_STATE",
    "FLOWTRON_LOCATION_STATE",
    "FLOWTRON_METADATA",
    "FLOWTRON_METADATA_PREFIX",
    "FLOWTRON_STYLE_KEYS",
    "FRAMES_PER_SYMBOL",
    "FlowtronOnnx",
    "FlowtronStyle",
    "GlowTTSOnnx",
    "MAX_STYLE_SEGMENTS",
    "ONNX_NOISE_FRAMES_PER_TOKEN",
    "PrenetNoise",
    "TACOTRON2_STATE",
    "Tacotron2Onnx",
    "attention_max_symbols",
    "SpectralDenoiser",
    "VOCODER_RUNNERS",
    "VocoderOnnx",
    "WAVEGLOW_BIAS_FRAMES",
    "WAVEGLOW_DENOISE",
    "WAVEGLOW_SIGMA",
    "WaveGlowOnnx",
    "acoustic_runner",
    "conv_vocoder_context",
    "fixed_prior",
    "segment_means",
    "spread_segments",
    "hann_window",
    "istft",
    "flowtron_flow_inverse",
    "flowtron_prior",
    "flowtron_metadata",
    "prenet_keep_threshold",
    "prenet_masks",
    "stft",
    "styled_mean",
    "vocos_context_frames",
    "vocoder_runner",
]
