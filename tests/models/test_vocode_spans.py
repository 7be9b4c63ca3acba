"""Long mels are vocoded in spans with the generator's context (bounded memory), joining exactly."""

from __future__ import annotations

import pytest
import torch

from moksori.models import build_model
from moksori.models.hifigan import HiFiGANConfig
from moksori.models.layers import common
from moksori.models.vocos import VocosConfig


@pytest.mark.parametrize("family,config", [("hifigan", HiFiGANConfig.preset("tiny")), ("vocos", VocosConfig.preset("tiny"))])
def test_spans_join_exactly_and_stay_bounded(family: str, config: object, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    generator = build_model(family, config.to_dict()).eval()
    mel = torch.randn(80, 200)
    with torch.inference_mode():
        whole = generator(mel[None]).squeeze(1)[0]
        monkeypatch.setattr(common, "VOCODE_CHUNK_FRAMES", 32)
        seen: list[int] = []
        handle = generator.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[-1]))
        spans = generator.infer(mel)
        handle.remove()
    context = generator.context_frames
    assert len(seen) == 7 and max(seen) <= 32 + 2 * context  # 200 frames in spans of 32
    assert spans.shape == whole.shape
    torch.testing.assert_close(spans, whole, atol=1e-5, rtol=0)
