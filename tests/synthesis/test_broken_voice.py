"""A voice whose weights are broken (NaN from a diverged run) gets a clear error, not noise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from moksori.checkpoint import read_state_dict, save_state_dict
from moksori.synthesis import Synthesizer
from moksori.synthesis.bundle import sha256_of
from moksori.synthesis.synthesizer import BrokenVoiceOutput


def poisoned_copy(voice_dir: Path, out: Path, role: str) -> Path:
    """A copy of ``voice_dir`` whose ``role`` weights hold NaNs (voice.json's sha256 updated)."""
    shutil.copytree(voice_dir, out)
    weights = out / f"{role}.pt"
    state = read_state_dict(weights)
    name = next(key for key, value in state.items() if value.is_floating_point() and value.numel() > 1)
    state[name] = torch.full_like(state[name], float("nan"))
    save_state_dict(state, weights)
    config = json.loads((out / "voice.json").read_text())
    config["files"][f"{role}.pt"]["sha256"] = sha256_of(weights)
    config["files"][f"{role}.pt"]["bytes"] = weights.stat().st_size
    (out / "voice.json").write_text(json.dumps(config))
    return out


@pytest.mark.parametrize(("role", "stage"), [("acoustic", "mel"), ("vocoder", "audio")])
def test_non_finite_output_names_the_broken_voice(voice_dir: Path, tmp_path: Path, role: str, stage: str) -> None:
    broken = Synthesizer(poisoned_copy(voice_dir, tmp_path / "broken", role), use_onnx=False)
    with pytest.raises(BrokenVoiceOutput, match=rf"non-finite {stage} values .*diverged"):
        broken.synthesize("안녕하세요.", seed=1)
    with pytest.raises(BrokenVoiceOutput):
        list(broken.stream("안녕하세요.", seed=1))


def test_server_answers_500_with_the_reason_and_keeps_serving(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from moksori.bench.serve import build_tiny_voice
    from moksori.server import ServerSettings, create_app

    root = tmp_path / "voices"
    build_tiny_voice(root / "tiny", name="tiny")
    poisoned_copy(root / "tiny", root / "broken", "vocoder")
    config = json.loads((root / "broken" / "voice.json").read_text())
    config["name"] = "broken"
    (root / "broken" / "voice.json").write_text(json.dumps(config))
    with TestClient(create_app(ServerSettings(voices_dir=root, db_url=None, require_api_keys=False))) as client:
        response = client.get("/infer", params={"text": "안녕", "voice": "broken"})
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["code"] == "voice_output_invalid" and "'broken'" in error["message"]
        assert client.get("/infer", params={"text": "안녕", "voice": "tiny"}).status_code == 200
