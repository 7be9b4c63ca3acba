"""Tacotron2 streaming within a sentence: the decoder loop yields mel pieces whose concatenation
is the whole-sentence ``infer`` mel (the postnet run over its receptive field around each piece)."""

from __future__ import annotations

import pytest
import torch

from moksori.models.interfaces import AcousticModel, Controls, MelPiece
from moksori.models.tacotron2 import (
    STREAM_CHUNK_STEPS,
    Postnet,
    Tacotron2,
    Tacotron2Acoustic,
    Tacotron2Config,
    postnet_context,
)
from moksori.synthesis.inference import sentence_noise

N_SYMBOLS = 20
IDS, LENGTHS = torch.tensor([[3, 4, 5, 6, 7, 8, 9]]), torch.tensor([7])


def noise(row: int, frames: int, channels: int):
    return sentence_noise(5, row, frames, channels)


def adapter(**overrides) -> Tacotron2Acoustic:
    torch.manual_seed(0)
    model = Tacotron2(Tacotron2Config.tiny(N_SYMBOLS, **overrides)).eval()
    with torch.no_grad():  # a trained-looking postnet: BatchNorm statistics that are not the identity
        for conv in model.postnet.convolutions:
            conv[1].running_mean.normal_(0.0, 0.1)
            conv[1].running_var.uniform_(0.5, 1.5)
    return Tacotron2Acoustic(model)


def test_postnet_receptive_field_is_what_postnet_context_says():
    # NVIDIA's postnet: 5 convolutions of width 5, so an output frame sees 10 decoder frames each side.
    config = Tacotron2Config.base(N_SYMBOLS)
    assert postnet_context(config) == 10
    torch.manual_seed(0)
    postnet = Postnet(80, 16, config.postnet_kernel_size, config.postnet_n_convolutions).eval()
    x = torch.randn(1, 80, 61)
    bumped = x.clone()
    bumped[:, :, 30] += 1.0
    changed = (postnet(bumped) - postnet(x)).abs().amax(dim=1)[0] > 0
    assert changed.nonzero().flatten().tolist() == list(range(20, 41))


@pytest.mark.parametrize(
    "overrides",
    [
        {"postnet_n_convolutions": 5, "benchmark_frames_per_token": 7.0},  # stops mid-chunk (49 steps)
        {"n_frames_per_step": 2, "postnet_n_convolutions": 3, "benchmark_frames_per_token": 11.0},
        {"max_decoder_steps": 45},  # the gate never fires: hits the step limit
    ],
)
def test_stream_pieces_join_into_the_whole_sentence_mel(overrides):
    acoustic = adapter(**overrides)
    if "max_decoder_steps" in overrides:
        with torch.no_grad():
            acoustic.model.decoder.gate_layer.linear_layer.bias.fill_(-50.0)
    whole = acoustic.infer(IDS, LENGTHS, Controls(), noise)
    pieces = list(acoustic.stream(IDS, LENGTHS, Controls(), noise))
    assert all(isinstance(piece, MelPiece) for piece in pieces)
    assert len(pieces) >= 3 and [piece.last for piece in pieces] == [False] * (len(pieces) - 1) + [True]
    assert all(piece.report is None for piece in pieces[:-1])
    mel = torch.cat([piece.mel for piece in pieces], dim=1)
    frames = int(whole.lengths[0])
    assert mel.shape == (80, frames)
    assert torch.allclose(mel, whole.mel[0, :, :frames], atol=1e-5)
    # every piece but the last ends a whole chunk of decoder steps after the previous one
    r = acoustic.config.n_frames_per_step
    assert all(piece.mel.size(1) == STREAM_CHUNK_STEPS * r for piece in pieces[1:-1])
    assert same_report(pieces[-1].report, whole.reports[0])


def same_report(a, b) -> bool:
    return (a.ok, a.reasons, a.n_frames, a.last_position, a.max_backward_jump) == \
        (b.ok, b.reasons, b.n_frames, b.last_position, b.max_backward_jump) and a.diagonality == pytest.approx(b.diagonality)


def test_first_frames_asks_for_an_early_first_piece():
    acoustic = adapter(postnet_n_convolutions=5, benchmark_frames_per_token=7.0)
    pieces = list(acoustic.stream(IDS, LENGTHS, Controls(), noise, first_frames=4))
    assert pieces[0].mel.size(1) == 4  # ready after 4 + 10 (postnet context) decoder steps
    whole = acoustic.infer(IDS, LENGTHS, Controls(), noise)
    assert torch.allclose(torch.cat([p.mel for p in pieces], dim=1), whole.mel[0], atol=1e-5)


def test_the_report_names_a_failed_alignment_on_the_last_piece():
    acoustic = adapter(max_decoder_steps=30)
    with torch.no_grad():
        acoustic.model.decoder.attention_layer.v.linear_layer.weight.zero_()  # stuck attention
        acoustic.model.decoder.gate_layer.linear_layer.bias.fill_(-50.0)  # never stops
    last = list(acoustic.stream(IDS, LENGTHS, Controls(), noise))[-1]
    assert last.last and not last.report.ok and "hit max_decoder_steps" in last.report.reasons


def test_stream_takes_one_sentence_and_the_default_is_one_piece_from_infer():
    acoustic = adapter(benchmark_frames_per_token=3.0)
    with pytest.raises(ValueError, match="batch 1"):
        acoustic.stream(IDS.repeat(2, 1), LENGTHS.repeat(2), Controls(), noise)
    (piece,) = AcousticModel.stream(acoustic, IDS, LENGTHS, Controls(), noise)  # the interface's default
    whole = acoustic.infer(IDS, LENGTHS, Controls(), noise)
    assert piece.last and same_report(piece.report, whole.reports[0])
    assert torch.equal(piece.mel, whole.mel[0, :, : int(whole.lengths[0])])
