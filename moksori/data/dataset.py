"""Torch side of the feature cache: the dataset, the collate function and length-bucketed batching."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from moksori.audio import load_audio
from moksori.data.manifest import load_config, read_manifest

__all__ = ["LengthBucketSampler", "TTSDataset", "collate_tts"]


class TTSDataset(Dataset):
    """Items of a preprocessed folder (``moksori preprocess``) for one split.

    Each item is a dict: ``id`` (str), ``ids`` (LongTensor of token ids), ``mel``
    (FloatTensor ``(n_mels, frames)``), ``speaker`` (int, the index of the speaker in
    the folder's sorted speaker list) and, with ``load_wave=True``, ``wave`` (the
    processed audio as a FloatTensor, read from disk when the item is asked for).
    """

    def __init__(self, preprocessed_dir: str | Path, split: str = "train", *, load_wave: bool = False) -> None:
        self.root = Path(preprocessed_dir)
        self.split = split
        self.load_wave = load_wave
        self.config = load_config(self.root)
        self.records = read_manifest(self.root, split)
        self.speakers: list[str] = list(self.config.get("speakers") or [""])
        self._speaker_index = {name: index for index, name in enumerate(self.speakers)}
        self.sample_rate = int(self.config["mel"]["sample_rate"])

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        mel = np.load(self.root / record["mel"], allow_pickle=False)
        item = {
            "id": record["id"],
            "ids": torch.tensor(record["ids"], dtype=torch.long),
            "mel": torch.from_numpy(mel.astype(np.float32, copy=False)),
            "speaker": self._speaker_index.get(record["speaker"], 0),
        }
        if self.load_wave:
            item["wave"] = torch.from_numpy(load_audio(self.root / record["audio"], self.sample_rate))
        return item

    @property
    def frame_lengths(self) -> list[int]:
        """Mel frames of every item (for :class:`LengthBucketSampler`)."""
        return [int(record["n_frames"]) for record in self.records]

    @property
    def text_lengths(self) -> list[int]:
        return [len(record["ids"]) for record in self.records]


def collate_tts(batch: Sequence[dict[str, Any]], *, pad_id: int = 0, mel_pad_value: float = 0.0) -> dict[str, Any]:
    """Pad a list of :class:`TTSDataset` items into a batch.

    Returns ``id`` (list of str), ``ids`` ``(B, max_tokens)`` with ``ids_lengths``,
    ``mel`` ``(B, n_mels, max_frames)`` with ``mel_lengths``, ``speaker`` ``(B,)``, and
    ``wave`` ``(B, max_samples)`` with ``wave_lengths`` when the items carry waves.
    Items keep their order; padding is ``pad_id`` for tokens, ``mel_pad_value`` for mels
    and 0 for waves (models mask by the lengths).
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    ids, ids_lengths = _pad_1d([item["ids"] for item in batch], pad_id)
    mels = [item["mel"] for item in batch]
    mel_lengths = torch.tensor([mel.shape[-1] for mel in mels], dtype=torch.long)
    padded_mels = mels[0].new_full((len(batch), mels[0].shape[0], int(mel_lengths.max())), mel_pad_value)
    for row, mel in enumerate(mels):
        padded_mels[row, :, : mel.shape[-1]] = mel
    collated = {
        "id": [item["id"] for item in batch],
        "ids": ids,
        "ids_lengths": ids_lengths,
        "mel": padded_mels,
        "mel_lengths": mel_lengths,
        "speaker": torch.tensor([int(item["speaker"]) for item in batch], dtype=torch.long),
    }
    if "wave" in batch[0]:
        collated["wave"], collated["wave_lengths"] = _pad_1d([item["wave"] for item in batch], 0)
    return collated


def _pad_1d(tensors: list[torch.Tensor], value: float) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
    padded = tensors[0].new_full((len(tensors), int(lengths.max())), value)
    for row, tensor in enumerate(tensors):
        padded[row, : tensor.shape[0]] = tensor
    return padded, lengths


class LengthBucketSampler(Sampler[list[int]]):
    """Batch sampler that puts items of similar length together; works for one or many ranks.

    Two ways to group items:

    * ``boundaries=None`` (default): each epoch, the (shuffled) indices are cut into
      pools of ``batch_size * bucket_size_multiplier``; each pool is sorted by length
      and cut into batches.
    * ``boundaries=[b0, b1, ...]``: an item of length ``l`` goes to the bucket with
      ``b[i] < l <= b[i+1]`` (lengths below ``b0`` join the first bucket, above the last
      boundary the last one: nothing is dropped); batches are drawn within a bucket.

    The batch order is shuffled too. With ``num_replicas`` > 1 (distributed training),
    each epoch's permutation is shared out first, so ranks get disjoint equal-size
    shares (padded by repeating a few items unless ``drop_last``), then every rank gets
    the same number of batches (short ranks repeat some of their own batches; with
    ``drop_last``, long ranks drop some). With one replica and ``drop_last=False``, every
    index appears exactly once per epoch. Call :meth:`set_epoch` each epoch.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        bucket_size_multiplier: int = 50,
        boundaries: Sequence[int] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if bucket_size_multiplier < 1:
            raise ValueError(f"bucket_size_multiplier must be at least 1, got {bucket_size_multiplier}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas}, {rank}")
        if boundaries is not None and (len(boundaries) < 2 or list(boundaries) != sorted(boundaries)):
            raise ValueError("boundaries must be an increasing list of at least two lengths")
        self.lengths = [int(length) for length in lengths]
        self.batch_size = batch_size
        self.bucket_size_multiplier = bucket_size_multiplier
        self.boundaries = list(boundaries) if boundaries is not None else None
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches_of_epoch())

    def __len__(self) -> int:
        return len(self._batches_of_epoch())

    def _batches_of_epoch(self) -> list[list[int]]:
        if self._cache is None or self._cache[0] != self.epoch:
            self._cache = (self.epoch, self._make_batches())
        return self._cache[1]

    def _make_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        shares = self._rank_shares(rng)
        per_rank = [self._batches_for(share, random.Random(rng.random())) for share in shares]
        counts = [len(batches) for batches in per_rank]
        target = min(counts) if self.drop_last else max(counts)
        mine = per_rank[self.rank]
        if len(mine) >= target or not mine:
            return mine[:target]
        # Every rank must run the same number of steps (or DDP waits forever).
        return [mine[i % len(mine)] for i in range(target)]

    def _rank_shares(self, rng: random.Random) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        replicas = self.num_replicas
        if replicas > 1 and order:
            if self.drop_last:
                order = order[: len(order) - len(order) % replicas]
            else:
                order += order[: (-len(order)) % replicas]
        return [order[r::replicas] for r in range(replicas)]

    def _batches_for(self, indices: list[int], rng: random.Random) -> list[list[int]]:
        groups = self._bucket_groups(indices) if self.boundaries else self._sorted_pools(indices)
        batches = []
        for group in groups:
            for start in range(0, len(group), self.batch_size):
                batch = group[start : start + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def _sorted_pools(self, indices: list[int]) -> list[list[int]]:
        pool_size = self.batch_size * self.bucket_size_multiplier
        pools = [indices[start : start + pool_size] for start in range(0, len(indices), pool_size)]
        return [sorted(pool, key=lambda i: self.lengths[i]) for pool in pools]

    def _bucket_groups(self, indices: list[int]) -> list[list[int]]:
        boundaries = self.boundaries
        buckets: list[list[int]] = [[] for _ in range(len(boundaries) - 1)]
        for index in indices:
            position = int(np.searchsorted(boundaries, self.lengths[index], side="left")) - 1
            buckets[min(max(position, 0), len(buckets) - 1)].append(index)
        return [bucket for bucket in buckets if bucket]

    @property
    def num_samples(self) -> int:
        """Items this rank sees per epoch (before any batch repetition)."""
        n = len(self.lengths)
        if self.num_replicas == 1:
            return n
        return n // self.num_replicas if self.drop_last else math.ceil(n / self.num_replicas)
