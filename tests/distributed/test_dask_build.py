"""The Dask path of ``index build``: the same index as one machine, resumed builds, a
worker killed mid-build. Local clusters start in a few seconds each."""

import os
import re
import threading
import time

import numpy as np
import pytest
from conftest import require_real_data, run_cli

pytest.importorskip("distributed")

from placeprint.distributed.runner import DaskRunner  # noqa: E402

GENERATION = re.compile(rb'"generation": "[0-9a-f]{12}"')


def same_index_bytes(a, b) -> bool:
    """Byte-identical but for the random generation id (and the checksum over it)."""
    x, y = (GENERATION.sub(b'"generation": "000000000000"', p.read_bytes()) for p in (a, b))
    return len(x) == len(y) and x[:-4] == y[:-4]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = require_real_data("nordland", "summer").resolve()
    folder = tmp_path_factory.mktemp("frames")
    for f in sorted(root.iterdir())[:150]:
        (folder / f.name).symlink_to(f)
    return folder


def test_cluster_build_equals_single_machine_build(frames, tmp_path):
    single = run_cli("index", "build", frames, "-o", tmp_path / "a.ppidx", "-q")
    assert single.returncode == 0, single.stderr
    dask = run_cli("index", "build", frames, "-o", tmp_path / "b.ppidx", "--workers", "2",
                   "--shard-size", "40")  # fmt: skip
    assert dask.returncode == 0, dask.stderr
    assert "Dask dashboard: http" in dask.stderr
    assert same_index_bytes(tmp_path / "a.ppidx", tmp_path / "b.ppidx")
    assert not (tmp_path / ".b.ppidx.shards").exists()  # finished: nothing left to resume


def test_a_resumed_build_reuses_finished_shards(frames, tmp_path):
    from placeprint import describe
    from placeprint.sources import describe_files

    files = sorted(frames.iterdir())[:60]
    d = describe.get("seqslam")
    expect, kept = describe_files(d, files, progress=False, cache=False)
    work = tmp_path / "shards"
    with DaskRunner(workers=1, shard_size=25, work_dir=work, processes=False, quiet=True) as r:
        first, _ = r.describe(d, files[:50])  # two shards of 25 finished ("then stopped")
    assert len(list(work.glob("shard-*.npz"))) == 2
    with DaskRunner(workers=1, shard_size=25, work_dir=work, processes=False, quiet=True) as r:
        X, kept_again = r.describe(d, files)
        assert r.reused_shards == 2  # only the third shard was described
    np.testing.assert_array_equal(X, expect)
    assert kept_again == kept


def test_descriptors_stream_to_disk_and_the_codec_fits_on_its_sample(frames, tmp_path):
    from placeprint import describe
    from placeprint.codec import CoarseCodec
    from placeprint.codec.sample import fit_on_sample, fit_rows
    from placeprint.sources import describe_files

    files = sorted(frames.iterdir())[:60]
    d = describe.get("seqslam")
    expect, _ = describe_files(d, files, progress=False, cache=False)
    with DaskRunner(workers=1, shard_size=25, work_dir=tmp_path, processes=False, quiet=True) as r:
        X, _ = r.describe(d, files)
        assert isinstance(X, np.memmap)  # the client holds no more than a shard
        np.testing.assert_array_equal(X, expect)
        codec = fit_on_sample(CoarseCodec(code_size=2), X, limit=40)
        codes = r.encode(codec, X)
    by_hand = CoarseCodec(code_size=2).fit(expect[fit_rows(60, 40)])  # rows floor(i * 1.5)
    np.testing.assert_array_equal(codes, by_hand.encode(expect))


def test_a_killed_worker_loses_and_duplicates_nothing(frames, tmp_path):
    from placeprint import describe
    from placeprint.sources import describe_files

    files = sorted(frames.iterdir())[:150]
    d = describe.get("gist")
    expect, _ = describe_files(d, files, progress=False, cache=False)
    with DaskRunner(workers=2, shard_size=10, quiet=True) as r:
        out = {}

        def run():
            out["X"], out["kept"] = r.describe(d, files)

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.time() + 30
        while time.time() < deadline and not any(r.client.processing().values()):
            time.sleep(0.05)
        victim = next(w for w, tasks in r.client.processing().items() if tasks)
        try:
            r.client.run(os._exit, 1, workers=[victim])  # the worker process dies mid-shard
        except Exception:
            pass
        worker.join(120)
        assert victim not in r.client.scheduler_info()["workers"]  # it died (and was replaced)
    assert not worker.is_alive()
    np.testing.assert_allclose(out["X"], expect, rtol=1e-6)
    assert out["kept"] == list(range(150))


def test_an_unreadable_image_is_reported_and_skipped(frames, tmp_path):
    folder = tmp_path / "some"
    folder.mkdir()
    for f in sorted(frames.iterdir())[:140]:
        (folder / f.name).symlink_to(f.resolve())
    (folder / "images-0000705.png").write_bytes(b"not an image")  # sorts into the middle
    proc = run_cli("index", "build", folder, "-o", tmp_path / "x.ppidx", "--workers", "1",
                   "--shard-size", "50")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and "images-0000705.png" in proc.stderr
    assert "140 places" in proc.stdout


def test_workers_get_describers_with_their_own_thread_count(frames):
    from placeprint import describe
    from placeprint.distributed.runner import with_threads

    deep = describe.get("cnn_gem")
    deep.fit(sorted(frames.iterdir())[:40])
    one = with_threads(deep, 1)
    assert one is not deep and one.threads == 1 and one.backbone.threads == 1
    assert deep.threads == 2 and deep.backbone.threads == 2  # the client's is left alone
    assert one.config() == deep.config()  # shard names and cache entries do not change
    some = [str(f) for f in sorted(frames.iterdir())[:8]]
    np.testing.assert_array_equal(one(some), deep(some))  # the same descriptors
    plain = describe.get("seqslam")
    assert with_threads(plain, 1) is plain


def test_assembling_reads_each_shards_descriptors_once(tmp_path, monkeypatch):
    X = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    results = {}
    for i, part in enumerate([X[:0], X[:3], X[3:]]):  # the first shard kept no image
        results[i] = tmp_path / f"shard{i}.npz"
        failed = '[["a.png", "unreadable"]]' if i == 0 else "[]"
        np.savez(results[i], X=part, kept=np.arange(len(part)), failed=failed)
    reads = []
    load = DaskRunner._load_shard
    monkeypatch.setattr(
        DaskRunner, "_load_shard",
        staticmethod(lambda e, descriptors=True: (reads.append(e) if descriptors else None)
                     or load(e, descriptors)),
    )  # fmt: skip
    runner = DaskRunner.__new__(DaskRunner)
    runner.work_dir = tmp_path
    out, kept = runner._assemble([range(0, 1), range(1, 4), range(4, 6)], results)
    assert out.shape == (5, 7)  # the descriptor length comes from the first non-empty shard
    np.testing.assert_array_equal(out, X)
    assert kept == [1, 2, 3, 4, 5]
    assert reads == [results[1], results[2]]
