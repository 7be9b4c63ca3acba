import os

import pytest

from moksori.atomic import atomic_path, atomic_write_bytes


def test_write_replaces_the_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new", durable=True)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        temp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_written_files_respect_the_umask_and_private_ones_are_owner_only(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "shared.wav", b"RIFF")
        atomic_write_bytes(tmp_path / "take.wav", b"RIFF", private=True)
    finally:
        os.umask(old)
    assert (tmp_path / "shared.wav").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "take.wav").stat().st_mode & 0o777 == 0o600
