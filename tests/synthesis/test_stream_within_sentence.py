"""Streaming within a sentence: a Tacotron2 voice's first sentence leaves in spans as its decoder
runs (vocoded with the vocoder's context), joins into the non-streamed audio, and its alignment
outcome is reported on the stream (a streamed first sentence cannot be retried; later ones are)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from moksori.bench import write_untrained_checkpoint
from moksori.models import registry
from moksori.models.tacotron2 import Tacotron2Acoustic, Tacotron2Config
from moksori.synthesis import make_bundle
from moksori.synthesis import synthesizer as synthesizer_module
from moksori.synthesis.synthesizer import HEAD_FRAMES, Synthesizer, SynthesisStream
from moksori.text import TextFrontend

HOP = 256


def tacotron2_voice(root: Path, **config) -> Path:
    frontend = TextFrontend("ko")
    torch.manual_seed(0)
    model = registry.get("tacotron2").build(Tacotron2Config.tiny(len(frontend.symbols), **config))
    acoustic = write_untrained_checkpoint(root / "acoustic.pt", model, "tacotron2", frontend)
    vocoder_family = registry.get("hifigan")
    vocoder = write_untrained_checkpoint(root / "vocoder.pt", vocoder_family.build(vocoder_family.config("tiny")),
                                         "hifigan", None)
    return make_bundle(acoustic, root / "voice", vocoder_ckpt=vocoder, name="t2")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Synthesizer:
    # 12 decoder steps per symbol, the stop gate ignored: long sentences of known length.
    voice = tacotron2_voice(tmp_path_factory.mktemp("t2_stream"), benchmark_frames_per_token=12.0,
                            max_decoder_steps=400)
    return Synthesizer(voice, use_onnx=False)


def test_first_audio_leaves_after_the_first_decoder_chunk(synth):
    steps = []  # one prenet call per decoder step
    hook = synth._acoustic.model.decoder.prenet.register_forward_hook(lambda *_: steps.append(1))
    try:
        stream = synth.stream("안녕하세요 반가워요.", seed=2)
        first = next(stream)
        at_first = len(steps)
        rest = list(stream)
    finally:
        hook.remove()
    context = synth._context_frames + 4  # the vocoder's and the tiny postnet's (2 convolutions of 5)
    assert first.size == HEAD_FRAMES * HOP
    assert at_first == HEAD_FRAMES + context < len(steps) / 3  # not the whole sentence's steps
    assert len(rest) >= 3  # then spans as the decoder goes on, growing


def test_streamed_audio_equals_the_non_streamed_audio(synth, monkeypatch):
    # The same noise on both paths: no retry (a retry draws other noise) for this comparison.
    monkeypatch.setattr(synthesizer_module, "ALIGNMENT_RETRIES", 0)
    text = "안녕하세요 반가워요. 오늘은 날씨가 좋네요."
    options = {"seed": 4, "sentence_silence_s": 0.1}
    chunks = list(synth.stream(text, **options))
    whole = synth.synthesize(text, **options)
    assert len(chunks) > 3 and chunks[0].size == HEAD_FRAMES * HOP
    np.testing.assert_allclose(np.concatenate(chunks), whole, atol=1e-4)
    alone = synth.synthesize("안녕하세요 반가워요.", seed=4)  # the first sentence, unbatched
    np.testing.assert_allclose(np.concatenate(chunks)[: alone.size], alone, atol=1e-5)


def test_alignment_outcome_is_on_the_stream_and_only_later_sentences_are_retried(tmp_path, monkeypatch):
    voice = tacotron2_voice(tmp_path, max_decoder_steps=60)
    synth = Synthesizer(voice, use_onnx=False)
    with torch.no_grad():  # the stop gate never fires: every sentence hits max_decoder_steps
        synth._acoustic.model.decoder.gate_layer.linear_layer.bias.fill_(-50.0)
    calls = []
    original = Tacotron2Acoustic.infer
    monkeypatch.setattr(Tacotron2Acoustic, "infer",
                        lambda self, *args: calls.append(1) or original(self, *args))
    stream = synth.stream("안녕하세요. 반가워요.", seed=1)
    assert isinstance(stream, SynthesisStream)
    audio = np.concatenate(list(stream))
    assert audio.size > 0  # the audio still comes, flagged
    assert [failure.index for failure in stream.alignment_failures] == [0, 1]
    assert stream.alignment_summary().startswith("failed; sentence 1") and "hit max_decoder_steps" in \
        stream.alignment_summary()
    assert len(calls) == 2  # sentence 1 streamed (no infer, no retry); sentence 2 made whole and retried once


def test_glow_tts_streams_a_head_then_the_rest_and_a_model_without_pieces_as_before(voice_dir, monkeypatch):
    # Glow-TTS: a head piece decoded first (local flows), the rest, then one chunk per sentence.
    synth = Synthesizer(voice_dir, use_onnx=False)
    text, options = "안녕하세요 반가워요. 오늘은 날씨가 좋네요.", {"seed": 3, "sentence_silence_s": 0.1}
    asked = []
    original = type(synth._acoustic).stream
    monkeypatch.setattr(type(synth._acoustic), "stream",
                        lambda self, *args, **kw: asked.append(kw.get("first_frames")) or original(self, *args, **kw))
    stream = synth.stream(text, **options)
    chunks = list(stream)
    assert asked == [HEAD_FRAMES + synth._context_frames]  # the first sentence only
    assert len(chunks) == 3 and chunks[0].size == HEAD_FRAMES * HOP and stream.alignment_ok
    whole = synth.synthesize(text, **options)
    np.testing.assert_allclose(np.concatenate(chunks), whole, atol=1e-4)
    # Through the interface's default (one piece from infer): the same chunks.
    monkeypatch.setattr(synthesizer_module, "_streams_mel", lambda acoustic: False)
    again = list(synth.stream(text, **options))
    assert len(again) == 3
    np.testing.assert_allclose(np.concatenate(again), np.concatenate(chunks), atol=1e-5)
