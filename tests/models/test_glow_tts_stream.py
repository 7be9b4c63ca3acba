"""Glow-TTS's head piece for the start of a stream: its flows are local, so a head decoded with
the flows' receptive field after it joins the rest into the whole-sentence mel."""

from __future__ import annotations

import math

import pytest
import torch

from moksori.models.glow_tts import GlowTTS, GlowTTSAcoustic, GlowTTSConfig
from moksori.models.interfaces import Controls
from moksori.synthesis.inference import sentence_noise

IDS = torch.tensor([[3, 9, 4, 12, 5, 7, 6, 11, 8, 10, 2, 13] * 3])
LENGTHS = torch.tensor([IDS.size(1)])


def acoustic(**overrides) -> GlowTTSAcoustic:
    torch.manual_seed(0)
    model = GlowTTS(GlowTTSConfig.tiny(20, **overrides)).eval()
    with torch.no_grad():  # untrained flows are the identity: give them weights, and 4 frames per token
        for module in model.decoder.modules():
            if hasattr(module, "end"):
                module.end.weight.normal_(0.0, 0.05)
        model.encoder.proj_w.proj.bias.fill_(math.log(4.0))
    return GlowTTSAcoustic(model)


def noise(row: int, frames: int, channels: int):
    return sentence_noise(7, row, frames, channels)


def test_decoder_context_is_the_flows_receptive_field():
    model = acoustic()
    context = model.decoder_context()
    assert context == 2 * (2 + 2) * 2  # 2 blocks of 2 WaveNet layers of kernel 5, squeezed by 2
    small = GlowTTSAcoustic(GlowTTS(GlowTTSConfig.small(20)))
    assert small.decoder_context() == 96  # the shipped voice's preset
    z = torch.randn(1, 80, 120)
    bumped = z.clone()
    bumped[:, :, 60] += 1.0
    with torch.no_grad():
        changed = (model._flows(bumped, None) - model._flows(z, None)).abs().amax(dim=1)[0] > 1e-7
    frames = changed.nonzero().flatten()
    assert int(frames.min()) >= 60 - context and int(frames.max()) <= 61 + context
    assert int(frames.max()) - 60 >= context - 2  # the reach is the whole context, not less


@pytest.mark.parametrize("first_frames", [16, 45])
def test_head_and_rest_join_into_the_whole_mel(first_frames):
    model = acoustic()
    controls = Controls(noise_scale=0.667)
    with torch.no_grad():
        whole = model.infer(IDS, LENGTHS, controls, noise)
        pieces = list(model.stream(IDS, LENGTHS, controls, noise, first_frames=first_frames))
    frames = int(whole.lengths[0])
    assert frames > first_frames + 2 * model.decoder_context()
    assert [piece.last for piece in pieces] == [False, True]
    assert pieces[0].mel.size(1) == first_frames + first_frames % 2  # whole squeezed frames
    mel = torch.cat([piece.mel for piece in pieces], dim=1)
    assert mel.shape == (80, frames)
    torch.testing.assert_close(mel, whole.mel[0, :, :frames], atol=1e-5, rtol=0)


def test_without_a_head_or_for_a_short_sentence_one_piece():
    model = acoustic()
    with torch.no_grad():
        whole = model.infer(IDS[:, :3], torch.tensor([3]), Controls(), noise)
        (alone,) = model.stream(IDS[:, :3], torch.tensor([3]), Controls(), noise, first_frames=16)
        (plain,) = model.stream(IDS, LENGTHS, Controls(), noise)
    torch.testing.assert_close(alone.mel, whole.mel[0], atol=1e-6, rtol=0)
    assert alone.last and plain.last and plain.mel.size(1) > 100
