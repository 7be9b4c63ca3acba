"""Datasets: readers, preprocessing into a feature cache, torch datasets and batching.

The names below are imported on first use, so ``import moksori.data.prompt_sets`` (used
by the recording studio) does not pull in torch.

* :mod:`moksori.data.readers` — LJSpeech, KSS, filelist and mimic-recording-studio readers
* :mod:`moksori.data.preprocess` — checks, trimming, mel cache, manifest, train/val split
* :mod:`moksori.data.report` — the preprocessing report
* :mod:`moksori.data.dataset` — ``TTSDataset``, ``collate_tts``, ``LengthBucketSampler``
* :mod:`moksori.data.sample_dataset` — espeak-ng sample datasets (bindings in :mod:`moksori.espeak`)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Utterance": "readers",
    "read_dataset": "readers",
    "scan_dataset": "readers",
    "detect_format": "readers",
    "DatasetFormatError": "readers",
    "MalformedLineError": "readers",
    "PreprocessConfig": "preprocess",
    "preprocess_dataset": "preprocess",
    "split_train_val": "preprocess",
    "PreprocessReport": "report",
    "format_report": "report",
    "read_manifest": "manifest",
    "TTSDataset": "dataset",
    "collate_tts": "dataset",
    "LengthBucketSampler": "dataset",
    "make_sample_dataset": "sample_dataset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'moksori.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"moksori.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
