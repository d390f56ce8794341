"""The command line: every command has --help; results equal the library; bad input is one line."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error
from conftest import run_cli as run
from PIL import Image

from placeprint.codec import CoarseCodec
from placeprint.index import OverloadedIndex
from placeprint.sequence.matcher import SequenceMatcher
from placeprint.sources import state_path_for


@pytest.fixture(scope="module")
def route(tmp_path_factory):
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(3004, 48))
    db = ((noise[:-4] + noise[1:-3] + noise[2:-2] + noise[3:-1]) / 2).astype(np.float32)
    folder = tmp_path_factory.mktemp("cli")
    np.save(folder / "db.npy", db)
    q = (db[1000:1040] + rng.normal(size=(40, 48)) * 0.4).astype(np.float32)
    np.save(folder / "q.npy", q)
    return folder, db, q


@pytest.mark.parametrize(
    "cmd", [[], ["index"], ["index", "build"], ["match"], ["info"], ["bench"], ["describe"]]
)
def test_every_command_has_help(cmd):
    proc = run(*cmd, "--help")
    assert proc.returncode == 0 and "Usage" in proc.stdout


def test_version():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("placeprint ")


def test_build_info_match_equal_the_library(route):
    folder, db, q = route
    idx = folder / "db.ppidx"
    proc = run("index", "build", folder / "db.npy", "-o", idx, "--code-size", "6", "--quiet")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(run("info", idx, "--json").stdout)
    assert info["places"] == 3000 and info["codec"]["code_size"] == 6
    assert info["describer"] == {"name": "npy"}
    assert info["file_bytes"] == idx.stat().st_size
    out = json.loads(run("match", idx, folder / "q.npy", "--json", "-q").stdout)
    codec = CoarseCodec(code_size=6).fit(db)
    index = OverloadedIndex(codec)
    index.add(db)
    ref = SequenceMatcher(index).match(q)
    positions = [a["position"] for a in out["answers"]]
    assert positions == [p for p in ref.positions.tolist() if p >= 0] and out["ops"] == ref.ops
    assert abs(positions[0] - 1039) <= 2
    assert all(a["file"] is None for a in out["answers"])  # descriptors: no files
    table = run("match", idx, folder / "q.npy", "--length", "20", "-q").stdout
    assert "rank" in table and "1\t" in table
    rows = json.loads(
        run("match", idx, folder / "q.npy", "--sliding", "--length", "10", "--json", "-q").stdout
    )
    assert len(rows) == 40 and abs(rows[-1]["position"] - 1039) <= 2


def test_build_and_match_image_folders(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 255, size=(80, 32, 64))
    smooth = (base + np.roll(base, 1, axis=0) + np.roll(base, 2, axis=0)) / 3
    for name, frames in [("db", smooth), ("q", smooth[50:62] * 0.8 + 20)]:
        (tmp_path / name).mkdir()
        for i, f in enumerate(frames):
            Image.fromarray(f.astype(np.uint8)).save(tmp_path / name / f"f{i:04d}.png")
    (tmp_path / "db" / "notes.txt").write_text("not an image")
    idx = tmp_path / "i.ppidx"
    proc = run("index", "build", tmp_path / "db", "-o", idx, "--code-size", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(run("info", idx, "--json").stdout)
    assert info["describer"]["name"] == "seqslam" and info["places"] == 80
    out = json.loads(run("match", idx, tmp_path / "q", "--json", "-q").stdout)
    assert out["frames"] == 12 and out["last_frame"] == "f0011.png"
    best = out["answers"][0]
    assert abs(best["position"] - 61) <= 2
    assert best["file"].endswith(f"f{best['position']:04d}.png")  # the place's own image
    table = run("match", idx, tmp_path / "q", "-q").stdout
    assert f"f{best['position']:04d}.png" in table
    # the query as descriptors (.npy) against the image-built index: the same answer
    assert run("describe", tmp_path / "q", "-o", tmp_path / "q.npy", "-q").returncode == 0
    as_npy = json.loads(run("match", idx, tmp_path / "q.npy", "--json", "-q").stdout)
    assert as_npy["answers"][0]["position"] == best["position"]
    assert as_npy["last_frame"] == "q.npy[11]"


def test_bad_input_is_one_line_and_exit_2(route, tmp_path):
    folder, db, _ = route
    idx = folder / "good.ppidx"
    assert run("index", "build", folder / "db.npy", "-o", idx, "-q").returncode == 0
    bad = np.array(db[:100])
    bad[5, 5] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "wrongdim.npy", db[:50, :10])
    np.save(tmp_path / "3d.npy", np.zeros((4, 4, 4), np.float32))
    (tmp_path / "text.npy").write_text("hello")
    truncated = tmp_path / "trunc.ppidx"
    truncated.write_bytes(idx.read_bytes()[:1000])
    foreign = tmp_path / "foreign.ppidx"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (tmp_path / "empty").mkdir()
    cases = [
        (("index", "build", tmp_path / "missing.npy", "-o", tmp_path / "x.ppidx"), "not found"),
        (("index", "build", tmp_path / "nan.npy", "-o", tmp_path / "x.ppidx"), "NaN"),
        (("index", "build", tmp_path / "3d.npy", "-o", tmp_path / "x.ppidx"), "2-D"),
        (("index", "build", tmp_path / "text.npy", "-o", tmp_path / "x.ppidx"), "cannot read"),
        (("index", "build", tmp_path / "empty", "-o", tmp_path / "x.ppidx"), "no images"),
        (("index", "build", folder / "db.npy", "-o", tmp_path / "no" / "x.ppidx"), "folder"),
        (
            ("index", "build", folder / "db.npy", "-o", tmp_path / "x.ppidx", "--bits", "5"),
            "--bits must be 1-4",
        ),
        (("match", truncated, folder / "q.npy"), "truncated"),
        (("match", foreign, folder / "q.npy"), "magic"),
        (("info", tmp_path / "none.ppidx"), "not found"),
        (("match", idx, tmp_path / "wrongdim.npy"), "dimensions"),
        (("match", idx, tmp_path / "nan.npy"), "NaN"),
        (("match", idx, folder / "q.npy", "--length", "0"), "--length"),
        (("match", idx, folder / "q.npy", "--length", "500"), "longer than the query"),
        (("match", idx, folder / "q.npy", "--frobnicate"), "No such option"),
        (("bench", "nonsense"), "unknown benchmark"),
        (("bench", "headline", "--distractors", "-5"), "--distractors"),
    ]
    for args, fragment in cases:
        assert_one_line_error(run(*args), fragment)
    assert not (tmp_path / "x.ppidx").exists()
    assert not [p for p in Path(tmp_path).iterdir() if p.name.startswith(".")]


def test_describe_list_names_every_registered_describer():
    from placeprint import describe

    proc = run("describe", "--list")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert listed == set(describe.available())


def test_describe_folder_to_npy_equals_library_and_skips_bad_files(tmp_path):
    from placeprint.describe import get

    rng = np.random.default_rng(5)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (32, 64), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "9-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "d.npy"
    proc = run("describe", folder, "-o", out, "--describer", "seqslam")
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and "9-broken.png" in proc.stderr
    X = np.load(out)
    files = sorted(folder.glob("[0-4].png"))
    np.testing.assert_allclose(X, get("seqslam")(files), rtol=1e-6)
    again = run("describe", folder, "-o", out, "--describer", "seqslam", "-q")
    assert again.returncode == 0 and np.array_equal(np.load(out), X)
    small = tmp_path / "small.npy"
    proc = run("describe", folder, "-o", small, "--describer", "tiny",
               "--describer-options", '{"size": 4}', "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(np.load(small), get("tiny", size=4)(files), rtol=1e-6)
    assert np.load(small).shape[1] == get("tiny", size=4).dim < get("tiny").dim


def test_describe_bad_input_is_one_line(tmp_path):
    assert_one_line_error(run("describe", tmp_path, "-o", tmp_path / "x.txt"), ".npy")
    assert_one_line_error(
        run("describe", tmp_path, "-o", tmp_path / "x.npy", "--describer", "nope"), "unknown"
    )
    assert_one_line_error(run("describe"), "--list")
    npy = tmp_path / "x.npy"
    assert_one_line_error(
        run("describe", tmp_path, "-o", npy, "--describer", "tiny", "--describer-options", "{"),
        "JSON object",
    )
    assert_one_line_error(
        run("describe", tmp_path, "-o", npy, "--describer-options", '{"size": 4}',
            "--state", tmp_path / "s.describer"),
        "--state",
    )  # fmt: skip
    assert not npy.exists()


def test_learning_describer_state_is_saved_next_to_the_index(tmp_path):
    from placeprint.describe.base import Describer

    rng = np.random.default_rng(2)
    base = rng.uniform(0, 255, size=(60, 32, 64))
    smooth = (base + np.roll(base, 1, axis=0) + np.roll(base, 2, axis=0)) / 3
    for name, frames in [("db", smooth), ("q", smooth[30:42] * 0.9 + 10)]:
        (tmp_path / name).mkdir()
        for i, f in enumerate(frames):
            Image.fromarray(f.astype(np.uint8)).save(tmp_path / name / f"f{i:04d}.png")
    idx = tmp_path / "t.ppidx"
    proc = run(
        "index",
        "build",
        tmp_path / "db",
        "-o",
        idx,
        "--describer",
        "texton",
        "--describer-options",
        '{"textons": 32}',  # a quick k-means; the state is what is tested
        "--code-size",
        "2",
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    state = state_path_for(idx)  # t.ppidx.<generation>.describer
    assert state.name.startswith("t.ppidx.") and state.is_file()
    info = json.loads(run("info", idx, "--json").stdout)
    assert info["describer"]["name"] == "texton"
    assert info["describer"]["state"] == Describer.load(state).state_fingerprint()
    out = run("match", idx, tmp_path / "q", "--json", "-q")
    assert out.returncode == 0, out.stderr
    # the saved state describes the database exactly as the index saw it
    proc = run("describe", tmp_path / "db", "-o", tmp_path / "d.npy", "--state", state, "-q")
    assert proc.returncode == 0, proc.stderr
    files = sorted((tmp_path / "db").glob("*.png"))
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), Describer.load(state)(files), rtol=1e-5)
    state.unlink()
    assert_one_line_error(run("match", idx, tmp_path / "q", "-q"), state.name)


def test_options_and_paths_a_user_gets_wrong(route, tmp_path):
    folder, db, _ = route
    idx = folder / "opts.ppidx"
    assert run("index", "build", folder / "db.npy", "-o", idx, "-q").returncode == 0
    q = folder / "q.npy"
    assert_one_line_error(run("match", idx, q, "-k", "0", "-q"), "-k must be 1-100")
    assert_one_line_error(run("match", idx, q, "-k", str(10**8), "-q"), "-k must be 1-100")
    assert_one_line_error(run("match", idx, q, "--probes", "0", "-q"), "--probes")
    assert_one_line_error(run("info", folder), "is a directory")
    (tmp_path / "here").mkdir()
    proc = run("index", "build", folder / "db.npy", "-o", tmp_path / "here", "-q")
    assert_one_line_error(proc, "is a directory")
    proc = run("index", "build", folder / "db.npy", "-o", "/proc/placeprint.idx", "-q")
    assert_one_line_error(proc, "cannot write")
    assert not list(tmp_path.glob("here/*"))


def test_file_system_errors_get_their_own_line():
    import errno

    from placeprint.cli import os_error_line

    full = OSError(errno.ENOSPC, "No space left on device", "/x/a.idx")
    assert os_error_line(full).startswith("no space left on the device: /x/a.idx")
    name = "bad\udcff.png".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        assert os_error_line(exc) == "a file name is not valid UTF-8, rename it: bad\\xff.png"
    assert os_error_line(IsADirectoryError(21, "Is a directory", "/tmp")).startswith(
        "is a directory"
    )
    assert os_error_line(ValueError("x")) is None


def test_a_file_name_that_is_not_utf8_is_named(tmp_path):
    import os

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            folder / f"f{i}.png"
        )
    try:
        os.rename(bytes(folder / "f5.png"), bytes(folder) + b"/bad\xff.png")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    proc = run("index", "build", folder, "-o", tmp_path / "x.idx", "-q")
    assert_one_line_error(proc, "not valid UTF-8", "bad\\xff.png")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("x.idx", ".x.idx"))]
