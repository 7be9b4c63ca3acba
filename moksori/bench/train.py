"""Training-step benchmark: ``moksori bench train``.

Times full training steps (forward, loss, backward, clipping, optimizer step; for HiFi-GAN the
discriminator and generator updates; for Vocos, as its recipes train it, mel + multi-resolution
STFT losses without discriminators) of a model through the same task hooks and step helper the
training loop uses, on synthetic batches of a chosen size, so no dataset is needed.
Reports the median seconds per step after warm-up steps.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from moksori.audio import MelConfig, mel_spectrogram
from moksori.models import registry
from moksori.text import TextFrontend
from moksori.training.loop import StepContext
from moksori.training.recipe import DataRecipe, Recipe, TrainRecipe
from moksori.training.tasks import DatasetInfo, build_task

__all__ = ["main", "run_train_benchmark"]


def _synthetic_batch(model: str, batch_size: int, frames: int, tokens: int, n_vocab: int,
                     generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    mel_config = MelConfig()
    # Lengths spread over 70-100 % of the maximum, as a length-bucketed batch would be.
    scale = torch.linspace(0.7, 1.0, batch_size)
    frame_lengths = (scale * frames).long()
    token_lengths = (scale * tokens).long().clamp_min(1)
    batch: dict[str, Any] = {
        "id": [f"synthetic{i}" for i in range(batch_size)],
        "ids": torch.randint(1, n_vocab, (batch_size, tokens), generator=generator),
        "ids_lengths": token_lengths,
        "mel_lengths": frame_lengths,
        "speaker": torch.zeros(batch_size, dtype=torch.long),
    }
    if registry.get(model).role == registry.VOCODER:  # trained on (mel, wave) segments
        wave = 0.1 * torch.randn(batch_size, frames * mel_config.hop_length, generator=generator)
        batch["wave"] = wave
        batch["wave_lengths"] = frame_lengths * mel_config.hop_length
        batch["mel"] = mel_spectrogram(wave)[:, :, :frames]
    else:
        batch["mel"] = torch.randn(batch_size, mel_config.n_mels, frames, generator=generator) * 2 - 5
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def run_train_benchmark(
    model: str = registry.DEFAULT_ACOUSTIC,
    preset: str | None = None,
    batch_size: int = 16,
    steps: int = 3,
    warmup: int = 1,
    frames: int = 400,
    tokens: int = 80,
    device: str | None = None,
    amp: str = "off",
    threads: int | None = None,
    adversarial: bool | None = None,
    stft_loss: bool | None = None,
) -> dict[str, Any]:
    """Seconds per training step of ``model`` (a trainable registered family) at ``batch_size``.

    ``frames``/``tokens``: the longest utterance of a batch (Glow-TTS; 400 frames ≈ 4.6 s);
    the vocoders train on their config's ``segment_size`` windows of utterances of ``frames``
    frames. ``adversarial`` / ``stft_loss`` (GAN vocoders) default to the family's own training
    (its registry entry's ``train_defaults``: HiFi-GAN with its discriminators, Vocos with mel +
    multi-resolution STFT losses only).
    """
    if model not in registry.names(trainable=True):
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(registry.names(trainable=True))}")
    family = registry.get(model)
    is_vocoder = family.role == registry.VOCODER
    if threads:
        torch.set_num_threads(threads)
    preset = preset or family.default_preset
    defaults = {"adversarial": True, "stft_loss": False, **family.extra.get("train_defaults", {})}
    if adversarial is None:
        adversarial = defaults["adversarial"]
    if stft_loss is None:
        stft_loss = defaults["stft_loss"]
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    frontend = TextFrontend("ko")
    info = DatasetInfo(Path("."), len(frontend.symbols), [], MelConfig(), frontend.settings())
    recipe = Recipe(
        model=model,
        data=DataRecipe(dir="synthetic", batch_size=batch_size),
        run_dir="unused",
        model_config={"preset": preset},
        train=TrainRecipe(amp=amp, progress=False),
        # Only the options the family's task has (GAN vocoders; WaveGlow and WaveNet have none).
        options={k: v for k, v in {"adversarial": adversarial, "stft_loss": stft_loss}.items()
                 if is_vocoder and k in family.task_class().option_names()},
    )
    torch.manual_seed(0)
    task = build_task(recipe, info, target)
    specs = task.optimizers()
    ctx = StepContext(target, amp, task.grad_clip(), {s.name: s.optimizer for s in specs}, distributed=False,
                      clip_by_value=task.grad_clip_by_value)
    generator = torch.Generator().manual_seed(0)
    batch = _synthetic_batch(model, batch_size, frames, tokens, info.n_vocab, generator, target)
    task.initialize(batch)
    task.train(True)
    times = []
    for step in range(warmup + steps):
        if target.type == "cuda":
            torch.cuda.synchronize(target)
        started = time.perf_counter()
        for spec in specs:
            for group in spec.optimizer.param_groups:
                group["lr"] = spec.lr_at(step, 0)
        ctx.begin()
        try:
            task.train_step(batch, step, ctx)
        finally:
            ctx.end()
        if target.type == "cuda":
            torch.cuda.synchronize(target)
        if step >= warmup:
            times.append(time.perf_counter() - started)
    n_params = sum(p.numel() for p in task.inference_module().parameters())
    return {
        "model": model,
        "preset": preset,
        "adversarial": is_vocoder and hasattr(task, "adversarial_at") and task.adversarial_at(warmup),
        "stft_loss": is_vocoder and "stft_loss" in recipe.options and stft_loss,
        "batch_size": batch_size,
        "frames": frames,
        "device": str(target) if target.type != "cuda" else torch.cuda.get_device_name(target),
        "amp": ctx.amp,
        "threads": torch.get_num_threads(),
        "parameters": n_params,
        "seconds_per_step": statistics.median(times),
        "step_times": times,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moksori bench train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=registry.names(trainable=True), default=registry.DEFAULT_ACOUSTIC)
    parser.add_argument("--preset", help="model preset (default: the family's; `moksori models` lists them)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--frames", type=int, default=400, help="mel frames of the longest utterance")
    parser.add_argument("--tokens", type=int, default=80, help="tokens of the longest utterance")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    parser.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    losses = parser.add_mutually_exclusive_group()
    losses.add_argument("--no-adversarial", dest="adversarial", action="store_false", default=None,
                        help="GAN vocoders: without the discriminators (mel loss only)")
    losses.add_argument("--adversarial", dest="adversarial", action="store_true", default=None,
                        help="GAN vocoders trained without them by default: with the discriminators")
    parser.add_argument("--stft-loss", dest="stft_loss", action="store_true", default=None,
                        help="GAN vocoders: add the multi-resolution STFT loss (default: the family's own)")
    parser.add_argument("--no-stft-loss", dest="stft_loss", action="store_false", default=None,
                        help="GAN vocoders: without the multi-resolution STFT loss")
    args = parser.parse_args(argv)
    result = run_train_benchmark(
        args.model, args.preset, args.batch_size, args.steps, args.warmup, args.frames, args.tokens,
        args.device, args.amp, args.threads, adversarial=args.adversarial, stft_loss=args.stft_loss,
    )
    losses_text = ""
    if "adversarial" in registry.get(result["model"]).task_class().option_names():  # GAN vocoders
        parts = ["mel"] + ["MR-STFT"] * result["stft_loss"] + ["adversarial"] * result["adversarial"]
        losses_text = f", losses {' + '.join(parts)}"
    print(
        f"{result['model']} ({result['preset']}, {result['parameters'] / 1e6:.2f}M parameters{losses_text}) "
        f"batch {result['batch_size']} on {result['device']} (amp {result['amp']}, {result['threads']} threads): "
        f"{result['seconds_per_step']:.3f} s/step (median of {len(result['step_times'])})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
