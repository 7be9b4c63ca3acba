"""The documented path, through the command line: sample dataset → preprocess → train → bundle → say."""

from pathlib import Path

import numpy as np
import soundfile

from moksori.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "moksori" / "recipes"


def _train(recipe: str, data: Path, run_dir: Path, steps: int, *extra: str) -> None:
    args = ["train", str(CONFIGS / recipe), "--data-dir", str(data), "--run-dir", str(run_dir), *extra]
    assert main([*args, "--max-steps", str(steps)]) == 0


def test_sample_dataset_to_spoken_wav(tmp_path, capsys):
    dataset, features = tmp_path / "dataset", tmp_path / "features"
    assert main(["sample-dataset", "--lang", "ko", "--n", "8", "--out", str(dataset)]) == 0
    assert main(["preprocess", str(dataset), "--out", str(features)]) == 0
    _train("tiny_glowtts.yaml", features, tmp_path / "acoustic", steps=120)
    # The vocoder learns from the Glow-TTS's ground-truth-aligned mels, as HiFi-GAN's authors advise.
    acoustic_ckpt = str(tmp_path / "acoustic" / "latest.pt")
    _train("tiny_hifigan.yaml", features, tmp_path / "vocoder", 10, "--vocoder-finetune-from", acoustic_ckpt)
    assert any((tmp_path / "vocoder").rglob("*.npy")), "no aligned mels were cached"

    voice = tmp_path / "voice"
    bundle_args = ["bundle", str(tmp_path / "acoustic"), "--vocoder", str(tmp_path / "vocoder")]
    assert main([*bundle_args, "--out", str(voice), "--name", "e2e"]) == 0
    assert (voice / "voice.json").is_file()

    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    assert main(["say", "안녕하세요.", "--voice", str(voice), "-o", str(short), "--seed", "0"]) == 0
    sentence = "오늘은 2026년 11월 21일, 사과 3개에 4,500원이에요."
    assert main(["say", sentence, "--voice", str(voice), "-o", str(long), "--seed", "0"]) == 0
    assert "real-time factor" in capsys.readouterr().out

    info = soundfile.info(str(long))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    wave, _ = soundfile.read(str(long))
    assert np.sqrt(np.mean(wave**2)) > 1e-3, "the wav is silent"
    # espeak reads such a sentence in a few seconds; a model trained this briefly should land
    # in the same range and grow with the text.
    assert 1.0 < info.duration < 15.0
    assert info.duration > soundfile.info(str(short)).duration
