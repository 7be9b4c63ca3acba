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
