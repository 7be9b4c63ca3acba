import os
from pathlib import Path

import pytest

from moksori.store import FileStore


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_write_atomic_creates_folders_and_leaves_no_temp_files(store: FileStore) -> None:
    written = store.write_atomic("voices/1/0001-1.wav", b"RIFF....")
    assert written == store.root / "voices" / "1" / "0001-1.wav"
    assert store.read_bytes("voices/1/0001-1.wav") == b"RIFF...."
    store.write_atomic("voices/1/0001-1.wav", b"second")
    assert store.read_bytes("voices/1/0001-1.wav") == b"second"
    assert _all_files(store.root) == ["voices/1/0001-1.wav"]


def test_failed_replace_keeps_the_old_file_and_no_partial_one(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write_atomic("a/clip.wav", b"old contents")

    def broken_replace(src: str, dst: str) -> None:
        assert Path(src).read_bytes() == b"new contents"  # the temp file was complete
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        store.write_atomic("a/clip.wav", b"new contents")
    assert store.read_bytes("a/clip.wav") == b"old contents"
    assert _all_files(store.root) == ["a/clip.wav"]


def test_failed_first_write_leaves_nothing(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="fsync failed"):
        store.write_atomic("b/new.wav", b"data")
    assert _all_files(store.root) == []


@pytest.mark.parametrize(
    "bad",
    ["../x", "/etc/passwd", "a/../../b", "a/../b", "..", ".", "", "  ", "a\\..\\b", "C:/x", "a\0b"],
)
def test_paths_outside_the_root_are_refused(store: FileStore, bad: str) -> None:
    with pytest.raises(ValueError):
        store.path(bad)
    with pytest.raises(ValueError):
        store.write_atomic(bad, b"x")
    assert not (store.root.parent / "x").exists() and not (store.root.parent / "b").exists()


def test_symlink_out_of_the_root_is_refused(store: FileStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "link").symlink_to(outside)
    with pytest.raises(ValueError, match="not inside"):
        store.write_atomic("link/escape.txt", b"x")
    assert not (outside / "escape.txt").exists()


def test_path_inside_the_root(store: FileStore) -> None:
    assert store.path("voices/1/a.wav") == store.root / "voices/1/a.wav"
    assert store.path("./voices//a.wav") == store.root / "voices/a.wav"


def test_delete_and_delete_tree(store: FileStore) -> None:
    store.write_atomic("runs/7/log.txt", b"log")
    store.write_atomic("runs/7/ckpt/step1.pt", b"w")
    store.write_atomic("keep.txt", b"k")
    with pytest.raises(IsADirectoryError):
        store.delete("runs/7")
    with pytest.raises(NotADirectoryError):
        store.delete_tree("keep.txt")
    store.delete("runs/7/log.txt")
    assert not store.exists("runs/7/log.txt")
    store.delete("runs/7/log.txt")  # already gone: fine
    store.delete_tree("runs/7")
    store.delete_tree("runs/7")
    assert _all_files(store.root) == ["keep.txt"]
    with pytest.raises(ValueError):
        store.delete_tree(".")  # never the root itself
