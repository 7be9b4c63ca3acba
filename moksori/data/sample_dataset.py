"""Sample datasets spoken by espeak-ng: an LJSpeech-format folder made without any recordings.

Good for tests, benchmarks, the demo, and pretraining on many hours of synthetic speech
(pass big prompt files with ``extra_prompt_files``). The metadata holds the raw prompt
text (digits and Latin letters included) in both text columns; espeak reads the same
raw text aloud, and the text front end normalises it at preprocessing time.
"""

from __future__ import annotations

import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from moksori.audio import resample, save_wav
from moksori.data.manifest import atomic_write_text
from moksori.data.prompt_sets import builtin_prompts, read_prompt_file
from moksori.espeak import EspeakError, default_voice, synthesize

__all__ = ["SAMPLE_RATE", "choose_prompts", "make_sample_dataset"]

SAMPLE_RATE = 22050


@dataclass(frozen=True)
class _Job:
    utt_id: str
    text: str
    voice: str
    wav_path: str


def choose_prompts(
    language: str,
    n: int,
    seed: int = 0,
    prompts: Sequence[str] | None = None,
    extra_prompt_files: Sequence[str | Path] = (),
) -> list[str]:
    """Pick ``n`` distinct prompts, in a seeded random order.

    The pool is ``prompts`` if given, else the built-in list for ``language``; the
    sentences of every file in ``extra_prompt_files`` are added to it. Duplicates and
    blank entries are dropped. Asking for more prompts than the pool holds is an error.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    pool = list(prompts) if prompts is not None else builtin_prompts(language)
    for path in extra_prompt_files:
        pool.extend(read_prompt_file(path))
    pool = list(dict.fromkeys(text.strip() for text in pool if text.strip()))
    if n > len(pool):
        raise ValueError(
            f"asked for {n} sample clips but only {len(pool)} distinct prompts are available; "
            "pass more sentences (prompts= or extra_prompt_files=)"
        )
    return random.Random(seed).sample(pool, n)


def make_sample_dataset(
    out_dir: str | Path,
    *,
    language: str = "ko",
    n: int = 100,
    seed: int = 0,
    voice: str | None = None,
    prompts: Sequence[str] | None = None,
    extra_prompt_files: Sequence[str | Path] = (),
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Write an LJSpeech-format dataset of ``n`` espeak-ng clips to ``out_dir``; return it.

    The folder gets ``metadata.csv`` (``id|text|text``) and ``wavs/{id}.wav`` (22050 Hz,
    16-bit mono). ``voice`` is an espeak voice name (default: "ko" or "en-us"); a
    variant such as "ko+f3" gives another pitch and formant set. Prompts: see
    :func:`choose_prompts`. Clips are synthesised by ``workers`` processes; a clip
    that already exists from an earlier run with the same text and voice is reused.
    """
    out_dir = Path(out_dir)
    voice = voice or default_voice(language)
    texts = choose_prompts(language, n, seed, prompts, extra_prompt_files)
    wav_dir = out_dir / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    jobs = [
        _Job(f"{language}{index:05d}", text, voice, str(wav_dir / f"{language}{index:05d}.wav"))
        for index, text in enumerate(texts, start=1)
    ]
    existing = _read_existing_metadata(out_dir / "metadata.csv", voice)
    todo = [job for job in jobs if existing.get(job.utt_id) != job.text or not Path(job.wav_path).is_file()]
    _synthesize_all(todo, workers, progress)
    _write_metadata(out_dir, jobs, voice)
    return out_dir


def _synthesize_all(jobs: list[_Job], workers: int, progress: bool) -> None:
    bar = tqdm(total=len(jobs), desc="espeak", unit="clip", disable=not progress or not jobs)
    with bar:
        if workers <= 1 or len(jobs) < 4:
            for job in jobs:
                _synthesize_job(job)
                bar.update()
            return
        todo = jobs
        for _attempt in range(_POOL_ATTEMPTS):
            todo = _synthesize_in_pool(todo, workers, bar)
            if not todo:
                return
        examples = ", ".join(f"{job.utt_id} {job.text[:40]!r}" for job in todo[:3])
        raise EspeakError(
            f"an espeak-ng worker process died (crashed or was killed) {_POOL_ATTEMPTS} times; "
            f"{len(todo)} clips were not made, e.g. {examples}"
        )


# A worker that dies breaks its pool; the clips it left are tried once more in a fresh one.
_POOL_ATTEMPTS = 2


def _synthesize_in_pool(jobs: list[_Job], workers: int, bar: tqdm) -> list[_Job]:
    """Synthesise ``jobs`` in ``workers`` processes; return those left undone by a dead worker.

    multiprocessing.Pool waited for ever for the clips of a worker that died (a crash in
    libespeak-ng hung a CI run); ProcessPoolExecutor reports it as a broken pool.
    """
    context = multiprocessing.get_context(_start_method())
    pool = ProcessPoolExecutor(workers, mp_context=context)
    try:
        futures = [pool.submit(_synthesize_job, job) for job in jobs]
        for future in as_completed(futures):
            if isinstance(future.exception(), BrokenProcessPool):
                break
            future.result()  # a clip's own error (a bad voice, a full disk) stops the run
            bar.update()
    finally:  # on an error or Ctrl-C, drop the clips not started instead of making them all
        pool.shutdown(cancel_futures=True)
    return [job for job, future in zip(jobs, futures) if future.cancelled() or future.exception() is not None]


def _start_method() -> str:
    # fork is much faster to start; a forked child goes on with the espeak engine it inherits.
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _synthesize_job(job: _Job) -> str:
    wave, sample_rate = synthesize(job.text, voice=job.voice)
    if sample_rate != SAMPLE_RATE:
        wave = resample(wave, sample_rate, SAMPLE_RATE)
    save_wav(job.wav_path, wave, SAMPLE_RATE)
    return job.utt_id


def _metadata_line(job: _Job) -> str:
    text = job.text.replace("|", " ").replace("\n", " ")
    return f"{job.utt_id}|{text}|{text}\n"


def _write_metadata(out_dir: Path, jobs: list[_Job], voice: str) -> None:
    body = "".join(_metadata_line(job) for job in jobs)
    atomic_write_text(out_dir / "metadata.csv", body)
    atomic_write_text(out_dir / "voice.txt", voice + "\n")


def _read_existing_metadata(path: Path, voice: str) -> dict[str, str]:
    """The id → text of an earlier run with the same voice (so its clips can be reused)."""
    voice_file = path.parent / "voice.txt"
    if not path.is_file() or not voice_file.is_file() or voice_file.read_text().strip() != voice:
        return {}
    texts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("|")
        if len(fields) == 3:
            texts[fields[0]] = fields[1]
    return texts

