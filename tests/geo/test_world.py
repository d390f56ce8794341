"""Simulated world: determinism, similarity falling with distance, signal vs no signal."""

import numpy as np
import pytest
from conftest import require_real_data

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import haversine_km, pairwise_km
from placeprint.geo.world import (
    WorldField,
    read_photo_locations,
    simulate_world,
    split_world,
)


@pytest.fixture(scope="module")
def locations():
    require_real_data("world", "photo_locations_100k.csv")
    return read_photo_locations()


def _toy_pool(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-60, 60, n), rng.uniform(-180, 180, n)


def test_deterministic_by_seed():
    lat, lon = _toy_pool()
    a = simulate_world(200, dim=16, lat=lat, lon=lon, seed=7)
    b = simulate_world(200, dim=16, lat=lat, lon=lon, seed=7)
    c = simulate_world(200, dim=16, lat=lat, lon=lon, seed=8)
    np.testing.assert_array_equal(a.descriptors, b.descriptors)
    np.testing.assert_array_equal(a.lat, b.lat)
    assert not np.array_equal(a.descriptors, c.descriptors)
    assert a.descriptors.dtype == np.float32 and a.descriptors.shape == (200, 16)
    np.testing.assert_allclose(np.linalg.norm(a.descriptors, axis=1), 1.0, rtol=1e-5)
    # positions come from the pool rows, moved by about jitter_km (0.5 km per axis)
    moved = haversine_km(a.lat, a.lon, lat[a.source_rows], lon[a.source_rows])
    assert np.all(moved < 5.0) and 0.3 < np.mean(moved) < 1.0
    # the same field evaluated twice, or rebuilt from the seed, gives the same values
    f1, f2 = WorldField(16, seed=3), WorldField(16, seed=3)
    np.testing.assert_array_equal(f1(lat[:5], lon[:5]), f2(lat[:5], lon[:5]))


def test_split_shares_the_field_and_holds_out_rows():
    lat, lon = _toy_pool(400)
    db, q = split_world(300, 100, dim=16, signal=1.0, noise=0.0, jitter_km=0.0, lat=lat, lon=lon)
    assert not set(db.source_rows) & set(q.source_rows)
    # noiseless: each descriptor is the normalised field at its position, same field for both
    field = WorldField(16, seed=0)
    for world in (db, q):
        f = field(world.lat, world.lon)
        expected = f / np.linalg.norm(f, axis=1, keepdims=True)
        np.testing.assert_allclose(world.descriptors, expected, atol=1e-5)
    with pytest.raises(PlaceprintError):
        simulate_world(10, dim=8, lat=lat, lon=lon, field=field)  # dim mismatch
    with pytest.raises(PlaceprintError):
        simulate_world(10, lat=lat)


def test_field_kernel_matches_its_definition():
    # E[f(x).f(y)] / dim = mean over scales of exp(-|x - y|^2 / (2 sigma^2)), chord on the
    # unit sphere; check at a few separations along the equator, averaged over seeds
    seps_km = np.array([0.0, 20.0, 300.0, 2000.0])
    lon = np.degrees(seps_km / 6371.0088)
    lat = np.zeros_like(lon)
    scales = np.array([25.0, 750.0])
    got = []
    for seed in range(200):
        f = WorldField(64, tuple(scales), seed=seed)(lat, lon)
        got.append(f @ f[0] / 64)
    got = np.mean(got, axis=0)
    chord = 2 * np.sin(seps_km / 6371.0088 / 2)
    sigma = scales / 6371.0088
    expected = np.mean(np.exp(-(chord[:, None] ** 2) / (2 * sigma[None] ** 2)), axis=1)
    np.testing.assert_allclose(got, expected, atol=0.05)


def test_similarity_falls_with_distance(locations):
    world = simulate_world(2500, signal=1.0, noise=0.5, lat=locations[0], lon=locations[1])
    d = pairwise_km(world.lat, world.lon)
    cos = world.descriptors @ world.descriptors.T
    upper = np.triu(np.ones_like(d, dtype=bool), 1)
    near = cos[upper & (d <= 1)].mean()
    mid = cos[upper & (d > 25) & (d <= 100)].mean()
    far = cos[upper & (d > 3000)].mean()
    assert near > mid + 0.1 and mid > far + 0.2 and abs(far) < 0.1


def _nn_errors(db, q):
    nn = np.argmax(q.descriptors @ db.descriptors.T, axis=1)  # brute-force cosine 1-NN
    return haversine_km(q.lat, q.lon, db.lat[nn], db.lon[nn])


def test_no_signal_means_chance_level(locations):
    db, q = split_world(3000, 600, signal=0.0, lat=locations[0], lon=locations[1], seed=1)
    acc = np.mean(_nn_errors(db, q) <= 2500)
    # chance: a uniformly random database photo; exact expectation over the database
    chance = np.mean(haversine_km(q.lat[:, None], q.lon[:, None], db.lat, db.lon) <= 2500)
    shuffled = np.random.default_rng(0).permutation(len(db))[: len(q)]
    acc_shuffled = np.mean(haversine_km(q.lat, q.lon, db.lat[shuffled], db.lon[shuffled]) <= 2500)
    se = np.sqrt(chance * (1 - chance) / len(q))
    assert abs(acc - chance) < 4 * se and abs(acc_shuffled - chance) < 4 * se
    db1, q1 = split_world(3000, 600, signal=1.0, noise=0.5, lat=locations[0], lon=locations[1])
    assert np.mean(_nn_errors(db1, q1) <= 2500) > chance + 0.5


def test_strong_signal_dense_database_finds_the_city(locations):
    db, q = split_world(
        20000, 300, signal=1.0, noise=0.1, lat=locations[0], lon=locations[1], seed=2
    )
    err = _nn_errors(db, q)
    nearest = haversine_km(q.lat[:, None], q.lon[:, None], db.lat, db.lon).min(axis=1)
    assert np.mean(nearest <= 25) > 0.8  # the database is dense enough
    assert np.mean(err <= 25) > 0.75  # and the descriptor 1-NN finds it for most queries


def test_read_photo_locations(locations, tmp_path):
    lat, lon = locations
    assert lat.shape == lon.shape == (100000,)
    assert np.all(np.abs(lat) <= 90) and np.all(np.abs(lon) <= 180)
    with pytest.raises(PlaceprintError):
        read_photo_locations(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("X,Y\n1,2\n")
    with pytest.raises(PlaceprintError):
        read_photo_locations(bad)
