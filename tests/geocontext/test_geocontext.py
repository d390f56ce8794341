"""Geometric context: labelled renders, superpixel features, the classifier, its describer."""

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli

from placeprint.crossview.render import GROUND, SKY, VERTICAL, labelled_panorama
from placeprint.crossview.world import Condition, World, WorldConfig
from placeprint.describe.geocontext import GeoContextDescriber, pooled_classes
from placeprint.errors import PlaceprintError
from placeprint.geocontext import model as gc_model
from placeprint.geocontext.features import FEATURE_NAMES, segment_features
from placeprint.geocontext.model import GeometricContext, pixel_accuracy
from placeprint.geocontext.renders import labelled_views

SMALL = WorldConfig(size_m=160.0)


def test_labels_follow_the_geometry():
    w = World.blank(SMALL)
    w.add_box(90, 60, 100, 100, 12.0, (0.8, 0.8, 0.8))  # a wall 10 m east, 12 m high
    _, depth, labels = labelled_panorama(w, 80, 80, Condition(), width=256)
    np.testing.assert_array_equal(labels == SKY, ~np.isfinite(depth))
    H = 128
    above, below = H // 2 - 10, H // 2 + 10
    assert labels[above, 64] == VERTICAL  # east, above the horizon: the wall
    assert labels[above, 192] == SKY  # west, above the horizon: open sky
    assert labels[below, 192] == GROUND  # west, below the horizon: the grass
    # the wall's top edge: tan(el) = (12 - 1.7) / 10 -> 45.8 degrees up (within a row,
    # 1.4 degrees, and the ray caster's 0.5 m steps: atan(10.3 / 10.5) = 44.4)
    col = labels[:, 64]
    top_row = np.argmax(col == VERTICAL)
    el = 90 - (top_row + 0.5) / H * 180
    assert np.degrees(np.arctan2(10.3, 10.5)) - 1.5 <= el <= np.degrees(np.arctan2(10.3, 10)) + 1.5


def test_segment_features_by_hand():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:10] = (40, 80, 200)  # blue top half
    image[10:] = 128  # grey bottom half
    labels = np.zeros((20, 40), np.int64)
    labels[10:] = 1
    f = segment_features(image, labels)
    col = {n: i for i, n in enumerate(FEATURE_NAMES)}
    assert f.shape == (2, len(FEATURE_NAMES))
    np.testing.assert_allclose(
        f[0, [col["r"], col["g"], col["b"]]], np.array([40, 80, 200]) / 255, atol=1e-6
    )
    assert f[1, col["saturation"]] == pytest.approx(0.0)
    assert f[0, col["y"]] == pytest.approx(0.25) and f[1, col["y"]] == pytest.approx(0.75)
    assert f[0, col["x"]] == pytest.approx(0.5) and f[0, col["area"]] == pytest.approx(0.5)
    assert f[0, col["box_width"]] == pytest.approx((39.5 - 0.5) / 40)
    # the only edge is horizontal (a change along y)
    assert f[0, col["grad_horizontal"]] == pytest.approx(1.0)
    assert f[0, col["grad_vertical"]] == pytest.approx(0.0, abs=1e-6)
    # rows 0..9 of 20: centres 0.025..0.475; nearest-rank 10th / 90th percentiles
    assert f[0, col["y10"]] == pytest.approx(0.025) and f[0, col["y90"]] == pytest.approx(0.425)
    with pytest.raises(PlaceprintError, match="each used"):
        segment_features(image, labels * 2)


def test_pooled_classes_by_hand():
    proba = np.zeros((4, 4, 3), np.float32)
    proba[:2, :, 2] = 1  # sky on top
    proba[2:, :2, 0] = 1  # ground bottom-left
    proba[2:, 2:, 1] = 1  # vertical bottom-right
    v = pooled_classes(proba, 2)  # class-major: ground cells, vertical cells, sky cells
    np.testing.assert_array_equal(v, [0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0])


@pytest.fixture(scope="module")
def renders():
    train = labelled_views(40, "train", seed=3)
    test = labelled_views(12, "test", seed=3)
    return train, test


def test_a_model_learns_and_round_trips(renders, tmp_path):
    (Xtr, Ytr), (Xte, Yte) = renders
    model = GeometricContext().fit(Xtr, Ytr)
    score = pixel_accuracy(model, Xte, Yte)
    assert score["pixel_accuracy"] > 0.8
    assert np.sum(score["confusion"]) == Yte.size
    model.save(tmp_path / "m.ppgc")
    again = GeometricContext.load(tmp_path / "m.ppgc")
    np.testing.assert_allclose(again.predict_proba(Xte[0]), model.predict_proba(Xte[0]))
    p = model.predict_proba(Xte[0])
    assert p.shape == Xte[0].shape[:2] + (3,)
    np.testing.assert_allclose(p.sum(axis=2), 1, rtol=1e-5)


def test_the_shipped_model_on_held_out_cities(renders):
    _, (Xte, Yte) = renders
    assert pixel_accuracy(GeometricContext.load(), Xte, Yte)["pixel_accuracy"] >= 0.85


def test_a_damaged_shipped_model_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "default_model.ppgc"
    data = bytearray(gc_model.DEFAULT_MODEL.read_bytes())
    data[-10] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(gc_model, "DEFAULT_MODEL", bad)
    with pytest.raises(PlaceprintError, match="damaged"):
        GeometricContext.load()
    with pytest.raises(PlaceprintError, match="not found"):
        GeometricContext.load(tmp_path / "absent.ppgc")


def test_describer_is_pooled_class_maps(renders):
    _, (Xte, _) = renders
    d = GeoContextDescriber(grid=2)
    X = d(list(Xte[:3]))
    assert X.shape == (3, 12) and d.dim == 12
    # each cell's three class shares sum to one
    np.testing.assert_allclose(X.reshape(3, 3, 4).sum(axis=1), 1, rtol=1e-5)


def test_cli_train_and_label(tmp_path, renders):
    from PIL import Image

    _, (Xte, _) = renders
    Image.fromarray(Xte[0]).save(tmp_path / "photo.png")
    proc = run_cli("geocontext", "train", "-o", tmp_path / "m.ppgc", "--renders", "12", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("geocontext", "label", tmp_path / "photo.png", "-o", tmp_path / "maps",
                   "--model", tmp_path / "m.ppgc")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "ground" in proc.stdout and (tmp_path / "maps" / "photo.geocontext.png").is_file()
    assert_one_line_error(
        run_cli("geocontext", "label", tmp_path / "nope.png", "-o", tmp_path / "maps"), "nope.png"
    )
    assert_one_line_error(
        run_cli("geocontext", "train", "-o", tmp_path / "x", "--renders", "1"), "--renders"
    )
