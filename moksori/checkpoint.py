"""The one checkpoint module: format, reading (never executing a pickle's code), checks, and the
name-conversion helpers that published checkpoints need.

A moksori checkpoint is a plain ``torch.save`` dict::

    format        "moksori-checkpoint-1"
    model_name    registry family name
    model_config  config.to_dict() of the inference module
    model         state_dict of the inference module
    step, epoch   progress when it was written
    text_frontend TextFrontend.settings() (acoustic models; None for vocoders)
    mel_config    MelConfig.to_dict()
    speakers      speaker names (may be empty)
    train_state   training-only: other modules, optimizers, scaler, RNG, recipe, sampler position

Training writes them (:mod:`moksori.training.checkpoint`); bundles, warm starts, the studio and
the benchmarks read them here. Every read uses ``torch.load(weights_only=True)`` with only
NumPy's array reconstruction allowed besides tensors and plain containers (the RNG state of a
run holds a NumPy array), so a hostile file cannot run code.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_FORMAT = "moksori-checkpoint-1"
LATEST = "latest.pt"
SCHEMA_KEYS = (
    "format",
    "model_name",
    "model_config",
    "model",
    "step",
    "epoch",
    "text_frontend",
    "mel_config",
    "speakers",
    "train_state",
)
REQUIRED_KEYS = ("model_name", "model_config", "model", "mel_config")

# Weight norm as torch.nn.utils.parametrizations names it (g, v), and the legacy names.
WN_G = "parametrizations.weight.original0"
WN_V = "parametrizations.weight.original1"


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message names the file and the field."""


def _safe_globals() -> list[Any]:
    multiarray = getattr(np, "_core", None) or np.core  # NumPy 2 moved np.core to np._core
    dtypes = [type(np.dtype(t)) for t in (np.uint32, np.int64, np.float64, np.float32)]
    return [multiarray.multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def torch_load(path: str | Path, **kwargs: Any) -> Any:
    """``torch.load`` on the CPU that never executes code from the file (tensors, containers,
    numbers, strings and NumPy arrays only), of an archive that cannot unpack to more than it holds
    (:func:`check_archive`)."""
    check_archive(path)
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    except pickle.UnpicklingError as error:
        # torch's message advises weights_only=False, i.e. running the file's code: never ours to give.
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        named = f" (it names {found.group(1)})" if found else ""
        raise pickle.UnpicklingError(f"the file pickles Python objects other than tensors and plain data{named}, "
                                     "and moksori never runs a checkpoint's pickled code") from None


def check_archive(path: str | Path) -> None:
    """Refuse a zip checkpoint that could unpack to more than its size (a decompression bomb:
    511 KB that become 512 MB). ``torch.save`` stores its archive entries uncompressed, so a
    compressed entry means a file made by something else (a stored one holds no more than its bytes)."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return  # the legacy (pre-1.6) format: a plain pickle stream, read as it comes
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as error:
        raise CheckpointError(f"{path}: a damaged archive ({error})") from None
    compressed = [entry.filename for entry in entries if entry.compress_type != zipfile.ZIP_STORED]
    if compressed:
        raise CheckpointError(f"{path}: {len(compressed)} compressed archive entries (first: {compressed[0]}); "
                              "torch.save writes none, and a compressed entry can unpack to far more than the file")


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a training run folder's ``latest.pt``."""
    path = Path(path)
    if path.is_dir():
        latest = path / LATEST
        if not latest.is_file():
            raise CheckpointError(f"{path}: a run folder needs a {LATEST} checkpoint, and there is none")
        return latest
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    return path


def read_checkpoint(path: str | Path, *, kinds: Iterable[str] | None = None, mmap: bool = False) -> dict[str, Any]:
    """Read and check a moksori checkpoint (file or run folder); ``kinds`` limits the model names.
    The returned dict also holds ``path``, the file it came from."""
    path = resolve_checkpoint(path)
    try:
        checkpoint = torch_load(path, mmap=mmap)
    except Exception as error:  # torch raises many kinds for a damaged or hostile file
        raise CheckpointError(f"{path}: cannot read the checkpoint ({error})") from error
    check_checkpoint(checkpoint, path, kinds)
    checkpoint["path"] = str(path)
    return checkpoint


def check_checkpoint(checkpoint: Any, path: str | Path, kinds: Iterable[str] | None = None) -> None:
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: a checkpoint is a dict, this holds a {type(checkpoint).__name__}")
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: field 'format' is {checkpoint.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    for key in REQUIRED_KEYS:
        if key not in checkpoint:
            raise CheckpointError(f"{path}: checkpoint field {key!r} is missing")
    kinds = list(kinds) if kinds is not None else None
    if kinds is not None and checkpoint["model_name"] not in kinds:
        raise CheckpointError(
            f"{path}: field 'model_name' is {checkpoint['model_name']!r}; expected one of {', '.join(kinds)}"
        )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A bare state dict file (a bundle's ``acoustic.pt``/``vocoder.pt``)."""
    try:
        state = torch_load(path)
    except Exception as error:
        raise CheckpointError(f"{path}: cannot read the weights ({error})") from error
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state dict, got a {type(state).__name__}")
    return dict(state)


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | Path) -> None:
    # clone() drops views into larger storages, which torch.save would otherwise write whole.
    torch.save({key: value.detach().clone() for key, value in state_dict.items()}, path)


def write_imported_checkpoint(
    path: str | Path, model_name: str, model_config: Mapping[str, Any], state: Mapping[str, torch.Tensor],
    mel_config: Mapping[str, Any], *, source: str = "", text_frontend: Mapping[str, Any] | None = None,
) -> Path:
    """Write published weights, converted to a family's names, as a moksori checkpoint (step 0,
    no training state) that ``moksori bundle`` and ``init_from`` read. Atomic."""
    from moksori.atomic import atomic_path

    checkpoint = {
        "format": CHECKPOINT_FORMAT, "model_name": model_name, "model_config": dict(model_config),
        "model": {key: value.detach().clone().contiguous() for key, value in state.items()},
        "step": 0, "epoch": 0, "text_frontend": dict(text_frontend) if text_frontend is not None else None,
        "mel_config": dict(mel_config), "speakers": [], "train_state": None, "imported_from": source,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        torch.save(checkpoint, handle)
    return path


def import_published(model_name: str, source: str | Path, out: str | Path) -> Path:
    """Convert a published checkpoint of a registry family (its ``extra["import_reference"]``:
    path → (config, state dict); acoustic families also name their ``reference_text_frontend``)
    into a moksori checkpoint at ``out``, which ``moksori bundle`` and ``init_from`` read."""
    from moksori.audio import MelConfig
    from moksori.models import registry

    family = registry.get(model_name)
    importer = family.extra.get("import_reference")
    if importer is None:
        able = [f.name for f in registry.families() if "import_reference" in f.extra]
        raise ValueError(f"{model_name} has no published-checkpoint importer; families with one: {', '.join(able)}")
    config, state = importer(source)
    frontend = family.extra.get("reference_text_frontend")
    n_mels = getattr(config, "n_mel_channels", getattr(config, "num_mels", 80))
    return write_imported_checkpoint(
        out, model_name, config.to_dict(), state, MelConfig(n_mels=int(n_mels)).to_dict(), source=str(source),
        text_frontend=frontend() if frontend is not None else None,
    )


# --- pickled model objects (published checkpoints that torch.save a whole model) ----------------

# Containers and tensor rebuilders a pickled module needs; nothing here runs code from the file.
_PICKLE_FUNCTIONS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("__builtin__", "object"): object,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
}
# Classes whose objects become inert holders wherever a pickle names them: torch's own modules
# and weight-norm hook (by module prefix), plus what the caller allows (e.g. "glow.WaveGlow").
_TORCH_MODULE_PREFIXES = ("torch.nn.modules.", "torch.nn.parallel.")
_TORCH_HOLDERS = {("torch.nn.utils.weight_norm", "WeightNorm")}


class PickledObject:
    """An inert stand-in for an object of a class a pickle names: it keeps the state the pickle
    gives it as plain attributes and has no behaviour (its class's code is never imported)."""

    pickled_class = ""
    dump_patches = False  # read by torch's legacy loader when it compares saved class sources

    def __new__(cls, *args: Any, **kwargs: Any) -> "PickledObject":
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_pickled_args"] = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, Mapping):
            raise CheckpointError(f"unexpected state for a pickled {self.pickled_class}: {type(state).__name__}")
        self.__dict__.update(state)


def _holder_class(module: str, name: str) -> type:
    return type(name, (PickledObject,), {"pickled_class": f"{module}.{name}", "__module__": "moksori.checkpoint"})


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (objects pickled with protocol 0/1), for holder classes only."""
    if not (isinstance(cls, type) and issubclass(cls, PickledObject)) or base is not object:
        raise CheckpointError(f"refusing to rebuild {cls!r} from base {base!r}")
    return cls()


def _restricted_pickle_module(allowed_classes: Iterable[str]) -> Any:
    """A ``pickle_module`` for ``torch.load`` whose unpickler resolves only the tables above and
    ``allowed_classes`` (as holders); any other global is refused before anything is called."""
    import pickle
    import types

    allowed = {tuple(name.rsplit(".", 1)) for name in allowed_classes} | _TORCH_HOLDERS
    holders: dict[tuple[str, str], type] = {}

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            key = (module, name)
            if key in _PICKLE_FUNCTIONS:
                return _PICKLE_FUNCTIONS[key]
            if key == ("copyreg", "_reconstructor") or key == ("copy_reg", "_reconstructor"):
                return _reconstructor
            if name.isidentifier() and (key in allowed or module.startswith(_TORCH_MODULE_PREFIXES)):
                return holders.setdefault(key, _holder_class(module, name))
            raise CheckpointError(f"the pickle names {module}.{name}, which is not allowed in a model checkpoint "
                                  "(refused without running it)")

    def load(file: Any, **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()

    return types.SimpleNamespace(Unpickler=RestrictedUnpickler, load=load, __name__="moksori_restricted_pickle")


def holder_state_dict(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict of a pickled module held by :class:`PickledObject`: its ``_parameters`` and
    ``_buffers`` (``None`` entries skipped), then its ``_modules``, by name as ``nn.Module`` does."""
    if not isinstance(obj, PickledObject):
        raise CheckpointError(f"expected a pickled module, got {type(obj).__name__}")
    state: dict[str, torch.Tensor] = {}
    for table in ("_parameters", "_buffers"):
        for name, value in (getattr(obj, table, None) or {}).items():
            if isinstance(value, torch.Tensor):
                state[prefix + name] = value.detach()
    for name, child in (getattr(obj, "_modules", None) or {}).items():
        if child is not None:
            state.update(holder_state_dict(child, f"{prefix}{name}."))
    return state


def read_pickled_module(
    path: str | Path, allowed_classes: Iterable[str] = (), key: str = "model"
) -> dict[str, torch.Tensor]:
    """The state dict of a whole model object that a published checkpoint pickles (e.g. NVIDIA's
    ``{"model": <glow.WaveGlow>}``), read without executing any of the pickle's code: the classes
    it names (``allowed_classes`` such as ``"glow.WaveGlow"``, and torch's ``nn`` modules) become
    inert holders whose tensors are collected; any other global is refused with
    :class:`CheckpointError`. Weight norm stays as its ``weight_g``/``weight_v`` tensors
    (:func:`fold_weight_norm`, :func:`match_weight_norm`)."""
    import warnings

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    check_archive(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy files: "source code of class ... has changed"
            data = torch.load(path, map_location="cpu", weights_only=False,
                              pickle_module=_restricted_pickle_module(allowed_classes))
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except Exception as error:
        raise CheckpointError(f"{path}: cannot read the pickled checkpoint ({type(error).__name__}: {error})") from error
    model = data.get(key) if isinstance(data, Mapping) else data
    if not isinstance(model, PickledObject):
        found = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise CheckpointError(f"{path}: expected a pickled model under {key!r}, found {found}")
    state = holder_state_dict(model)
    if not state:
        raise CheckpointError(f"{path}: the pickled {model.pickled_class} holds no tensors")
    return strip_module_prefix(state)


# --- reference-name conversion -----------------------------------------------------------------


def strip_module_prefix(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Tensors of a state dict with DataParallel/DDP ``module.`` prefixes removed (others dropped)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            while key.startswith("module."):
                key = key[len("module.") :]
            out[key] = value
    return out


def norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The plain weight ``g · v / ‖v‖`` of a weight-normed layer (norm over every dim but 0)."""
    return v * (g / norm_except_dim0(v))


def _weight_norm_parts(source: dict[str, torch.Tensor], prefix: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(g, v) of the layer at ``prefix`` from whichever naming the source uses (removed from it)."""
    for g_key, v_key in ((f"{prefix}weight_g", f"{prefix}weight_v"), (f"{prefix}{WN_G}", f"{prefix}{WN_V}")):
        if g_key in source and v_key in source:
            return source.pop(g_key), source.pop(v_key)
    if f"{prefix}weight" in source:
        weight = source.pop(f"{prefix}weight")
        return norm_except_dim0(weight), weight
    return None


def match_weight_norm(source: Mapping[str, torch.Tensor], target_keys: Iterable[str]) -> dict[str, torch.Tensor]:
    """Rename/convert weight-norm tensors of ``source`` to the target's layout: legacy
    ``weight_g``/``weight_v`` (published checkpoints), parametrization ``original0``/``original1``
    (moksori training) or a plain ``weight`` (weight norm removed), whichever the target uses."""
    source = dict(source)
    converted: dict[str, torch.Tensor] = {}
    for key in target_keys:
        if key.endswith(WN_G) and key not in source:
            prefix = key[: -len(WN_G)]
            parts = _weight_norm_parts(source, prefix)
            if parts is not None:
                converted[prefix + WN_G], converted[prefix + WN_V] = parts
        elif key.endswith(".weight") and key not in source:
            prefix = key[: -len("weight")]
            parts = _weight_norm_parts(source, prefix)
            if parts is not None:
                converted[key] = fold_weight_norm(*parts)
    source.update(converted)
    return source


def to_legacy_weight_norm_names(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with parametrization names turned into the legacy ``weight_g``/``weight_v``
    that the published PyTorch 1.x checkpoints use."""
    return {key.replace(WN_G, "weight_g").replace(WN_V, "weight_v"): value.detach().clone() for key, value in state.items()}


__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "LATEST",
    "REQUIRED_KEYS",
    "SCHEMA_KEYS",
    "WN_G",
    "WN_V",
    "check_checkpoint",
    "fold_weight_norm",
    "match_weight_norm",
    "PickledObject",
    "holder_state_dict",
    "import_published",
    "norm_except_dim0",
    "read_checkpoint",
    "read_pickled_module",
    "read_state_dict",
    "resolve_checkpoint",
    "save_state_dict",
    "strip_module_prefix",
    "to_legacy_weight_norm_names",
    "torch_load",
    "check_archive",
    "write_imported_checkpoint",
]
