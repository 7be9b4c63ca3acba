"""StepContext's mixed precision: bf16 autocast on a CPU, fp16 only on CUDA."""

import logging

import pytest
import torch
from torch import nn

from moksori.training import loop
from moksori.training.loop import StepContext


def _context(amp: str) -> StepContext:
    layer = nn.Linear(4, 4)
    return StepContext(torch.device("cpu"), amp, 1.0, {"model": torch.optim.SGD(layer.parameters(), lr=0.1)}, False)


def test_bf16_autocasts_on_a_cpu():
    ctx = _context("bf16")
    assert ctx.amp == "bf16" and ctx.scaler is None
    with ctx.autocast():
        out = nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16


@pytest.mark.parametrize("amp", ["off", "fp16"])
def test_fp16_and_off_train_in_float32_on_a_cpu(amp):
    ctx = _context(amp)
    assert ctx.amp == "off"
    with ctx.autocast():
        out = nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.float32


@pytest.mark.parametrize(("amp", "native", "expected"), [
    ("fp16", True, "amp=fp16 needs CUDA"),
    ("bf16", False, "is emulated and slower than float32"),
    ("bf16", True, None),
    ("off", False, None),
])
def test_amp_warnings_name_the_problem(monkeypatch, caplog, amp, native, expected):
    monkeypatch.setattr(loop, "native_bf16", lambda: native)
    with caplog.at_level(logging.WARNING):
        loop._warn_about_amp(amp, torch.device("cpu"))
    if expected is None:
        assert not caplog.records
    else:
        assert expected in caplog.text


@pytest.mark.parametrize("by_value", [False, True])
def test_clipping_by_global_norm_or_by_element(by_value):
    weight = nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    ctx = StepContext(torch.device("cpu"), "off", 5.0, {"model": optimizer}, False, clip_by_value=by_value)
    norm = ctx.optimize("model", (weight * torch.tensor([3.0, 4.0, 12.0])).sum(), [weight])
    assert norm == pytest.approx(13.0)  # logged before clipping either way
    expected = [-3.0, -4.0, -5.0] if by_value else [-15 / 13, -20 / 13, -60 / 13]
    assert weight.detach().tolist() == pytest.approx(expected)


def test_glow_tts_clamps_gradient_elements_as_its_reference_and_others_clip_the_norm():
    from moksori.training.tasks.gan_vocoder import HiFiGANTask
    from moksori.training.tasks.glow_tts import GlowTTSTask
    from moksori.training.tasks.tacotron2 import Tacotron2Task

    # jaywalnut310/glow-tts train.py: commons.clip_grad_value_(parameters, 5). A norm clip at 5
    # rescaled 112 of the first 200 steps of the small model on the sample set (norms 8-17; the
    # largest element 2.1, which the reference's clamp never touches); loss over steps 175-200:
    # 0.53 (norm) against 0.44 (element), 0.64 against 0.59 with another seed.
    assert GlowTTSTask.grad_clip_by_value and GlowTTSTask.default_grad_clip == 5.0
    assert not Tacotron2Task.grad_clip_by_value and not HiFiGANTask.grad_clip_by_value
