import math

import pytest

from moksori.bench.train import main, run_train_benchmark


def test_vocos_steps_use_the_recipes_spectral_losses():
    result = run_train_benchmark("vocos", "tiny", batch_size=2, steps=2, warmup=1, frames=40, device="cpu", threads=1)
    assert (result["model"], result["preset"], result["device"]) == ("vocos", "tiny", "cpu")
    assert result["adversarial"] is False and result["stft_loss"] is True
    assert 0 < result["parameters"] < 1e5  # the generator only
    assert len(result["step_times"]) == 2 and all(math.isfinite(t) and t > 0 for t in result["step_times"])


def test_vocoder_loss_defaults_and_overrides():
    hifigan = run_train_benchmark("hifigan", "tiny", batch_size=1, steps=1, warmup=0, frames=40, device="cpu",
                                  threads=1, adversarial=False)
    assert hifigan["adversarial"] is False and hifigan["stft_loss"] is False  # as before: mel loss only
    glow = run_train_benchmark("glow_tts", "tiny", batch_size=2, steps=1, warmup=0, frames=40, tokens=10,
                               device="cpu", threads=1)
    assert glow["adversarial"] is False and glow["stft_loss"] is False and glow["seconds_per_step"] > 0
    with pytest.raises(ValueError, match="unknown model 'no_such_model'; choose from .*wavenet"):
        run_train_benchmark("no_such_model")


def test_main_prints_the_vocos_losses(capsys):
    argv = ["--model", "vocos", "--preset", "tiny", "--batch-size", "1", "--steps", "1", "--warmup", "0",
            "--frames", "40", "--device", "cpu", "--threads", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("vocos (tiny, 0.06M parameters, losses mel + MR-STFT) batch 1 on cpu"), out
    assert main(argv + ["--no-stft-loss"]) == 0
    assert "losses mel)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--model", "vocos", "--adversarial", "--no-adversarial"])


def test_waveglow_trains_by_likelihood_without_gan_options(capsys):
    result = run_train_benchmark("waveglow", "tiny", batch_size=1, steps=1, warmup=0, frames=20, device="cpu", threads=1)
    assert result["adversarial"] is False and result["stft_loss"] is False
    assert 3e6 < result["parameters"] < 4e6 and math.isfinite(result["seconds_per_step"])
    assert main(["--model", "waveglow", "--preset", "tiny", "--batch-size", "1", "--steps", "1", "--warmup", "0",
                 "--frames", "20", "--device", "cpu", "--threads", "1"]) == 0
    assert capsys.readouterr().out.startswith("waveglow (tiny, 3.46M parameters) batch 1 on cpu")


def test_wavenet_steps_by_likelihood():
    result = run_train_benchmark("wavenet", "tiny", batch_size=1, steps=1, warmup=0, frames=10, device="cpu", threads=1)
    assert result["model"] == "wavenet" and result["adversarial"] is False
    assert result["parameters"] > 0 and math.isfinite(result["seconds_per_step"]) and result["seconds_per_step"] > 0
