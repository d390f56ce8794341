"""Land-sea mask and priors against known places, a brute-force grid and hand arithmetic."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import haversine_km
from placeprint.geo.land import is_land, land_fraction, land_weights, photo_density_prior


def test_is_land_known_places_and_wrapping():
    lat = np.array([52.52, 55.70, 30.0, -33.87, 0.0])
    lon = np.array([13.405, 13.19, -40.0, 151.21, -140.0])
    assert is_land(lat, lon).tolist() == [True, True, False, True, False]
    assert is_land(lat, lon + 360).tolist() == is_land(lat, lon).tolist()
    assert is_land(52.52, 13.405 - 360).item() is True and is_land(52.52, 13.405).shape == ()
    assert is_land(-89.9, 0.0) and not is_land(89.9, 0.0)  # Antarctica; Arctic Ocean
    with pytest.raises(PlaceprintError, match="row 1"):
        is_land([0.0, np.nan], [0.0, 0.0])


def test_land_fraction_inland_ocean_and_poles():
    lat = np.array([52.52, 30.0, -89.0, 89.0])
    lon = np.array([13.405, -40.0, 45.0, 0.0])
    assert land_fraction(lat, lon, 50).tolist() == [1.0, 0.0, 1.0, 0.0]


def test_coastal_fraction_matches_a_brute_force_grid():
    lat0, lon0, r = 38.72, -9.14, 50.0  # Lisbon: the Tagus estuary and the Atlantic
    est = land_fraction(lat0, lon0, r, samples=4096, rng=1)[0]
    glat, glon = np.meshgrid(np.arange(38.2, 39.3, 0.01), np.arange(-9.9, -8.4, 0.01))
    inside = haversine_km(lat0, lon0, glat, glon) <= r
    from global_land_mask import globe

    ref = globe.is_land(glat[inside], glon[inside]).mean()
    assert 0.2 < ref < 0.9 and 0 < est < 1
    assert est == pytest.approx(ref, abs=0.03)
    assert land_fraction(lat0, lon0, r, rng=7) == pytest.approx(land_fraction(lat0, lon0, r, rng=7))


def test_land_weights_floor():
    lat, lon = np.array([52.52, 30.0, 38.72]), np.array([13.405, -40.0, -9.14])
    w = land_weights(lat, lon, radius_km=50, floor=0.1, rng=3)
    frac = land_fraction(lat, lon, 50, rng=3)
    assert w[0] == 1.0 and w[1] == pytest.approx(0.1)
    assert w[2] == pytest.approx(0.1 + 0.9 * frac[2]) and 0.1 < w[2] < 1
    with pytest.raises(PlaceprintError, match="floor"):
        land_weights(lat, lon, floor=1.5)
    with pytest.raises(PlaceprintError, match="radius_km"):
        land_fraction(lat, lon, 0)


def test_photo_density_prior():
    p = photo_density_prior([3, 0, 1, 6], smoothing=1.0)
    assert p.tolist() == pytest.approx([4 / 14, 1 / 14, 2 / 14, 7 / 14])
    assert p.sum() == pytest.approx(1.0)
    assert photo_density_prior([2, 0, 2], smoothing=0).tolist() == [0.5, 0.0, 0.5]
    for bad, s in [([1, -1], 1.0), ([], 1.0), ([[1, 2]], 1.0), ([0, 0], 0.0), ([1], -1.0)]:
        with pytest.raises(PlaceprintError):
            photo_density_prior(bad, smoothing=s)


def test_bit_packed_mask_equals_the_package():
    """Our one-bit-a-cell copy answers exactly like global_land_mask itself."""
    from global_land_mask import globe

    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(-90, 90, 50_000), rng.uniform(-180, 180, 50_000)
    np.testing.assert_array_equal(is_land(lat, lon), globe.is_land(lat.copy(), lon.copy()))


def test_packed_mask_is_kept_mapped_and_a_broken_copy_ignored(tmp_path, monkeypatch):
    """The packed bits are written to the cache once; later masks map that file and answer
    like the package; a truncated or foreign copy is not used."""
    from global_land_mask import globe

    from placeprint.geo.land import _load_cached_bits, _PackedMask

    monkeypatch.setenv("PLACEPRINT_CACHE", str(tmp_path))
    first = _PackedMask()
    (kept,) = (tmp_path / "land").glob("globe-mask-*.npy")
    again = _PackedMask()
    assert isinstance(again.bits, np.memmap) and not isinstance(first.bits, np.memmap)
    rng = np.random.default_rng(4)
    lat, lon = rng.uniform(-90, 90, 20_000), rng.uniform(-180, 180, 20_000)
    np.testing.assert_array_equal(again.lookup(lat, lon), globe.is_land(lat.copy(), lon.copy()))
    shape = first.bits.shape
    kept.write_bytes(kept.read_bytes()[: 1 << 20])  # truncated
    assert _load_cached_bits(kept, shape) is None
    np.save(kept, np.zeros((3, 4), np.uint8))  # another array
    assert _load_cached_bits(kept, shape) is None
    assert not list((tmp_path / "land").glob(".*.tmp"))  # nothing half-written left
