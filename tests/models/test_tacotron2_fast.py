"""Tacotron2 inference speed paths: the fp32 fast decoder step (context terms from per-sentence
products) equals the plain step, the prenet masks made once per draw equal the per-step ones, and
the int8 adapter quantises the two LSTM cells only and stays close to fp32."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.ao.nn import quantized as quantized_nn

from moksori.models.interfaces import Controls
from moksori.models.tacotron2 import (
    Decoder,
    DecoderState,
    Tacotron2,
    Tacotron2Acoustic,
    Tacotron2Config,
    _NoiseColumns,
    prenet_mask_from_noise,
)
from moksori.synthesis.inference import sentence_noise
from moksori.synthesis.precision import INT8, precision_modules, supports, with_precision

N_SYMBOLS = 20
IDS, LENGTHS = torch.tensor([[3, 4, 5, 6, 7, 8, 9, 10, 11]]), torch.tensor([9])


def noise(row: int, frames: int, channels: int):
    return sentence_noise(3, row, frames, channels)


def tiny(**overrides) -> Tacotron2:
    torch.manual_seed(0)
    return Tacotron2(Tacotron2Config.tiny(N_SYMBOLS, **overrides)).eval()


def random_state(decoder: Decoder, memory: torch.Tensor, generator: torch.Generator) -> DecoderState:
    """A state as decoding leaves it: the context is the previous weights times the memory."""
    template = decoder.initial_state(memory)
    weights = torch.softmax(torch.randn(memory.shape[:2], generator=generator), dim=1)
    values = [torch.randn(t.shape, generator=generator) for t in template]
    values[4], values[5] = weights, weights + torch.rand(memory.shape[:2], generator=generator)
    values[6] = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
    return DecoderState(*values)


def test_fast_step_equals_the_plain_step():
    model = tiny()
    decoder, g = model.decoder, torch.Generator().manual_seed(1)
    memory = torch.randn(2, 9, decoder.memory_dim, generator=g)
    processed = decoder.attention_layer.memory_layer(memory)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[1, 6:] = True  # the second row is padded
    state, prenet_out = random_state(decoder, memory, g), torch.randn(2, 32, generator=g)
    with torch.no_grad():
        fast = decoder.fast_step_weights(memory)
        assert fast is not None
        mel_a, gate_a, state_a = decoder.step(prenet_out, state, memory, processed, mask)
        mel_b, gate_b, state_b = decoder.fast_step(prenet_out, state, memory, processed, mask, fast)
    assert torch.allclose(mel_a, mel_b, atol=1e-6) and torch.allclose(gate_a, gate_b, atol=1e-6)
    for a, b in zip(state_a, state_b):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("overrides", [{}, {"n_frames_per_step": 2, "benchmark_frames_per_token": 6.0}])
def test_fast_inference_equals_the_plain_loop(monkeypatch, overrides):
    acoustic = Tacotron2Acoustic(tiny(max_decoder_steps=60, **overrides))
    fast = acoustic.infer(IDS, LENGTHS, Controls(), noise)
    monkeypatch.setattr(Decoder, "fast_step_weights", lambda self, memory: None)
    plain = acoustic.infer(IDS, LENGTHS, Controls(), noise)
    assert torch.equal(fast.lengths, plain.lengths)
    assert torch.allclose(fast.mel, plain.mel, atol=1e-5)
    assert torch.allclose(fast.alignment, plain.alignment, atol=1e-6)


def test_fast_path_is_inference_only_fp32_and_short_memory_only():
    model = tiny()
    decoder = model.decoder
    short, long = torch.zeros(1, 9, decoder.memory_dim), torch.zeros(1, decoder.memory_dim, decoder.memory_dim)
    assert decoder.fast_step_weights(short) is not None
    assert decoder.fast_step_weights(long) is None  # its products would be larger than the weights
    decoder.train()
    assert decoder.fast_step_weights(short) is None  # training: dropout and autograd through step()
    decoder.eval()
    quantised = with_precision(Tacotron2Acoustic(model), INT8)
    assert quantised.model.decoder.fast_step_weights(short) is None
    assert decoder.fast_step_weights(short) is not None  # the fp32 voice is untouched


def test_prenet_masks_made_once_per_draw_equal_the_per_step_masks():
    channels, limit = 12, 200
    columns = _NoiseColumns(noise, 2, channels, 0.5, limit)
    for t in (0, 1, 63, 64, 65, 130, 199):  # across the draws (64 columns, then doubling)
        expected = torch.stack([prenet_mask_from_noise(torch.from_numpy(noise(row, limit, channels)[:, t]), 0.5)
                                for row in range(2)])
        assert torch.equal(columns(t, 2), expected), t
        assert torch.equal(columns(t, 1), expected[:1])


def test_int8_quantises_the_two_lstm_cells_and_stays_close_to_fp32():
    acoustic = Tacotron2Acoustic(tiny(n_frames_per_step=2, benchmark_frames_per_token=5.0))
    assert precision_modules(acoustic) == ("model.decoder.attention_rnn", "model.decoder.decoder_rnn")
    assert supports(acoustic, INT8)
    reduced = with_precision(acoustic, INT8)
    decoder = reduced.model.decoder
    for name in ("attention_rnn", "decoder_rnn"):
        assert isinstance(getattr(decoder, name), quantized_nn.dynamic.LSTMCell)
        assert type(getattr(acoustic.model.decoder, name)) is nn.LSTMCell  # the fp32 adapter is unchanged
    # the stop gate, attention, prenet and projection stay fp32 and are shared, not copied
    assert decoder.gate_layer is acoustic.model.decoder.gate_layer
    assert decoder.attention_layer is acoustic.model.decoder.attention_layer
    assert reduced.model.encoder is acoustic.model.encoder
    fp32 = acoustic.infer(IDS, LENGTHS, Controls(), noise)
    int8 = reduced.infer(IDS, LENGTHS, Controls(), noise)
    assert torch.equal(fp32.lengths, int8.lengths)
    difference = (fp32.mel - int8.mel).abs()
    # Stated tolerance: every mel value within 5% of the fp32 mel's standard deviation (measured
    # here: 1%), and changed at all (the cells really run in int8).
    assert 0 < float(difference.max()) < 0.05 * float(fp32.mel.std())
