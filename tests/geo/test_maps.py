"""Maps: country outlines, PNG pictures and GeoJSON of modes, checked against known geography."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from PIL import Image

from placeprint.errors import PlaceprintError
from placeprint.geo.cells import AdaptiveCells
from placeprint.geo.distance import haversine_km
from placeprint.geo.maps import (
    WORLD,
    auto_extent,
    circle_rings,
    country_outlines,
    modes_to_geojson,
    plot_cells,
    plot_probability_map,
)


@dataclass
class Mode:
    lat: float
    lon: float
    mass: float
    radius_km: float


@dataclass
class NamedMode(Mode):
    name: str = ""


def _inside_any(rings, lat: float, lon: float) -> int:
    return sum(MplPath(r).contains_point((lon, lat)) for r in rings)


def test_country_outlines_know_where_land_is():
    rings = country_outlines()
    assert len(rings) > 150
    assert country_outlines()[0] is rings[0]  # cached
    assert not rings[0].flags.writeable
    for r in rings:
        assert r.ndim == 2 and r.shape[1] == 2
        assert (np.abs(r[:, 0]) <= 180).all() and (np.abs(r[:, 1]) <= 90).all()
    assert _inside_any(rings, 52.52, 13.40) == 1  # Berlin, in Germany only
    assert _inside_any(rings, -33.87, 151.21) >= 1  # Sydney
    assert _inside_any(rings, -15.8, -47.9) >= 1  # Brasilia
    assert _inside_any(rings, 0.0, -30.0) == 0  # mid-Atlantic
    assert _inside_any(rings, 35.0, -140.0) == 0  # North Pacific


def _blob_grid():
    lat = np.linspace(-89.5, 89.5, 180)
    lon = np.linspace(-179.5, 179.5, 360)
    g_lat, g_lon = np.meshgrid(lat, lon, indexing="ij")
    prob = np.exp(-((g_lat - 48) ** 2 + (g_lon - 10) ** 2) / 20)
    return lat, lon, prob / prob.sum()


def _check_png(path, size):
    assert path.is_file() and path.stat().st_size > 1000
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert abs(img.size[0] - size[0]) <= 2 and abs(img.size[1] - size[1]) <= 2
        return np.asarray(img.convert("RGB"))


def test_probability_map_png(tmp_path):
    lat, lon, prob = _blob_grid()
    modes = [NamedMode(48.1, 11.6, 0.7, 300.0, "Munich"), Mode(40.7, -74.0, 0.2, 150.0)]
    out = plot_probability_map(
        tmp_path / "world.png",
        lat,
        lon,
        prob,
        modes,
        truth=(52.52, 13.40),
        title="t",
        size=(900, 500),
    )
    assert out == tmp_path / "world.png"
    world = _check_png(out, (900, 500))
    zoom = plot_probability_map(
        tmp_path / "zoom.png", *np.meshgrid(lat, lon, indexing="ij"), prob, modes[:1], extent="auto"
    )
    zoomed = _check_png(zoom, (1200, 700))
    empty = plot_probability_map(
        tmp_path / "empty.png", lat, lon, np.zeros_like(prob), size=(900, 500)
    )
    blank = _check_png(empty, (900, 500))
    # the heat shows: the world picture differs from the one with no probability
    assert np.abs(world.astype(int) - blank.astype(int)).sum() > 0
    assert zoomed.std() > 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.png", "world.png", "zoom.png"]


def test_probability_map_bad_input_leaves_nothing(tmp_path):
    lat, lon, prob = _blob_grid()
    with pytest.raises(PlaceprintError, match="lat_grid/lon_grid"):
        plot_probability_map(tmp_path / "a.png", lat[:-1], lon, prob)
    with pytest.raises(PlaceprintError, match="non-negative"):
        plot_probability_map(tmp_path / "a.png", lat, lon, -prob)
    with pytest.raises(PlaceprintError, match="extent"):
        plot_probability_map(tmp_path / "a.png", lat, lon, prob, extent=(10, 0, 0, 10))
    with pytest.raises(PlaceprintError, match="extent"):
        plot_probability_map(tmp_path / "a.png", lat, lon, prob, extent="europe")
    with pytest.raises(PlaceprintError, match="mode 0"):
        plot_probability_map(tmp_path / "a.png", lat, lon, prob, modes=[object()])
    with pytest.raises(PlaceprintError, match="folder does not exist"):
        plot_probability_map(tmp_path / "no" / "a.png", lat, lon, prob)
    assert list(tmp_path.iterdir()) == []


def test_plot_cells_png(tmp_path):
    rng = np.random.default_rng(0)
    lat = np.concatenate([rng.normal(50, 3, 3000), rng.uniform(-60, 70, 1000)])
    lon = np.concatenate([rng.normal(8, 4, 3000), rng.uniform(-180, 180, 1000)])
    cells = AdaptiveCells(max_photos=200, min_photos=5).fit(lat, lon)
    _check_png(plot_cells(tmp_path / "levels.png", cells, size=(800, 450)), (800, 450))
    values = cells.counts_ / cells.counts_.sum()
    _check_png(plot_cells(tmp_path / "p.png", cells, values, extent=(-20, 40, 30, 70)), (1200, 700))
    with pytest.raises(PlaceprintError, match="one per cell"):
        plot_cells(tmp_path / "bad.png", cells, values[:-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["levels.png", "p.png"]


def test_modes_geojson_points_and_circles():
    modes = [
        NamedMode(52.52, 13.40, 0.6, 250.0, "Berlin"),
        Mode(-17.7, 179.6, 0.3, 300.0),  # Fiji, across the antimeridian
        Mode(88.0, 40.0, 0.1, 500.0),  # its disc holds the North Pole
    ]
    gj = json.loads(json.dumps(modes_to_geojson(modes)))
    assert gj["type"] == "FeatureCollection"
    points = [f for f in gj["features"] if f["properties"]["kind"] == "mode"]
    discs = [f for f in gj["features"] if f["properties"]["kind"] == "radius"]
    assert len(points) == 3 and len(discs) == 3
    assert points[0]["geometry"] == {"type": "Point", "coordinates": [13.4, 52.52]}  # lon, lat
    assert points[0]["properties"] == {
        "rank": 1,
        "mass": 0.6,
        "radius_km": 250.0,
        "name": "Berlin",
        "kind": "mode",
    }
    assert points[1]["properties"]["name"] == ""
    assert [d["geometry"]["type"] for d in discs] == ["Polygon", "MultiPolygon", "MultiPolygon"]
    for mode, disc in zip(modes, discs, strict=True):
        geom = disc["geometry"]
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        rings = [np.array(p[0]) for p in polys]
        for ring in rings:
            assert (ring[0] == ring[-1]).all()
            assert (np.abs(ring[:, 0]) <= 180).all() and (np.abs(ring[:, 1]) <= 90).all()
        # the centre is inside the disc
        assert _inside_any(rings, mode.lat, mode.lon) == 1
    # Berlin's ring: every vertex radius_km from the centre (haversine, independent formula)
    ring = np.array(discs[0]["geometry"]["coordinates"][0])
    d = haversine_km(52.52, 13.40, ring[:, 1], ring[:, 0])
    assert np.allclose(d, 250.0, rtol=1e-4)
    # the polar disc is closed through the pole: points near the pole at any lon are inside
    polar = [np.array(p[0]) for p in discs[2]["geometry"]["coordinates"]]
    for lon in (-170.0, -60.0, 0.0, 100.0, 175.0):
        assert _inside_any(polar, 89.5, lon) == 1
    assert _inside_any(polar, 80.0, 40.0 + 180.0 - 360.0) == 0  # 1200 km away, opposite side
    assert [
        f["properties"]["kind"] for f in modes_to_geojson(modes, circles=False)["features"]
    ] == ["mode"] * 3
    assert circle_rings(0.0, 0.0, 0.0) == []


def test_auto_extent_holds_modes_with_margin():
    assert auto_extent([]) == WORLD
    modes = [Mode(48.0, 10.0, 0.5, 100.0), Mode(41.9, 12.5, 0.5, 50.0)]
    lon0, lon1, lat0, lat1 = auto_extent(modes, margin_km=200.0)
    # 300 km north of the first mode and 250 km south of the second are inside
    assert haversine_km(48.0, 10.0, lat1, 10.0) >= 300.0 - 1e-6 and lat1 > 48.0
    assert haversine_km(41.9, 12.5, lat0, 12.5) >= 250.0 - 1e-6 and lat0 < 41.9
    assert haversine_km(48.0, 10.0, 48.0, lon0) >= 300.0 - 1e-6
    assert lon0 < 10.0 and lon1 > 12.5
    # ...and the box is not silly large
    assert lat1 - lat0 < 15 and lon1 - lon0 < 20
    with pytest.raises(PlaceprintError):
        auto_extent(modes, margin_km=-1)


def test_street_level_axes_show_plain_degrees():
    """A map of a few hundred metres labels 55.70, never an offset like +5.57e1."""
    from placeprint.geo.maps import _new_axes, _set_extent

    fig, ax = _new_axes((600, 400))
    _set_extent(ax, (13.190, 13.200, 55.695, 55.700))
    fig.canvas.draw()
    assert ax.xaxis.get_offset_text().get_text() == ""
    assert ax.yaxis.get_offset_text().get_text() == ""
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(lab.replace("\u2212", "-").startswith("55.") for lab in labels)


def test_the_overview_keeps_a_sharp_peak_visible():
    """A street-sharp guess on a country-wide map: the density sampled at kilometre-wide
    cell centres is all but zero there; the mass per cell holds the whole peak."""
    from placeprint.geo.prediction import GeoPrediction
    from placeprint.geo.sphere import VmfMixture, kappa_for_km

    lat, lon = np.array([55.7001, 55.7003, 52.52]), np.array([13.1901, 13.1904, 13.40])
    mix = VmfMixture(kappa_for_km(0.05)).fit(lat, lon, weights=[0.45, 0.45, 0.1])
    pred = GeoPrediction(mix, modes=[])
    extent = (5.0, 21.0, 48.0, 60.0)
    _, _, dens = pred.grid(extent, shape=(240, 360))
    la, lo, mass = pred.cell_mass(extent, shape=(240, 360))
    assert dens.max() * 1.0 < 1e-6  # what the overview used to draw: nothing
    assert mass.sum() == pytest.approx(1.0) and mass.max() == pytest.approx(0.9)
    i, j = np.unravel_index(np.argmax(mass), mass.shape)
    assert abs(la[i] - 55.70) < 0.05 and abs(lo[j] - 13.19) < 0.05  # in Lund's cell


def test_hungary_is_land_on_the_map(tmp_path):
    """countryinfo has no outline of Hungary: the land mask still draws it as land."""
    from PIL import Image

    from placeprint.geo.maps import LAND_RGB, SEA_RGB

    extent = (16.0, 23.0, 45.5, 48.7)  # Hungary
    lat, lon = np.linspace(48.7, 45.5, 40), np.linspace(16.0, 23.0, 60)
    out = plot_probability_map(
        tmp_path / "hu.png", lat, lon, np.zeros((40, 60)), extent=extent, size=(600, 400)
    )
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    land = np.abs(img - np.array(LAND_RGB)).sum(axis=2) < 12
    sea = np.abs(img - np.array(SEA_RGB)).sum(axis=2) < 12
    assert land.sum() > 20 * sea.sum()  # an inland country: land, not sea


def test_a_map_fills_its_figure(tmp_path):
    """A tall (north-south) close-up sized by map_size leaves little empty margin; the
    fixed landscape size of before left most of the figure blank."""
    from PIL import Image

    from placeprint.geo.maps import map_size

    extent = (13.18, 13.21, 55.68, 55.72)  # taller than wide on the ground
    lat, lon = np.linspace(55.72, 55.68, 30), np.linspace(13.18, 13.21, 30)

    def blank_share(size):
        out = plot_probability_map(
            tmp_path / "m.png", lat, lon, np.ones((30, 30)), extent=extent, size=size
        )
        img = np.asarray(Image.open(out).convert("RGB")).astype(int)
        return float((img.min(axis=2) > 250).mean())  # white figure background

    assert blank_share(map_size(extent)) < 0.35
    assert blank_share((1200, 700)) > blank_share(map_size(extent)) + 0.15
