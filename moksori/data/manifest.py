"""The feature cache written by preprocessing, and atomic file writes.

Layout of a preprocessed folder (all paths inside records are relative to it)::

    config.json       preprocess config, mel config, text front end settings and symbols, speakers
    manifest.jsonl    one JSON object per kept utterance (see :func:`manifest_record`)
    train.jsonl       the training share of manifest.jsonl (same records)
    val.jsonl         the validation share
    rejected.jsonl    one JSON object per input item that was not kept: id, audio, reason, message
    report.json       the PreprocessReport as JSON; report.txt the same for people
    mels/{id}.npy     log-mel (n_mels, n_frames), float32 (or float16 if configured)
    wavs/{id}.wav     the processed audio (trimmed, loudness-normalised), 22050 Hz 16-bit

Every file is written to a temporary name in the same folder and renamed into place,
so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from moksori.atomic import atomic_write_bytes

__all__ = [
    "CONFIG_FILE",
    "MANIFEST_FILE",
    "REJECTED_FILE",
    "REPORT_FILE",
    "REPORT_TEXT_FILE",
    "SPLIT_FILES",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_config",
    "read_jsonl",
    "read_manifest",
    "save_mel",
    "write_json",
    "write_jsonl",
]

MANIFEST_FILE = "manifest.jsonl"
REJECTED_FILE = "rejected.jsonl"
CONFIG_FILE = "config.json"
REPORT_FILE = "report.json"
REPORT_TEXT_FILE = "report.txt"
SPLIT_FILES = {"train": "train.jsonl", "val": "val.jsonl"}
MEL_DIR = "mels"
WAV_DIR = "wavs"


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a bad line raises ValueError naming the file and line."""
    path = Path(path)
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error
    return records


def save_mel(path: str | Path, mel: np.ndarray) -> None:
    """Save a mel array as .npy, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, mel, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def read_manifest(preprocessed_dir: str | Path, split: str = "all") -> list[dict[str, Any]]:
    """The records of a preprocessed folder: ``split`` is "all", "train" or "val"."""
    folder = Path(preprocessed_dir)
    if split == "all":
        name = MANIFEST_FILE
    elif split in SPLIT_FILES:
        name = SPLIT_FILES[split]
    else:
        raise ValueError(f"unknown split {split!r}; use 'all', 'train' or 'val'")
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a preprocessed folder (moksori preprocess)?")
    return read_jsonl(path)


def load_config(preprocessed_dir: str | Path) -> dict[str, Any]:
    """The config.json of a preprocessed folder."""
    path = Path(preprocessed_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {path.parent} a preprocessed folder?")
    return json.loads(path.read_text(encoding="utf-8"))
