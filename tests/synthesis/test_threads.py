"""ONNX Runtime threads sleep unless MOKSORI_THREAD_SPIN=1; PyTorch's only with MOKSORI_THREAD_SPIN=0."""

from __future__ import annotations

from pathlib import Path

import pytest

from moksori.synthesis.onnx_runtime import make_session
from moksori.threads import SPIN_ENV, prefer_passive_threads, spinning


def test_pytorch_threads_sleep_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("OMP_WAIT_POLICY", "recorded")  # so that teardown restores the variable as it was
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.delenv(SPIN_ENV, raising=False)
    assert not spinning()
    assert not prefer_passive_threads() and "OMP_WAIT_POLICY" not in os.environ  # default: PyTorch spins
    monkeypatch.setenv(SPIN_ENV, "0")
    prefer_passive_threads()  # torch is imported in this test process, so it reports False

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert not prefer_passive_threads() and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stays
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv(SPIN_ENV, "1")
    assert spinning() and not prefer_passive_threads() and "OMP_WAIT_POLICY" not in os.environ


@pytest.mark.parametrize("spin,expected", [(None, "0"), ("1", "1")])
def test_onnx_sessions_follow_the_setting(onnx_voice_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                          spin: str | None, expected: str) -> None:
    if spin is None:
        monkeypatch.delenv(SPIN_ENV, raising=False)
    else:
        monkeypatch.setenv(SPIN_ENV, spin)
    options = make_session(onnx_voice_dir / "vocoder.onnx", 1).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == expected
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
