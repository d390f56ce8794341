"""The geometric-context benchmark: a small run, and its IM2GPS re-weighting."""

import json

import numpy as np
import pytest
from conftest import require_real_data

from placeprint.errors import PlaceprintError
from placeprint.evaluate.geocontext_bench import _combine, _nordland_r1, geocontext_main


def test_combine_reweights_blocks_like_the_describer():
    blocks = [np.ones((2, 3)), 2 * np.ones((2, 1))]
    X = _combine(blocks, [4.0, 1.0])
    np.testing.assert_allclose(X, [[2, 2, 2, 2], [2, 2, 2, 2]])
    np.testing.assert_allclose(_combine(blocks, [4.0, 1.0], keep=[1]), [[2], [2]])


def test_nordland_r1_by_hand():
    db = np.eye(6)
    q = np.eye(6)[[0, 1, 5, 3, 0, 5]]  # query i matches db row i except 2 -> 5, 4 -> 0
    scored = np.ones(6, bool)
    assert _nordland_r1(db, q, np.arange(6), scored) == pytest.approx(4 / 6)


def test_small_run(tmp_path):
    require_real_data("geotagged", "lund")
    out = geocontext_main(
        ["--renders", "4", "--skip-real", "--quiet", "--json", str(tmp_path / "g.json"),
         "--plots", str(tmp_path / "fig")]
    )  # fmt: skip
    saved = json.loads((tmp_path / "g.json").read_text())
    assert 0 <= saved["pixel_accuracy"] <= 1 and saved["renders"] == 4
    assert np.sum(out["confusion"]) == 4 * 120 * 160
    assert (tmp_path / "fig" / "geocontext_real_photos.png").stat().st_size > 10_000
    with pytest.raises(PlaceprintError, match="--renders"):
        geocontext_main(["--renders", "0"])
