"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every module that writes results (audio, feature caches, checkpoints, bundles, the file store)
goes through :func:`atomic_path`, so a crash or a full disk never leaves a partial file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``os.umask`` sets
    it while reading, which a thread creating a file at that moment would see)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path, *, durable: bool = False, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; write it by any means; on success it replaces
    ``path`` (``durable``: flushed to disk first), on error it is removed and ``path`` is untouched.
    The file gets the mode a plain ``open`` would give (0666 less the umask), or 0600 when
    ``private`` (users' recordings on a shared server)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    if not private:  # mkstemp makes 0600 files
        os.fchmod(handle, 0o666 & ~current_umask())
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        if durable:
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, durable: bool = False, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (``private``: mode 0600, see :func:`atomic_path`)."""
    with atomic_path(path, durable=durable, private=private) as temp:
        temp.write_bytes(data)
