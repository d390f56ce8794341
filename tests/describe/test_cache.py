"""The descriptor cache: resume after an interruption, bad images skipped, both cores."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from placeprint.describe import get
from placeprint.describe.base import Describer
from placeprint.describe.cache import DescriptorCache, describe_collection, image_key
from placeprint.describe.images import load_gray
from placeprint.errors import PlaceprintError


class CountingDescriber(Describer):
    """Mean and std of the grey image; counts how many images it described."""

    name = "counting"

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls = 0
        self.stop_after = stop_after

    @property
    def dim(self) -> int:
        return 2

    def describe(self, images):
        out = []
        for im in images:
            if self.stop_after is not None and self.calls >= self.stop_after:
                raise KeyboardInterrupt
            g = load_gray(im)
            out.append([g.mean(), g.std()])
            self.calls += 1
        return np.array(out, np.float32)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for i in range(10):
        p = tmp_path / "imgs" / f"{i:02d}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 24), dtype=np.uint8)).save(p)
        files.append(p)
    return files


def reference(files):
    return np.array([[load_gray(f).mean(), load_gray(f).std()] for f in files], np.float32)


def test_resumes_after_interruption(folder, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        describe_collection(
            CountingDescriber(stop_after=5), folder, cache=cache, batch=2, progress=False, workers=1
        )
    # two finished batches (4 images) were kept; the interrupted batch was not
    resumed = CountingDescriber()
    result = describe_collection(resumed, folder, cache=cache, batch=2, progress=False, workers=1)
    assert result.from_cache == 4
    assert resumed.calls == 6
    np.testing.assert_allclose(result.descriptors, reference(folder), rtol=1e-6)
    again = CountingDescriber()
    result = describe_collection(again, folder, cache=cache, batch=2, progress=False, workers=1)
    assert again.calls == 0 and result.from_cache == 10


def test_changed_image_is_described_again(folder, tmp_path):
    cache = tmp_path / "cache"
    describe_collection(CountingDescriber(), folder, cache=cache, progress=False, workers=1)
    Image.fromarray(np.full((16, 24), 7, np.uint8)).save(folder[3])
    d = CountingDescriber()
    result = describe_collection(d, folder, cache=cache, progress=False, workers=1)
    assert d.calls == 1
    np.testing.assert_allclose(result.descriptors[3], [7, 0], atol=1e-5)


def test_unreadable_images_are_reported_and_skipped(folder, tmp_path):
    (tmp_path / "imgs" / "bad.png").write_bytes(b"not an image")
    truncated = tmp_path / "imgs" / "trunc.png"
    truncated.write_bytes(folder[0].read_bytes()[:40])
    files = [
        *folder[:3],
        tmp_path / "imgs" / "bad.png",
        truncated,
        tmp_path / "nope.png",
        *folder[3:],
    ]
    result = describe_collection(
        CountingDescriber(), files, cache=None, batch=4, progress=False, workers=1
    )
    assert [name.split("/")[-1] for name, _ in result.failed] == [
        "bad.png",
        "trunc.png",
        "nope.png",
    ]
    assert result.kept == [0, 1, 2, 6, 7, 8, 9, 10, 11, 12]
    np.testing.assert_allclose(result.descriptors, reference(folder), rtol=1e-6)


def test_two_worker_threads_match_serial(folder, tmp_path):
    d = get("seqslam", width=16, height=8, patches=(4,))
    serial = describe_collection(d, folder, cache=None, batch=3, workers=1, progress=False)
    parallel = describe_collection(
        d, folder, cache=tmp_path / "c", batch=3, workers=2, progress=False
    )
    np.testing.assert_array_equal(serial.descriptors, parallel.descriptors)
    np.testing.assert_array_equal(parallel.descriptors, d(folder))


def test_config_change_uses_a_new_cache(folder, tmp_path):
    a = DescriptorCache(tmp_path, get("seqslam", patches=(8,)))
    b = DescriptorCache(tmp_path, get("seqslam", patches=(16,)))
    assert a.folder != b.folder
    a.put([image_key(folder[0])], np.zeros((1, 2048), np.float32))
    assert image_key(folder[0]) in DescriptorCache(tmp_path, get("seqslam", patches=(8,)))
    assert image_key(folder[0]) not in DescriptorCache(tmp_path, get("seqslam", patches=(16,)))


def test_damaged_shard_is_ignored(folder, tmp_path):
    d = CountingDescriber()
    describe_collection(d, folder[:4], cache=tmp_path, batch=4, progress=False, workers=1)
    (shard,) = list(tmp_path.glob("counting-*/shard-*.npz"))
    shard.write_bytes(shard.read_bytes()[:50])
    again = CountingDescriber()
    describe_collection(again, folder[:4], cache=tmp_path, batch=4, progress=False, workers=1)
    assert again.calls == 4


def test_single_path_instead_of_list_is_a_clear_error(folder):
    with pytest.raises(PlaceprintError, match="list of images"):
        get("seqslam")(str(folder[0]))
