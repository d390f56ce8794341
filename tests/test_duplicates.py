"""`placeprint.duplicates`: the same file again, or the same bytes, against a hand-made set."""

import os

import pytest

from placeprint.duplicates import duplicate_of


def test_duplicates_by_path_link_and_bytes(tmp_path):
    a, b, c, d = (tmp_path / n for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"))
    a.write_bytes(b"x" * 100)
    b.write_bytes(b"x" * 100)  # a's bytes under another name
    c.write_bytes(b"y" * 100)  # same size, other bytes
    d.write_bytes(b"x" * 101)  # other size
    link = tmp_path / "link.jpg"
    try:
        os.symlink(a, link)
    except OSError:
        pytest.skip("no symlinks on this file system")
    other_path_to_a = tmp_path / "sub" / ".." / "a.jpg"
    (tmp_path / "sub").mkdir()
    paths = [a, c, b, d, link, other_path_to_a, tmp_path / "missing.jpg", c]
    assert duplicate_of(paths) == {2: 0, 4: 0, 5: 0, 7: 1}


def test_no_duplicates_and_unreadable_files():
    assert duplicate_of([]) == {}
    assert duplicate_of(["/nonexistent/1.jpg", "/nonexistent/2.jpg"]) == {}
