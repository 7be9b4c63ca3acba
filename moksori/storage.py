"""One storage root for everything a deployment keeps on disk (``MOKSORI_STORAGE_ROOT``).

Several server instances and training workers share one folder (a shared filesystem path):
voice bundles under ``ROOT/voices`` and the studio's recordings, datasets and runs under
``ROOT/studio``. A folder given explicitly (``--voices``, ``MOKSORI_SERVER_VOICES_DIR``,
``MOKSORI_STUDIO_DATA_DIR``) still wins; without the root, today's defaults stay.
"""

from __future__ import annotations

import os
from pathlib import Path

STORAGE_ROOT_ENV = "MOKSORI_STORAGE_ROOT"


def storage_root() -> Path | None:
    raw = os.environ.get(STORAGE_ROOT_ENV, "").strip()
    return Path(raw).expanduser() if raw else None


def default_voices_dir() -> Path:
    """``MOKSORI_SERVER_VOICES_DIR``, else ``ROOT/voices``, else ``voices`` (relative to the working folder)."""
    explicit = os.environ.get("MOKSORI_SERVER_VOICES_DIR", "").strip()
    if explicit:
        return Path(explicit)
    root = storage_root()
    return root / "voices" if root is not None else Path("voices")


def default_studio_dir() -> Path | None:
    """``ROOT/studio`` when a storage root is set; None keeps the studio's own default."""
    root = storage_root()
    return root / "studio" if root is not None else None


__all__ = ["STORAGE_ROOT_ENV", "default_studio_dir", "default_voices_dir", "storage_root"]
