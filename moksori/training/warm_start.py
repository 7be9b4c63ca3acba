"""Fine-tuning and transfer learning.

* :func:`warm_start` loads, from a checkpoint or a voice bundle, every weight whose name and
  shape match the new model and reports the rest (a different symbol table changes
  ``encoder.emb.weight``; a different speaker count ``emb_g.weight``).
* :func:`apply_freeze` keeps parameters under given name prefixes fixed (small data).
* :func:`cache_aligned_mels` runs a trained acoustic model teacher-forced over a preprocessed
  folder (its ``teacher_forced_mel``: aligned mels from Glow-TTS, teacher-forced ones from an
  attention model) and caches its mels, so a vocoder can be fine-tuned on (generated mel, real
  audio) pairs; :class:`AlignedMelDataset` swaps those mels into the training items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from moksori import checkpoint as checkpoint_io
from moksori.atomic import atomic_write_bytes
from moksori.audio import MelConfig
from moksori.data.dataset import TTSDataset, collate_tts
from moksori.data.manifest import load_config
from moksori.models import registry
from moksori.models.interfaces import AcousticModel
from moksori.training.checkpoint import load_failure

if TYPE_CHECKING:
    from moksori.training.tasks import Task

__all__ = [
    "AlignedMelDataset",
    "WarmStartReport",
    "apply_freeze",
    "cache_aligned_mels",
    "load_matching",
    "read_init_source",
    "warm_start",
]



@dataclass
class WarmStartReport:
    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: reason"
    not_in_source: list[str] = field(default_factory=list)

    def describe(self, examples: int = 3) -> str:
        """One line: the counts, with the first ``examples`` skipped / not-in-source names (a
        training log must not drown in hundreds of names; :meth:`to_dict` has them all)."""
        skipped = _first(self.skipped, examples)
        missing = _first(self.not_in_source, examples)
        return (f"warm start from {self.source}: loaded {len(self.loaded)} tensors, skipped {len(self.skipped)}"
                f"{skipped}, {len(self.not_in_source)} kept at their initial values (not in the source){missing}")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "loaded": self.loaded, "skipped": self.skipped,
                "not_in_source": self.not_in_source}


def _first(names: list[str], count: int) -> str:
    if not names:
        return ""
    more = f", and {len(names) - count} more" if len(names) > count else ""
    return f" ({'; '.join(names[:count])}{more})"


def read_init_source(path: str | Path, model_name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights to warm-start a ``model_name`` model from: a moksori checkpoint, a voice
    bundle folder (voice.json + acoustic.pt / vocoder.pt), or a bare/reference state dict.

    Returns (state dict of the inference module, state dicts of other training modules such as
    HiFi-GAN's ``mpd``/``msd`` when the source has them).
    """
    path = Path(path)
    if path.is_dir():
        if (path / "voice.json").is_file():
            from moksori.synthesis.bundle import ROLE_FILES

            role = registry.get(model_name).role
            # A bundle's weights file names no family: voice.json does.
            voice_model = _voice_model_name(path, role)
            if voice_model is not None and voice_model != model_name:
                raise ValueError(f"{path}: the voice's {role} model is a {voice_model} model, not a {model_name} one")
            path = path / ROLE_FILES[role]
        elif (path / "latest.pt").is_file():
            path = path / "latest.pt"
        else:
            raise FileNotFoundError(f"{path}: neither a voice bundle (voice.json) nor a run folder (latest.pt)")
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}")
    try:
        data = checkpoint_io.torch_load(path)
    except Exception as error:  # torch raises many kinds (KeyError, OSError, RuntimeError) for a damaged file
        raise checkpoint_io.CheckpointError(f"{path}: cannot read the weights ({load_failure(error)})") from error
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a checkpoint dict, got {type(data).__name__}")
    source_model = data.get("model_name")
    if source_model is not None and source_model != model_name:
        raise ValueError(f"{path} holds a {source_model} model, not a {model_name} one")
    others: dict[str, Any] = {}
    if isinstance(data.get("train_state"), Mapping):
        others = dict(data["train_state"].get("modules") or {})
    for key in ("model", "generator"):  # ours / glow-tts reference, hifi-gan reference
        if isinstance(data.get(key), Mapping):
            return _strip_module_prefix(data[key]), others
    return _strip_module_prefix(data), others


def _voice_model_name(voice_dir: Path, role: str) -> str | None:
    """The family voice.json names for ``role`` (None when it names none, e.g. Griffin-Lim)."""
    try:
        entry = json.loads((voice_dir / "voice.json").read_text("utf-8")).get(role)
    except (OSError, ValueError, AttributeError) as error:
        raise ValueError(f"{voice_dir}/voice.json: not readable as a voice ({error})") from error
    return entry.get("model_name") if isinstance(entry, Mapping) else None


def _strip_module_prefix(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return checkpoint_io.strip_module_prefix(state)


def load_matching(module: nn.Module, source: Mapping[str, torch.Tensor], prefix: str = "") -> WarmStartReport:
    """Copy every tensor of ``source`` whose name and shape match ``module``'s state; report the rest."""
    target = module.state_dict()
    source = checkpoint_io.match_weight_norm(source, target)
    report = WarmStartReport(source="")
    matched: dict[str, torch.Tensor] = {}
    for name, value in source.items():
        if name not in target:
            report.skipped.append(f"{prefix}{name}: not in the new model")
        elif tuple(value.shape) != tuple(target[name].shape):
            report.skipped.append(
                f"{prefix}{name}: shape {tuple(value.shape)} in the source, {tuple(target[name].shape)} in the new model"
            )
        else:
            matched[name] = value.to(target[name].dtype)
            report.loaded.append(prefix + name)
    report.not_in_source = [prefix + name for name in target if name not in matched]
    module.load_state_dict(matched, strict=False)
    return report


def warm_start(task: "Task", source: str | Path) -> WarmStartReport:
    """Load matching weights into ``task``'s modules from ``source`` (see :func:`read_init_source`)."""
    model_state, others = read_init_source(source, task.model_name)
    report = load_matching(task.inference_module(), model_state)
    if not report.loaded:  # nothing changed yet: load_matching loaded no tensor
        raise ValueError(f"{source}: no weight in it fits this {task.model_name} model "
                         f"({len(model_state)} tensors, {len(report.skipped)} of matching names but other shapes)")
    for name, module in task.nets.items():
        if name != task.inference_name and name in others:
            part = load_matching(module, others[name], prefix=f"{name}.")
            report.loaded += part.loaded
            report.skipped += part.skipped
            report.not_in_source += part.not_in_source
    report.source = str(source)
    inference = task.inference_module()
    if hasattr(inference, "set_ddi"):
        # Data-dependent initialisation (Glow-TTS's ActNorm) comes from the source: not redone.
        inference.set_ddi(False)
    return report


def apply_freeze(nets: Mapping[str, nn.Module], inference_name: str, prefixes: list[str]) -> list[str]:
    """Set ``requires_grad=False`` on parameters under the given name prefixes; returns their names.

    Names of the inference module are matched bare (``decoder``, ``encoder.encoder``) or with its
    module name; other modules by ``name.param`` (``mpd``, ``msd.discriminators.0``). A prefix
    matches whole name components. A prefix that matches nothing is an error.
    """
    frozen: list[str] = []
    used = set()
    for module_name, module in nets.items():
        for name, param in module.named_parameters():
            names = [f"{module_name}.{name}"] + ([name] if module_name == inference_name else [])
            for prefix in prefixes:
                if any(n == prefix or n.startswith(prefix.rstrip(".") + ".") for n in names):
                    param.requires_grad_(False)
                    frozen.append(names[-1])
                    used.add(prefix)
                    break
    unused = [p for p in prefixes if p not in used]
    if unused:
        raise ValueError(f"freeze: no parameters under {', '.join(map(repr, unused))}")
    return frozen


# --- vocoder fine-tuning on aligned mels -------------------------------------------------------


def _load_acoustic(path: str | Path, device: torch.device) -> tuple[AcousticModel, dict[str, Any]]:
    """The acoustic interface of a moksori acoustic checkpoint (any acoustic family)."""
    kinds = registry.names(registry.ACOUSTIC, weights=True)
    try:
        checkpoint = checkpoint_io.read_checkpoint(path, kinds=kinds)
    except checkpoint_io.CheckpointError as error:
        raise ValueError(f"vocoder_finetune_from needs an acoustic moksori checkpoint: {error}") from error
    family = registry.get(checkpoint["model_name"], registry.ACOUSTIC)
    model = family.build(checkpoint["model_config"])
    model.load_state_dict(checkpoint["model"])
    adapter = family.inference(model, MelConfig.from_dict(checkpoint["mel_config"]))
    return adapter.to(device).eval(), dict(checkpoint)


def cache_aligned_mels(
    acoustic_checkpoint: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    progress: bool = True,
) -> Path:
    """Write ``out_dir/{id}.npy``: the teacher-forced mel of the acoustic model of every utterance (train and
    val) of ``data_dir``, the same length as the cached real mel. Existing files are kept, so an
    interrupted run continues; ``out_dir/source.json`` records the checkpoint used."""
    device = torch.device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, checkpoint = _load_acoustic(acoustic_checkpoint, device)
    _check_same_data_setup(checkpoint, data_dir)
    marker = out_dir / "source.json"
    source = {"checkpoint": str(Path(acoustic_checkpoint).resolve()), "step": int(checkpoint.get("step", 0))}
    if marker.is_file() and json.loads(marker.read_text("utf-8")) != source:
        for old in out_dir.glob("*.npy"):
            old.unlink()
    atomic_write_bytes(marker, json.dumps(source).encode("utf-8"))
    for split in ("train", "val"):
        dataset = TTSDataset(data_dir, split)
        todo = [i for i, r in enumerate(dataset.records) if not (out_dir / f"{r['id']}.npy").is_file()]
        for start in tqdm(range(0, len(todo), batch_size), desc=f"aligned mels ({split})", disable=not progress):
            batch = collate_tts([dataset[i] for i in todo[start : start + batch_size]])
            _write_aligned(model, batch, out_dir, device)
    return out_dir


def _check_same_data_setup(checkpoint: Mapping[str, Any], data_dir: str | Path) -> None:
    config = load_config(Path(data_dir))
    if checkpoint.get("mel_config") and checkpoint["mel_config"] != config["mel"]:
        raise ValueError(f"the acoustic checkpoint's mel config differs from {data_dir}'s; preprocess alike")
    text = checkpoint.get("text_frontend") or {}
    if text.get("symbol_table") and text["symbol_table"] != config["text"].get("symbol_table"):
        raise ValueError(f"the acoustic checkpoint's symbol table differs from {data_dir}'s")


@torch.no_grad()
def _write_aligned(model: AcousticModel, batch: dict[str, Any], out_dir: Path, device: torch.device) -> None:
    on_device = {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
    mel, lengths = model.teacher_forced_mel(on_device)
    for i, utt_id in enumerate(batch["id"]):
        n_real = int(batch["mel_lengths"][i])
        n = min(int(lengths[i]), n_real)
        aligned = batch["mel"][i, :, :n_real].clone()
        # Frames the model does not give (Glow-TTS drops up to n_sqz-1 at the end) keep the real mel.
        aligned[:, :n] = mel[i, :, :n].float().cpu()
        buffer = _npy_bytes(aligned.numpy())
        atomic_write_bytes(out_dir / f"{utt_id}.npy", buffer)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    handle = io.BytesIO()
    np.save(handle, array.astype(np.float32), allow_pickle=False)
    return handle.getvalue()


class AlignedMelDataset(Dataset):
    """A :class:`TTSDataset` whose items carry the cached aligned mel instead of the real one."""

    def __init__(self, base: TTSDataset, mel_dir: str | Path) -> None:
        self.base = base
        self.mel_dir = Path(mel_dir)
        missing = [r["id"] for r in base.records if not (self.mel_dir / f"{r['id']}.npy").is_file()]
        if missing:
            raise FileNotFoundError(f"{self.mel_dir}: no aligned mel for {len(missing)} utterance(s), e.g. {missing[0]}")

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        item["mel"] = torch.from_numpy(np.load(self.mel_dir / f"{item['id']}.npy", allow_pickle=False))
        return item

    @property
    def frame_lengths(self) -> list[int]:
        return self.base.frame_lengths
