"""The overloaded hash index: lookups against a brute-force filter, storage, file format."""

import struct

import numpy as np
import pytest

from placeprint.codec import CoarseCodec
from placeprint.errors import PlaceprintError
from placeprint.index import OverloadedIndex
from placeprint.index.bitpack import codes_to_int, pack_fields, unpack_fields
from placeprint.index.fileformat import VERSION
from placeprint.sequence.matcher import SequenceMatcher


@pytest.fixture(scope="module")
def built():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 64)).astype(np.float32)
    codec = CoarseCodec(code_size=6).fit(X)
    index = OverloadedIndex(codec, describer={"name": "test"}, key_frames=4)
    index.add(X[:3000])
    index.add(X[3000:])
    return X, codec, index


@pytest.mark.parametrize("width", [1, 7, 24, 33, 63, 64])
def test_bitpack_round_trip(width):
    rng = np.random.default_rng(width)
    hi = 2**width if width < 64 else 2**64
    values = rng.integers(0, hi, size=1000, dtype=np.uint64, endpoint=False)
    words = pack_fields(values, width)
    np.testing.assert_array_equal(unpack_fields(words, width, 0, 1000), values)
    np.testing.assert_array_equal(unpack_fields(words, width, 517, 3), values[517:520])


def test_lookup_equals_brute_force_filter(built):
    X, codec, index = built
    codes = codec.encode(X)
    ints = codes_to_int(codes)
    # sequence key by hand: the low bits of the codes of p, p-1, p-2, p-3 (place 0 repeated)
    layout = index.layout
    assert sum(layout) == index.key_bits and len(layout) == 4
    keys = np.zeros(len(X), np.int64)
    shift = 0
    for lag, bits in enumerate(layout):
        for p in range(len(X)):
            part = int(ints[max(p - lag, 0)]) & ((1 << bits) - 1)
            keys[p] |= part << shift
        shift += bits
    np.testing.assert_array_equal(index.keys_of_codes(codes), keys)
    for key in [0, 1, 5, int(keys[0]), int(keys[4999]), (1 << index.key_bits) - 1]:
        np.testing.assert_array_equal(index.lookup(key), np.flatnonzero(keys == key))
    total = sum(len(index.lookup(k)) for k in range(1 << index.key_bits))
    assert total == index.ntotal == 5000


def test_rest_bits_are_the_code_without_the_key(built):
    X, codec, index = built
    ints = codes_to_int(codec.encode(X[[0, 17, 4999]]))
    own = np.uint64(index.own_bits)
    np.testing.assert_array_equal(index.rest_of([0, 17, 4999]), ints >> own)
    np.testing.assert_array_equal(index.reconstruct(), codec.encode(X))


def test_bytes_per_place_counts_every_structure(built, tmp_path):
    _, codec, index = built
    n, k = index.ntotal, index.key_bits
    expected = {
        "rest_codes": ((n * (48 - index.own_bits) + 63) // 64 + 1) * 8,
        "bucket_ids": ((n * 13 + 63) // 64 + 1) * 8,  # ceil(log2 5000) = 13 bits
        "bucket_offsets": ((1 << k) + 1) * 4,
        "bucket_bitmap": ((1 << k) + 7) // 8,
    }
    parts = index.nbytes()
    for name, value in expected.items():
        assert parts[name] == value
    assert parts["codec_state"] == sum(a.nbytes for a in codec.state().values())
    assert index.bytes_per_place() == pytest.approx(sum(parts.values()) / n)
    # the counted parts are exactly the file a query needs: codes, buckets, header and the
    # codec's whole projection from raw descriptors (float16, d x n_dims)
    size = index.save(tmp_path / "a.idx")
    assert size == sum(parts.values())
    d = codec.input_dim
    assert codec.state()["projection"].nbytes == d * codec.n_dims * 2
    assert parts["codec_state"] >= d * codec.n_dims * 2 + d * 4


def test_bitmap_marks_exactly_the_non_empty_buckets(built, tmp_path):
    _, _, index = built
    k = index.key_bits
    bits = np.unpackbits(index.occupied, bitorder="little")[: 1 << k].astype(bool)
    nonempty = [len(index.lookup(b)) > 0 for b in range(1 << k)]
    np.testing.assert_array_equal(bits, nonempty)
    index.save(tmp_path / "b.idx")
    np.testing.assert_array_equal(OverloadedIndex.load(tmp_path / "b.idx").occupied, index.occupied)


def test_default_key_gives_small_colliding_buckets(built):
    _, _, index = built
    info = index.info()
    assert 1.5 <= info["bucket_size_mean"] <= 6
    assert info["key_bits"] == 11  # round(log2(5000 / 2.5)): small maps get small buckets
    big = OverloadedIndex(index.codec, key_frames=1)
    big.add_codes(np.zeros((40_000, 6), np.uint8))
    assert big.key_bits == 12  # round(log2(40000 / 8))


def test_save_load_round_trip(built, tmp_path):
    X, codec, index = built
    path = tmp_path / "x.idx"
    index.save(path)
    again = OverloadedIndex.load(path)
    assert again.ntotal == index.ntotal and again.key_bits == index.key_bits
    assert isinstance(again.rest, np.memmap) or isinstance(again.rest.base, np.memmap)
    np.testing.assert_array_equal(again.reconstruct(), index.reconstruct())
    np.testing.assert_array_equal(again.codec.encode(X[:10]), codec.encode(X[:10]))
    assert again.describer == {"name": "test"}
    q = X[100:130]
    a, b = SequenceMatcher(index).match(q), SequenceMatcher(again).match(q)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.ops == b.ops


def test_add_after_build_rebuilds(built):
    X, codec, _ = built
    index = OverloadedIndex(codec)
    index.add(X[:1000])
    assert index.ntotal == 1000 and len(index.lookup(0)) >= 0
    index.add(X[1000:2000])
    np.testing.assert_array_equal(index.reconstruct(), codec.encode(X[:2000]))


def _corrupt(path, out, fn):
    data = bytearray(path.read_bytes())
    fn(data)
    out.write_bytes(bytes(data))
    return out


def test_bad_files_give_clear_errors_and_never_leave_partial_files(built, tmp_path):
    _, _, index = built
    good = tmp_path / "good.idx"
    index.save(good)
    cases = {
        "truncated": (lambda d: d.__delitem__(slice(len(d) // 2, None)), "truncated"),
        "flipped": (lambda d: d.__setitem__(len(d) // 2, d[len(d) // 2] ^ 0xFF), "checksum"),
        "foreign": (lambda d: d.__setitem__(slice(0, 8), b"GIF89a\0\0"), "magic"),
        "version": (
            lambda d: d.__setitem__(slice(8, 12), struct.pack("<I", VERSION + 1)),
            "version",
        ),
        "empty": (lambda d: d.__delitem__(slice(0, None)), "too short"),
    }
    for name, (fn, message) in cases.items():
        bad = _corrupt(good, tmp_path / f"{name}.idx", fn)
        with pytest.raises(PlaceprintError, match=message):
            OverloadedIndex.load(bad)
    with pytest.raises(PlaceprintError, match="not found"):
        OverloadedIndex.load(tmp_path / "missing.idx")
    with pytest.raises(PlaceprintError, match="folder does not exist"):
        index.save(tmp_path / "nope" / "x.idx")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_empty_and_unfitted(built):
    _, codec, _ = built
    with pytest.raises(PlaceprintError, match="empty"):
        OverloadedIndex(codec).info()
    with pytest.raises(PlaceprintError, match="not fitted"):
        OverloadedIndex(CoarseCodec())
    with pytest.raises(PlaceprintError, match="codes must be"):
        OverloadedIndex(codec).add_codes(np.zeros((3, 5), np.uint8))


def test_merge_joins_independent_parts(built):
    X, codec, _ = built
    a, b = OverloadedIndex(codec), OverloadedIndex(codec)
    a.add(X[:2000])
    b.add(X[2000:])
    merged = OverloadedIndex.merge([a, b])
    whole = OverloadedIndex(codec)
    whole.add(X)
    np.testing.assert_array_equal(merged.reconstruct(), whole.reconstruct())
    assert merged.key_bits == whole.key_bits
    other = OverloadedIndex(CoarseCodec(code_size=6).fit(X[::-1]))
    other.add(X[:10])
    with pytest.raises(PlaceprintError, match="different codecs"):
        OverloadedIndex.merge([a, other])


def test_code_size_for_budget_by_hand():
    from placeprint.index.overloaded import code_size_for_budget

    # 10M places: 20-bit key, 24-bit ids. 7 bytes -> 56 - 20 + 24 = 60 bits <= 64;
    # 8 bytes -> 64 - 20 + 24 = 68 bits > 64.
    assert code_size_for_budget(10_000_000) == 7
    assert code_size_for_budget(10_000_000, budget_bytes=9.0) == 8
    assert code_size_for_budget(10_000_000, budget_bytes=5.0) == 4  # 32 - 20 + 24 = 36 <= 40


def test_places_in_a_bucket_are_sorted_by_their_next_code_bits(built):
    X, codec, index = built
    from placeprint.index.overloaded import rest_prefix

    ids = unpack_fields(index.ids, index.id_bits, 0, index.ntotal).astype(np.int64)
    rest = index.rest_of(ids)
    p = index.prefix_bits
    assert p == min(16, index.rest_bits)
    # hand check of the prefix: rest bit 0 becomes the most significant of p bits
    assert int(rest_prefix(np.array([1], np.uint64), p)[0]) == 1 << (p - 1)
    assert int(rest_prefix(np.array([0b10], np.uint64), p)[0]) == 1 << (p - 2)
    prefix = rest_prefix(rest, p).astype(np.int64)
    for key in range(1 << index.key_bits):
        a, b = int(index.offsets[key]), int(index.offsets[key + 1])
        assert np.all(np.diff(prefix[a:b]) >= 0)
    assert np.all(np.diff(index.lookup(int(np.argmax(np.diff(index.offsets))))) > 0)


def test_files_of_the_first_format_keep_their_bucket_order(built, tmp_path):
    """An index saved before buckets were sorted loads with prefix_bits 0: the matcher
    then skips crowded buckets (never reads a wrong part); a bad value is refused."""
    from placeprint.index.fileformat import write_container
    from placeprint.index.overloaded import FILE_KIND

    X, codec, index = built
    meta, arrays = index._container()
    del meta["prefix_bits"]
    write_container(tmp_path / "old.idx", FILE_KIND, meta, arrays)
    old = OverloadedIndex.load(tmp_path / "old.idx")
    assert old.prefix_bits == 0
    q = X[100:130]
    np.testing.assert_array_equal(
        SequenceMatcher(old).match(q).positions,
        SequenceMatcher(index, narrow_probes=0).match(q).positions,
    )
    meta["prefix_bits"] = index.rest_bits + 1
    write_container(tmp_path / "bad.idx", FILE_KIND, meta, arrays)
    with pytest.raises(PlaceprintError, match="bucket order"):
        OverloadedIndex.load(tmp_path / "bad.idx")
