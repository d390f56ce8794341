"""The coarse codec: exact byte size, round trips, thresholds from data, invariance learning."""

import numpy as np
import pytest

from placeprint.codec import CoarseCodec
from placeprint.errors import PlaceprintError


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(40, 96))
    return (rng.normal(size=(3000, 40)) * np.linspace(3, 0.2, 40)) @ basis


@pytest.mark.parametrize("code_size,bits", [(8, 1), (8, 2), (6, 4), (4, 1), (3, 3)])
def test_code_size_is_exact_and_round_trip_is_stable(data, code_size, bits):
    codec = CoarseCodec(code_size=code_size, bits_per_dim=bits).fit(data)
    codes = codec.encode(data[:500])
    assert codes.shape == (500, code_size) and codes.dtype == np.uint8
    assert codec.get_code_size() == code_size
    assert codec.n_dims * bits == 8 * code_size
    # decode gives level centroids; encoding them again gives the same code
    again = codec.quantize(codec.decode(codes))
    np.testing.assert_array_equal(again, codes)


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_levels_are_equally_populated_and_gray_coded(data, bits):
    codec = CoarseCodec(code_size=6, bits_per_dim=bits).fit(data)
    Z = codec.transform(data)
    idx = codec._level_index(Z)
    frac = np.stack([(idx == j).mean(axis=0) for j in range(1 << bits)])
    np.testing.assert_allclose(frac, 1 / (1 << bits), atol=0.01)
    # the first n_dims bits are the "above the median" bit of every dimension
    bitsarr = np.unpackbits(codec.encode(data), axis=1, bitorder="little")
    median = np.median(Z, axis=0)
    np.testing.assert_array_equal(bitsarr[:, : codec.n_dims], (Z > median).astype(np.uint8))


def test_one_bit_codes_are_signs_of_the_top_principal_components(data):
    codec = CoarseCodec(code_size=2).fit(data)
    X = data - data.mean(0)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    ref = X @ Vt[:16].T
    Z = codec.transform(data)
    for i in range(16):  # same axis up to sign, unit variance on the database
        corr = np.corrcoef(ref[:, i], Z[:, i])[0, 1]
        assert abs(corr) > 0.999
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=1e-3)


def test_invariant_projection_ignores_a_nuisance_direction():
    rng = np.random.default_rng(1)
    n = 2000
    places = rng.normal(size=(n, 4)) * np.array([1.0, 1.0, 1.0, 1.0])
    nuisance = rng.normal(size=(n, 1)) * 6.0  # large variance, differs between conditions
    A = np.hstack([places, nuisance]) + rng.normal(size=(n, 5)) * 0.05
    B = np.hstack([places, -nuisance]) + rng.normal(size=(n, 5)) * 0.05
    plain = CoarseCodec(code_size=1, bits_per_dim=2).fit(A)
    inv = CoarseCodec(code_size=1, bits_per_dim=2).fit(A, paired=B)
    agree = lambda c: (c.encode(A) == c.encode(B)).all(axis=1).mean()  # noqa: E731
    assert agree(inv) > 0.5 > agree(plain)
    assert np.all(inv.noise_ < 0.5)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((10, 3, 2)), "2-D"),
        (np.full((100, 30), np.nan), "NaN"),
        (np.zeros((5, 30)), "at least"),
    ],
)
def test_bad_input(bad, match):
    with pytest.raises(PlaceprintError, match=match):
        CoarseCodec(code_size=2).fit(bad)


def test_wrong_dimension_and_unfitted(data):
    codec = CoarseCodec(code_size=2)
    with pytest.raises(PlaceprintError, match="not fitted"):
        codec.encode(data)
    codec.fit(data)
    with pytest.raises(PlaceprintError, match="dimensions"):
        codec.encode(data[:, :10])
    with pytest.raises(PlaceprintError):
        CoarseCodec(code_size=3, bits_per_dim=5)
    with pytest.raises(PlaceprintError):
        CoarseCodec(code_size=0)


def test_state_round_trip(data):
    codec = CoarseCodec(code_size=5, bits_per_dim=2).fit(data)
    again = CoarseCodec.from_state(codec.state())
    np.testing.assert_array_equal(again.encode(data), codec.encode(data))


def test_largest_code_size_fits_the_data(data):
    from placeprint.codec.coarse import largest_code_size

    assert largest_code_size(3000, 48) == 6  # 48 one-bit dimensions
    assert largest_code_size(3000, 48, bits_per_dim=2) == 12
    assert largest_code_size(20, 96) == 1  # 10 rows -> at most 10 dimensions -> 1 byte
    assert largest_code_size(10, 4) == 0
    size = largest_code_size(len(data), 20)
    CoarseCodec(code_size=size).fit(data[:, :20])  # fits exactly
    with pytest.raises(PlaceprintError):
        CoarseCodec(code_size=size + 1).fit(data[:, :20])


def test_agreement_order_puts_the_most_stable_signs_first():
    rng = np.random.default_rng(4)
    places = rng.normal(size=(1500, 40)) * np.linspace(3, 0.5, 40)
    # the change between conditions is large on some directions, small on others
    change = rng.normal(size=(1500, 40)) * rng.uniform(0.1, 2.0, size=40)
    X, Y = places.astype(np.float32), (places + change).astype(np.float32)
    codec = CoarseCodec(code_size=2, order="agreement").fit(X, paired=Y[:1000])
    bits = lambda A: np.unpackbits(codec.encode(A), axis=1, bitorder="little")  # noqa: E731
    agree = (bits(X[:1000]) == bits(Y[:1000])).mean(axis=0)
    assert np.all(np.diff(agree) <= 1e-9)  # non-increasing on the pairs it learned from
    eigen = CoarseCodec(code_size=2).fit(X, paired=Y[:1000])
    bits_e = lambda A: np.unpackbits(eigen.encode(A), axis=1, bitorder="little")  # noqa: E731
    # same dimensions, another order: the key's first 8 bits agree at least as often
    first8 = (bits_e(X[:1000]) == bits_e(Y[:1000])).mean(axis=0)[:8].mean()
    assert agree[:8].mean() >= first8
    with pytest.raises(PlaceprintError, match="order"):
        CoarseCodec(order="random")
