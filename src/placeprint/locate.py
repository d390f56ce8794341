"""Where was this photo taken: geotagged database -> ``INDEX.geo`` -> guesses, names, maps.

``build_geolocator`` describes a geotagged collection (a manifest or a folder of
photos with EXIF GPS), fits a :class:`~placeprint.geo.geolocator.Geolocator` and
saves it next to the compact index as ``<index>.geo`` with the describer's config
and the photos' paths; ``locate`` answers for new photos; ``write_outputs`` writes
the heat map (PNG) and GeoJSON a person or a GIS tool looks at.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

#: describer for geotagged photo collections (best Lund retrieval among the deep families)
DEFAULT_PHOTO_DESCRIBER = "cnn_netvlad"
#: collections at least this large get adaptive S2 cells, a cell classifier and albums
CELLS_FROM = 2000


def geo_path_for(index_path: str | Path) -> Path:
    """Where the geolocator of the index at ``index_path`` lives
    (``INDEX.<generation>.geo``; :mod:`placeprint.indexfiles`)."""
    from placeprint.indexfiles import side_path

    return side_path(index_path, "geo")


@dataclass
class Located:
    """One query photo's answer."""

    photo: str
    prediction: object  # GeoPrediction
    names: list


def default_cells(n_photos: int):
    """Adaptive cells sized for a collection of ``n_photos`` (None below ``CELLS_FROM``)."""
    from placeprint.geo.cells import AdaptiveCells

    if n_photos < CELLS_FROM:
        return None
    max_photos = max(50, n_photos // 200)
    return AdaptiveCells(max_photos=max_photos, min_photos=max(5, max_photos // 20))


def build_geolocator(
    X: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    paths: list[str],
    describer: dict,
    output: str | Path,
    cells: str = "auto",
    route_rows: list[int] | None = None,
    generation: str | None = None,
    verify: bool = True,
    verify_top: int | None = None,
    progress: bool = False,
) -> tuple[object, int]:
    """Fit a geolocator on ``X`` at ``(lat, lon)`` and save it; returns it and the file size.

    ``cells``: ``"auto"`` (cells for large collections), ``"none"``, or ``"world"``
    (the partition of the real photo locations shipped in the data folder).
    ``route_rows`` are the photos' positions in the route index built alongside, so
    that a sequence match can be given a place on Earth (:func:`route_positions`).
    ``verify``: store every photo's local features on disk (so that no answer extracts a
    database photo's) and calibrate verified answers on up to 200 of the photos, each
    located from the others and checked against its matches
    (:meth:`Geolocator.calibrate_verified`);
    ``verify_top``: distinct neighbours every answer checks (default
    :data:`~placeprint.geo.verified.DEFAULT_VERIFY_TOP`), recorded so that ``locate`` and
    the service check as many as the calibration did. ``progress``: bars while the
    photos' features are stored and the verified answers calibrated.
    """
    from placeprint.geo.geolocator import Geolocator
    from placeprint.geo.verified import DEFAULT_VERIFY_TOP

    verify_top = DEFAULT_VERIFY_TOP if verify_top is None else int(verify_top)
    if verify_top < 1:
        raise PlaceprintError(f"verify_top must be >= 1, got {verify_top}")
    if cells == "auto":
        c = default_cells(len(X))
    elif cells == "none":
        c = None
    elif cells == "world":
        from placeprint.geo.cells import AdaptiveCells, read_photo_locations

        wl, wn = read_photo_locations()
        c = AdaptiveCells(max_photos=1000, min_photos=20).fit(wl, wn)
    else:
        raise PlaceprintError(f"cells must be auto, none or world, got {cells!r}")
    geo = Geolocator(cells=c, shortlist=verify_top if verify else 0).fit(X, lat, lon)
    if verify:
        from placeprint.geo.verified import AnswerVerifier

        folder = Path(output).parent  # relative photo paths are relative to the index

        def image_of_row(row: int) -> Path:
            p = Path(paths[row])
            return p if p.is_absolute() else folder / p

        verifier = AnswerVerifier(geo, image_of_row, top=verify_top, cache_items=128)
        verifier.store_features(range(len(paths)), progress=progress)  # not by answers
        geo.calibrate_verified(verifier, progress=progress)
    meta = {"describer": describer, "paths": list(paths), "cells": cells, "verify_top": verify_top,
            "verify_upright": True}  # fmt: skip
    if generation:
        meta["generation"] = generation
    if route_rows is not None:
        meta["route_rows"] = [int(r) for r in route_rows]
    size = geo.save(output, meta=meta)
    return geo, size


def load_geolocator(index_path: str | Path):
    """The geolocator saved for the index at ``index_path`` (or a ``.geo`` file itself)."""
    from placeprint.geo.geolocator import Geolocator

    path = Path(index_path)
    if path.suffix != ".geo":
        path = geo_path_for(path)
    if not path.is_file():
        raise PlaceprintError(
            f"no geolocator at {path}: build the index from geotagged photos "
            "(`placeprint index build DIR_OR_MANIFEST -o INDEX`)"
        )
    return Geolocator.load(path), path


MIN_DETAIL_SIDE = 32  # pixels: smaller photos carry no place
MIN_DETAIL_STD = 2.0  # grey levels: flatter photos carry no place


def photo_detail_problem(path: str | Path) -> str | None:
    """Why a photo cannot say where it was taken (tiny or flat), or ``None``."""
    from PIL import Image

    from placeprint.describe.images import as_8bit_rgb, large_images_allowed

    try:
        with large_images_allowed(), Image.open(path) as im:
            w, h = im.size
            if min(w, h) < MIN_DETAIL_SIDE:
                return f"it is only {w} x {h} pixels"
            im.draft("L", (256, 256))
            # 16-bit grey scaled down, not clipped at 255 (which reads as flat white)
            grey = np.asarray(as_8bit_rgb(im).convert("L").resize((64, 64)), np.float32)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None  # unreadable photos are reported where they are described
    if float(grey.std()) < MIN_DETAIL_STD:
        return "it is almost one flat colour"
    return None


class PhotoLocator:
    """An index's geolocator and describer, loaded once, answering for many photos.

    The command line and the web service both go through it.
    """

    def __init__(self, index_path: str | Path, verify: bool = True) -> None:
        from placeprint.indexfiles import check_generation, side_path, split_side_path
        from placeprint.sources import make_describer

        self.verify = bool(verify)  # geometric verification of answers given images
        self._verifier = None

        self.geo, self.path = load_geolocator(index_path)
        # INDEX.<generation>.geo: the file must hold that build's geolocator
        base, generation, _ = split_side_path(self.path)
        check_generation(self.path, self.geo.user_meta_.get("generation"), generation)
        state = side_path(base, "describer", generation)
        self.describer = make_describer(self.geo.user_meta_.get("describer"), state)

    def name_modes(self, pred) -> list:
        """Put place names on a prediction's modes (in place); returns the names."""
        from placeprint.geo.names import place_names

        if not pred.modes:
            return []
        names = place_names(
            np.array([m.lat for m in pred.modes]), np.array([m.lon for m in pred.modes])
        )
        pred.modes = [
            dataclasses.replace(m, name=n.label) for m, n in zip(pred.modes, names, strict=True)
        ]
        return names

    @property
    def verify_top(self) -> int:
        """Distinct neighbours an answer checks: as many as the index's calibration did."""
        from placeprint.geo.verified import LEGACY_VERIFY_TOP

        return int(self.geo.user_meta_.get("verify_top", LEGACY_VERIFY_TOP))

    @property
    def verifier(self):
        """The :class:`~placeprint.geo.verified.AnswerVerifier` over the index's photos."""
        if self._verifier is None:
            from placeprint.geo.verified import AnswerVerifier

            paths = list(self.geo.user_meta_.get("paths") or [])
            folder = self.path.parent  # relative photo paths are relative to the index

            def image_of_row(row: int) -> Path | None:
                if not 0 <= row < len(paths):
                    return None
                p = Path(paths[row])
                return p if p.is_absolute() else folder / p

            # geolocators written before upright features were calibrated without them
            upright = bool(self.geo.user_meta_.get("verify_upright", False))
            self._verifier = AnswerVerifier(
                self.geo, image_of_row, top=self.verify_top, upright=upright
            )
        return self._verifier

    def predict(self, X: np.ndarray, album: bool = False, timestamps=None, images=None) -> list:
        """Named :class:`~placeprint.geo.prediction.GeoPrediction` per descriptor row.

        ``images`` (paths or pixel arrays, one per row): each answer is geometrically
        verified against the database photos it matched (unless ``verify`` is off).
        """
        if album and len(X) > 1 and self.geo.uses_cells:
            ok = timestamps is not None and np.isfinite(np.asarray(timestamps, float)).all()
            preds = self.geo.predict_album(X, np.asarray(timestamps, float) if ok else None)
        else:
            preds = self.geo.predict_proba(X)
        if images is not None and self.verify:
            for i, image in enumerate(images):
                preds[i] = self.verifier.apply(image, preds[i])
        for pred in preds:
            self.name_modes(pred)
        return preds

    def locate(self, photos: list, progress: bool = False, album: bool = False) -> list[Located]:
        """Guesses for photo files (folders are expanded, unreadable photos skipped)."""
        from placeprint.describe.images import list_images
        from placeprint.sources import describe_files

        files: list[Path] = []
        for p in photos:
            p = Path(p)
            if p.is_dir():
                files += list_images(p)
            elif p.is_file():
                files.append(p)
            else:
                raise PlaceprintError(f"not found: {p}")
        if not files:
            raise PlaceprintError("no photos to locate")
        X, kept = describe_files(self.describer, files, progress=progress, cache=False)
        stamps = None
        if album:
            from placeprint.geo.collection import photo_timestamps

            stamps = photo_timestamps([files[i] for i in kept])
        preds = self.predict(X, album=album, timestamps=stamps, images=[files[i] for i in kept])
        return [
            Located(str(files[i]), pred, [m.name for m in pred.modes])
            for i, pred in zip(kept, preds, strict=True)
        ]


def locate(
    photos: list[Path],
    index_path: str | Path,
    progress: bool = False,
    album: bool = False,
    verify: bool = True,
) -> list[Located]:
    """Guesses for each photo against the geolocator of ``index_path``."""
    return PhotoLocator(index_path, verify=verify).locate(photos, progress=progress, album=album)


def route_positions(index_path: str | Path) -> dict[int, tuple[float, float]] | None:
    """``{route position: (lat, lon)}`` of an index built from geotagged photos, else None."""
    path = geo_path_for(index_path)
    if not path.is_file():
        return None
    geo, _ = load_geolocator(path)
    rows = geo.user_meta_.get("route_rows")
    if rows is None:
        return None
    return {int(r): (float(a), float(b)) for r, a, b in zip(rows, geo.lat_, geo.lon_, strict=True)}


def write_outputs(located: Located, folder: str | Path, truth=None) -> dict[str, Path]:
    """Heat maps (close-up and overview PNGs) and GeoJSON of one answer under ``folder``.

    The close-up frames the best guesses at street scale (a few times their radius);
    the overview shows them on the country outlines, 800 km around. ``truth``
    ``(lat, lon)`` is drawn as a star when known. Returns ``{"map", "overview", "geojson"}``.
    """
    import json

    from placeprint.atomic import atomic_open
    from placeprint.geo.maps import auto_extent, map_size, plot_probability_map

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(located.photo).stem
    pred = located.prediction
    title = f"{Path(located.photo).name}: where was it taken?"
    out = {}
    views = {
        "map": (f"{stem}.png", max(0.3, 4 * pred.best.radius_km), (300, 300)),
        "overview": (f"{stem}_overview.png", 800.0, (240, 360)),
    }
    for kind, (name, margin_km, shape) in views.items():
        extent = auto_extent(pred.modes[:3], margin_km=margin_km)
        if kind == "map":
            lat, lon, heat = pred.grid(extent, shape=shape)
            label = "probability density (per km²)"
        else:  # cells of kilometres: the mass in each cell, or a sharp peak vanishes
            lat, lon, heat = pred.cell_mass(extent, shape=shape)
            label = "probability in each cell"
        out[kind] = plot_probability_map(
            folder / name,
            lat,
            lon,
            heat,
            modes=pred.modes,
            truth=truth,
            extent=extent,
            title=title if kind == "map" else f"{title} (overview)",
            label=label,
            size=map_size(extent),
        )
    gj = folder / f"{stem}.geojson"
    with atomic_open(gj, "w") as fh:
        json.dump(pred.to_geojson(), fh)
    out["geojson"] = gj
    return out
