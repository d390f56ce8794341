"""`placeprint collect`: real geotagged photos to a manifest; files without GPS are listed."""

import os

import numpy as np
from conftest import assert_one_line_error, require_real_data
from conftest import run_cli as run
from PIL import Image

from placeprint.geo.collection import read_manifest
from placeprint.geo.exif import read_gps


def test_collect_help():
    proc = run("collect", "--help")
    assert proc.returncode == 0 and "Usage" in proc.stdout


def test_collect_real_lund_photos(tmp_path):
    lund = require_real_data("geotagged", "lund")
    out = tmp_path / "lund.csv"
    proc = run("collect", lund, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "29 of 29 images have positions" in proc.stdout and proc.stderr == ""
    lines = out.read_text().splitlines()
    assert lines[0].startswith("path,lat,lon") and len(lines) == 30
    c = read_manifest(out)
    files = sorted(lund.glob("*.jpg"))
    assert [os.path.realpath(p) for p in c.paths] == [os.path.realpath(f) for f in files]
    ref = np.array([(read_gps(f).lat, read_gps(f).lon) for f in files])
    assert np.abs(c.lat - ref[:, 0]).max() < 1e-7 and np.abs(c.lon - ref[:, 1]).max() < 1e-7
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_collect_lists_files_without_gps(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "S", 2: (33.0, 52.0, 7.68), 3: "E", 4: (151.0, 12.0, 33.48)})
    Image.new("RGB", (8, 8)).save(photos / "a.jpg", exif=exif)
    Image.new("RGB", (8, 8)).save(photos / "b.jpg")  # no EXIF
    (photos / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # corrupt
    out = tmp_path / "m.csv"
    proc = run("collect", photos, "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    err = proc.stderr.splitlines()
    assert len(err) == 2 and "Traceback" not in proc.stderr
    assert err[0].startswith("skipped") and "b.jpg" in err[0] and "no GPS" in err[0]
    assert "c.png" in err[1] and "cannot read" in err[1]
    lines = out.read_text().splitlines()
    assert lines == ["path,lat,lon", "photos/a.jpg,-33.8688,151.2093"]
    loud = run("collect", photos, "-o", out)
    assert "1 of 3 images have positions" in loud.stdout


def test_collect_errors_are_one_line(tmp_path):
    (tmp_path / "none").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "none" / "x.jpg")
    out = tmp_path / "m.csv"
    assert_one_line_error(run("collect", tmp_path / "none", "-o", out), "usable GPS", "x.jpg")
    assert not out.exists()
    assert_one_line_error(run("collect", tmp_path / "missing", "-o", out), "not a folder")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("collect", tmp_path / "empty", "-o", out), "no images")
    lund = require_real_data("geotagged", "lund")
    assert_one_line_error(run("collect", lund, "-o", tmp_path / "no" / "m.csv"), "folder")
    assert_one_line_error(run("collect", lund, "-o", tmp_path / "m.parquet"), "CSV")
