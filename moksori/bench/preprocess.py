"""Preprocessing benchmark: ``moksori bench preprocess``.

Makes (or reuses) an espeak-ng sample dataset, then times on the same clips

* ours: :func:`moksori.data.preprocess.preprocess_dataset` with ``workers`` processes
  (text front end, quality checks, trim, loudness, wav + mel cache, manifest), pool
  start-up included;
* a plain loop: one process, per file ``librosa.load`` at 22050 Hz,
  ``librosa.effects.trim``, ``librosa.feature.melspectrogram`` with the project's mel
  parameters (magnitude, Slaney filters), log, ``np.save``;

and reports minutes of audio processed per wall-clock second for both, and the ratio.
Both are timed warm: ours after preprocessing one clip (lazy imports, the G2P
dictionary and the mel filters load then; that start-up time is reported apart).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from moksori.audio import MelConfig
from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
from moksori.data.readers import read_dataset
from moksori.data.sample_dataset import make_sample_dataset

__all__ = ["main", "run_preprocess_benchmark"]


def run_preprocess_benchmark(
    n_clips: int = 200,
    workers: int = 2,
    language: str = "ko",
    work_dir: str | Path | None = None,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Time our preprocessing against a plain librosa loop on ``n_clips`` espeak clips."""
    work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.gettempdir()) / "moksori-bench"
    dataset = make_sample_dataset(
        work_dir / f"sample_{language}_{n_clips}", language=language, n=n_clips, workers=workers, progress=progress
    )
    utterances = read_dataset(dataset)
    audio_paths = [utterance.audio_path for utterance in utterances]
    audio_minutes = sum(soundfile.info(str(path)).duration for path in audio_paths) / 60.0
    config = PreprocessConfig(language=language)

    startup_s = _warm_up_ours(utterances[0], work_dir / "warm_up", config)
    ours_dir = work_dir / "ours"
    shutil.rmtree(ours_dir, ignore_errors=True)
    started = time.perf_counter()
    report = preprocess_dataset(dataset, ours_dir, config, workers=workers, progress=progress)
    ours_s = time.perf_counter() - started

    baseline_dir = work_dir / "baseline"
    shutil.rmtree(baseline_dir, ignore_errors=True)
    baseline_s = _time_plain_loop(audio_paths, baseline_dir, MelConfig())

    return {
        "n_clips": len(audio_paths),
        "language": language,
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "audio_minutes": audio_minutes,
        "kept": report.n_kept,
        "rejected": report.n_rejected,
        "startup_s": startup_s,
        "ours_s": ours_s,
        "baseline_s": baseline_s,
        "ours_audio_min_per_s": audio_minutes / ours_s,
        "baseline_audio_min_per_s": audio_minutes / baseline_s,
        "speedup": baseline_s / ours_s,
    }


def _warm_up_ours(utterance, folder: Path, config: PreprocessConfig) -> float:
    """Preprocess one clip, untimed in the comparison: lazy imports, G2P and mel set-up happen here."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    filelist = folder / "one.txt"
    filelist.write_text(f"{utterance.audio_path.resolve()}|{utterance.text}\n", encoding="utf-8")
    started = time.perf_counter()
    preprocess_dataset(filelist, folder / "out", config, workers=1, progress=False)
    return time.perf_counter() - started


def _time_plain_loop(paths: list[Path], out_dir: Path, mel: MelConfig) -> float:
    import librosa

    out_dir.mkdir(parents=True, exist_ok=True)
    _plain_features(paths[0], mel, librosa)  # warm-up, not timed
    started = time.perf_counter()
    for path in paths:
        np.save(out_dir / f"{path.stem}.npy", _plain_features(path, mel, librosa))
    return time.perf_counter() - started


def _plain_features(path: Path, mel: MelConfig, librosa) -> np.ndarray:
    wave, _ = librosa.load(str(path), sr=mel.sample_rate)
    wave, _ = librosa.effects.trim(wave, top_db=40)
    spectrogram = librosa.feature.melspectrogram(
        y=wave,
        sr=mel.sample_rate,
        n_fft=mel.n_fft,
        hop_length=mel.hop_length,
        win_length=mel.win_length,
        n_mels=mel.n_mels,
        fmin=mel.fmin,
        fmax=mel.fmax,
        power=1.0,
    )
    return np.log(np.maximum(spectrogram, mel.clamp)).astype(np.float32)


def format_result(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"clips          {result['n_clips']} ({result['language']}), "
            f"{result['audio_minutes']:.2f} min of audio, {result['cpu_count']} CPUs",
            f"moksori        {result['ours_s']:.2f} s with {result['workers']} workers: "
            f"{result['ours_audio_min_per_s']:.2f} min of audio per second "
            f"({result['kept']} kept, {result['rejected']} rejected)",
            f"plain librosa  {result['baseline_s']:.2f} s in one process: "
            f"{result['baseline_audio_min_per_s']:.2f} min of audio per second",
            f"ratio          {result['speedup']:.2f}x",
            f"(both timed after a one-clip warm-up; moksori's one-time start-up was {result['startup_s']:.2f} s)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="moksori bench preprocess",
        description="Time moksori preprocessing against a plain single-process librosa loop.",
    )
    parser.add_argument("--n", type=int, default=200, help="number of espeak sample clips (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="preprocessing processes (default 2)")
    parser.add_argument("--lang", default="ko", choices=["ko", "en"], help="language of the sample clips")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the clips and caches go (reused)")
    args = parser.parse_args(argv)
    result = run_preprocess_benchmark(args.n, args.workers, args.lang, args.work_dir, progress=True)
    print(format_result(result))
    return 0
