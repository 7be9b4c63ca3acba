"""File storage under one root folder, with atomic writes.

Callers pass paths relative to the root, and they generate those names themselves (ids,
take numbers, fixed file names): a file name chosen by a user never becomes a path here.
``path`` still refuses anything that could leave the root, as a second line of defence.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath

from moksori.atomic import atomic_write_bytes


class FileStore:
    """Files under ``root`` (created if missing), addressed by relative paths."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    def path(self, relative: str) -> Path:
        """The absolute path of ``relative``; ValueError if it is not safely inside the root."""
        if not isinstance(relative, str) or not relative.strip():
            raise ValueError(f"file store path must be a non-empty string, got {relative!r}")
        if "\0" in relative or "\\" in relative:
            raise ValueError(f"file store path {relative!r} contains a NUL or backslash")
        pure = PurePosixPath(relative)
        if pure.is_absolute() or PureWindowsPath(relative).drive:
            raise ValueError(
                f"file store path {relative!r} is absolute; give it relative to the root"
            )
        if ".." in pure.parts:
            raise ValueError(f"file store path {relative!r} contains '..'")
        # Resolving follows symlinks, so a link inside the root that points outside is caught too.
        target = (self.root / pure).resolve()
        if target == self.root or not target.is_relative_to(self.root):
            raise ValueError(f"file store path {relative!r} is not inside {self.root}")
        return target

    def write_atomic(self, relative: str, data: bytes) -> Path:
        """Write ``data`` so that readers see the old file or the new one, never a partial one."""
        target = self.path(relative)
        atomic_write_bytes(target, data, durable=True, private=True)  # users' recordings: owner only
        _fsync_dir(target.parent)
        return target

    def read_bytes(self, relative: str) -> bytes:
        """The contents of a stored file (FileNotFoundError if there is none)."""
        return self.path(relative).read_bytes()

    def exists(self, relative: str) -> bool:
        return self.path(relative).exists()

    def delete(self, relative: str) -> None:
        """Delete one file; a file that is already gone is not an error."""
        target = self.path(relative)
        if target.is_dir():
            raise IsADirectoryError(f"{relative!r} is a folder; use delete_tree")
        target.unlink(missing_ok=True)

    def delete_tree(self, relative: str) -> None:
        """Delete a folder and everything in it; a folder that is already gone is not an error."""
        target = self.path(relative)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            raise NotADirectoryError(f"{relative!r} is a file; use delete")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry lives in the folder, not in the file."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
