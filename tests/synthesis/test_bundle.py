from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from moksori.audio import MelConfig
from moksori.models import build_model
from moksori.synthesis import VoiceError, load_voice, make_bundle, read_voice_json
from moksori.synthesis.bundle import prepare_for_inference


def copy_voice(voice_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(voice_dir, tmp_path / "voice"))


def edit_json(voice_dir: Path, change) -> None:
    path = voice_dir / "voice.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_round_trip_keeps_weights_and_fields(voice_dir: Path, checkpoints: dict[str, Path]) -> None:
    data = read_voice_json(voice_dir)
    for key in ("format", "name", "language", "description", "created", "text_frontend", "audio",
                "acoustic", "vocoder", "speakers", "training", "licence", "files"):
        assert key in data, key
    assert data["name"] == "tiny" and data["language"] == "ko" and data["description"] == "test voice"
    assert data["text_frontend"]["symbol_table"]["version"] == "ko-jamo-1"
    assert data["vocoder"]["model_name"] == "hifigan"
    assert data["training"]["acoustic"]["step"] == 1000 and data["training"]["vocoder"]["step"] == 2000
    assert set(data["files"]) == {"acoustic.pt", "vocoder.pt"}
    assert all(len(entry["sha256"]) == 64 for entry in data["files"].values())

    voice = load_voice(voice_dir)
    assert voice.sample_rate == 22050 and voice.mel_config == MelConfig()
    assert not voice.acoustic.training and not voice.vocoder.training
    # Same weights as the checkpoint: an identically prepared model gives identical output.
    for role, name in (("acoustic", "glow_tts"), ("vocoder", "hifigan")):
        checkpoint = torch.load(checkpoints[role], map_location="cpu", weights_only=False)
        reference = build_model(name, checkpoint["model_config"])
        reference.load_state_dict(checkpoint["model"])
        prepare_for_inference(reference)
        assert reference.state_dict().keys() == getattr(voice, role).state_dict().keys()
        for key, value in reference.state_dict().items():
            assert torch.equal(value, getattr(voice, role).state_dict()[key]), key


def test_weight_files_hold_only_inference_weights(voice_dir: Path, checkpoints: dict[str, Path]) -> None:
    for role in ("acoustic", "vocoder"):
        size = (voice_dir / f"{role}.pt").stat().st_size
        params = sum(v.numel() * 4 for v in torch.load(checkpoints[role], weights_only=False)["model"].values())
        assert size < params * 1.1 + 50_000
        assert size < checkpoints[role].stat().st_size * 0.6
        assert isinstance(torch.load(voice_dir / f"{role}.pt", weights_only=True), dict)


def test_run_directory_and_griffin_lim_voice(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    out = make_bundle(checkpoints["acoustic"].parent, tmp_path / "gl", name="Griffin", extra={"hours": 1.5})
    data = read_voice_json(out)
    assert data["vocoder"] == {"name": "griffin_lim"}
    assert data["name"] == "Griffin" and data["training"]["hours"] == 1.5
    assert data["training"]["acoustic"]["checkpoint"] == "latest.pt"
    assert load_voice(out).vocoder is None


def test_refuses_to_overwrite_a_different_voice(tmp_path: Path, voice_dir: Path, checkpoints: dict[str, Path],
                                                frontend, helpers) -> None:
    target = copy_voice(voice_dir, tmp_path)
    # The same voice again is fine (idempotent).
    make_bundle(checkpoints["acoustic"], target, vocoder_ckpt=checkpoints["vocoder"])
    other = helpers.write_checkpoint(tmp_path / "other.pt", helpers.tiny_glow_tts(frontend, seed=7), "glow_tts", frontend=frontend)
    before = (target / "acoustic.pt").read_bytes()
    with pytest.raises(VoiceError, match="different voice"):
        make_bundle(other, target, vocoder_ckpt=checkpoints["vocoder"])
    assert (target / "acoustic.pt").read_bytes() == before
    make_bundle(other, target, vocoder_ckpt=checkpoints["vocoder"], overwrite=True)
    assert (target / "acoustic.pt").read_bytes() != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left

    stranger = tmp_path / "not_a_voice"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(VoiceError, match="no voice.json"):
        make_bundle(other, stranger)


def test_bad_checkpoints(tmp_path: Path, checkpoints: dict[str, Path], helpers) -> None:
    with pytest.raises(VoiceError, match="latest.pt"):
        make_bundle(tmp_path, tmp_path / "v")
    with pytest.raises(VoiceError, match="model_name"):
        make_bundle(checkpoints["vocoder"], tmp_path / "v")
    mel_22k = helpers.write_checkpoint(tmp_path / "h.pt", helpers.tiny_hifigan(), "hifigan", mel_config=MelConfig(fmax=11025.0))
    with pytest.raises(VoiceError, match="disagree.*fmax"):
        make_bundle(checkpoints["acoustic"], tmp_path / "v", vocoder_ckpt=mel_22k)
    assert not (tmp_path / "v").exists()


def test_missing_folder_and_voice_json(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="voice folder not found"):
        load_voice(tmp_path / "nowhere")
    with pytest.raises(VoiceError, match="voice.json: missing"):
        load_voice(tmp_path)


def test_bad_json_and_format(tmp_path: Path, voice_dir: Path) -> None:
    voice = copy_voice(voice_dir, tmp_path)
    (voice / "voice.json").write_text("{not json")
    with pytest.raises(VoiceError, match=r"voice.json: not valid JSON"):
        load_voice(voice)
    shutil.copy(voice_dir / "voice.json", voice / "voice.json")
    edit_json(voice, lambda d: d.update(format="moksori-voice-99"))
    with pytest.raises(VoiceError, match="field 'format'.*moksori-voice-99"):
        load_voice(voice)
    shutil.copy(voice_dir / "voice.json", voice / "voice.json")
    edit_json(voice, lambda d: d.pop("acoustic"))
    with pytest.raises(VoiceError, match="field 'acoustic' is missing"):
        load_voice(voice)


def test_missing_and_corrupted_weights(tmp_path: Path, voice_dir: Path) -> None:
    voice = copy_voice(voice_dir, tmp_path)
    (voice / "vocoder.pt").unlink()
    with pytest.raises(VoiceError, match=r"vocoder.pt: listed in voice.json 'files' but missing"):
        load_voice(voice)
    shutil.copy(voice_dir / "vocoder.pt", voice / "vocoder.pt")
    data = bytearray((voice / "acoustic.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (voice / "acoustic.pt").write_bytes(bytes(data))
    with pytest.raises(VoiceError, match=r"acoustic.pt: sha256 .* does not match voice.json files.acoustic.pt.sha256"):
        load_voice(voice)


def test_mel_configs_disagree_in_voice_json(tmp_path: Path, voice_dir: Path) -> None:
    voice = copy_voice(voice_dir, tmp_path)
    edit_json(voice, lambda d: d["vocoder"]["mel"].update(n_fft=2048, win_length=2048))
    with pytest.raises(VoiceError, match=r"voice.json vocoder.mel.*disagree.*n_fft"):
        load_voice(voice)


def test_vocoder_framing_must_match_mel(tmp_path: Path, voice_dir: Path) -> None:
    voice = copy_voice(voice_dir, tmp_path)
    edit_json(voice, lambda d: d["vocoder"]["model_config"].update(sampling_rate=16000))
    with pytest.raises(VoiceError, match="vocoder.model_config.sampling_rate"):
        load_voice(voice)


def test_synthesis_does_not_import_training() -> None:
    code = "import sys, moksori.synthesis; assert not any(m.startswith('moksori.training') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def _state_dicts_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_vocoder_reused_from_a_voice_folder(tmp_path: Path, voice_dir: Path, frontend, helpers) -> None:
    acoustic = helpers.tiny_glow_tts(frontend, seed=7)
    other = helpers.write_checkpoint(tmp_path / "other.pt", acoustic, "glow_tts", frontend=frontend)
    out = make_bundle(other, tmp_path / "reused", vocoder_ckpt=voice_dir)
    source, data = read_voice_json(voice_dir), read_voice_json(out)
    assert data["vocoder"] == source["vocoder"]  # model name, config, mel and file
    summary = data["training"]["vocoder"]
    assert summary == {**source["training"]["vocoder"], "checkpoint": "vocoder.pt"} and summary["step"] == 2000
    assert _state_dicts_equal(torch.load(out / "vocoder.pt", weights_only=True),
                              torch.load(voice_dir / "vocoder.pt", weights_only=True))
    assert not _state_dicts_equal(torch.load(out / "acoustic.pt", weights_only=True),
                                  torch.load(voice_dir / "acoustic.pt", weights_only=True))
    assert _state_dicts_equal(load_voice(out).vocoder.state_dict(), load_voice(voice_dir).vocoder.state_dict())


def test_vocos_voice_and_its_vocoder_reused_through_the_cli(tmp_path: Path, checkpoints: dict[str, Path],
                                                             helpers, capsys) -> None:
    from moksori.cli import main
    from moksori.models.vocos import VocosConfig

    torch.manual_seed(3)
    vocos = build_model("vocos", VocosConfig.preset("tiny").to_dict())
    ckpt = helpers.write_checkpoint(tmp_path / "vocos.pt", vocos, "vocos", step=1234)
    first = make_bundle(checkpoints["acoustic"], tmp_path / "first", vocoder_ckpt=ckpt)
    data = read_voice_json(first)
    assert data["vocoder"]["model_name"] == "vocos" and data["vocoder"]["model_config"] == vocos.config.to_dict()
    assert data["training"]["vocoder"]["step"] == 1234
    loaded = load_voice(first).vocoder
    assert loaded.__class__.__name__ == "Vocos" and not loaded.training
    assert _state_dicts_equal(loaded.state_dict(), vocos.state_dict())

    argv = ["bundle", str(checkpoints["acoustic"]), "--vocoder", str(first), "--out", str(tmp_path / "second")]
    assert main(argv) == 0
    assert "voice bundle written" in capsys.readouterr().out
    second = load_voice(tmp_path / "second")
    assert second.vocoder_name == "vocos"
    assert _state_dicts_equal(second.vocoder.state_dict(), vocos.state_dict())


def test_voice_folder_without_a_usable_vocoder_is_refused(tmp_path: Path, voice_dir: Path,
                                                         checkpoints: dict[str, Path], capsys) -> None:
    from moksori.cli import main

    griffin = make_bundle(checkpoints["acoustic"], tmp_path / "gl")
    with pytest.raises(VoiceError, match=r"gl: the voice uses Griffin-Lim; it has no vocoder to reuse"):
        make_bundle(checkpoints["acoustic"], tmp_path / "v", vocoder_ckpt=griffin)
    assert main(["bundle", str(checkpoints["acoustic"]), "--vocoder", str(griffin), "--out", str(tmp_path / "v")]) == 2
    assert "Griffin-Lim" in capsys.readouterr().err
    damaged = copy_voice(voice_dir, tmp_path)
    data = bytearray((damaged / "vocoder.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (damaged / "vocoder.pt").write_bytes(bytes(data))
    with pytest.raises(VoiceError, match=r"vocoder.pt: sha256 .* does not match"):
        make_bundle(checkpoints["acoustic"], tmp_path / "v", vocoder_ckpt=damaged)
    assert not (tmp_path / "v").exists()


def test_rebundling_without_the_vocoder_does_not_drop_the_voices_vocoder(tmp_path: Path, voice_dir: Path,
                                                                         checkpoints: dict[str, Path]) -> None:
    """The same acoustic model with no --vocoder is a different (Griffin-Lim) voice: it replaced the
    folder, deleting its trained vocoder, without --overwrite."""
    target = copy_voice(voice_dir, tmp_path)
    vocoder = (target / "vocoder.pt").read_bytes()
    with pytest.raises(VoiceError, match="different voice"):
        make_bundle(checkpoints["acoustic"], target)
    assert (target / "vocoder.pt").read_bytes() == vocoder
