"""Atomic writes: complete file or nothing, usual permissions, clear error on a missing folder."""

import os

import pytest

from placeprint.atomic import atomic_open, atomic_write_bytes
from placeprint.errors import PlaceprintError


def test_complete_file_with_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib

        import placeprint.atomic as atomic

        importlib.reload(atomic)
        path = atomic.atomic_write_bytes(tmp_path / "a.bin", b"hello")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"hello"
    assert (path.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_missing_folder(tmp_path):
    with pytest.raises(PlaceprintError, match="folder does not exist"):
        atomic_write_bytes(tmp_path / "no" / "x.bin", b"x")
    atomic_write_bytes(tmp_path / "made" / "x.bin", b"x", make_parents=True)
    assert (tmp_path / "made" / "x.bin").read_bytes() == b"x"
