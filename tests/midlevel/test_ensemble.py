"""Sets of elements mined from different seeds, read together: against the sets fitted one
by one, through a file, and a set saved alone."""

import numpy as np
import pytest
from test_midlevel import _described, _motif_images

from placeprint.errors import PlaceprintError
from placeprint.midlevel.elements import ElementSettings, StyleAwareElements
from placeprint.midlevel.ensemble import ElementEnsemble

SETTINGS = ElementSettings(seeds=60, top=10, keep=8, bins=4, per_bin=8, seed=5)


@pytest.fixture(scope="module")
def motifs():
    layout, [(P_tr, _, y_train), (P_te, _, y_test)] = _described(_motif_images, 6, 160, 40, 3)
    return layout, P_tr, y_train, P_te, y_test


def test_members_are_the_sets_of_successive_seeds_and_their_mean_is_the_label(motifs):
    _, P_tr, y_train, P_te, _ = motifs
    ensemble = ElementEnsemble(SETTINGS, members=3).fit(P_tr, y_train)
    alone = [StyleAwareElements(ElementSettings(**{**SETTINGS.__dict__, "seed": 5 + k}))
             .fit(P_tr, y_train).predict(P_te) for k in range(3)]  # fmt: skip
    np.testing.assert_allclose(ensemble.member_predictions(P_te), np.stack(alone), rtol=1e-6)
    np.testing.assert_allclose(ensemble.predict(P_te), np.mean(alone, axis=0), rtol=1e-6)
    assert len({float(a[0]) for a in alone}) == 3  # the seeds found different elements


def test_file_round_trip_and_a_single_set_file_is_an_ensemble_of_one(motifs, tmp_path):
    layout, P_tr, y_train, P_te, _ = motifs
    ensemble = ElementEnsemble(SETTINGS, members=2).fit(P_tr, y_train)
    ensemble.save(tmp_path / "e.ppml", layout)
    again, layout_again = ElementEnsemble.load(tmp_path / "e.ppml")
    assert layout_again == layout and again.members == 2 and again.settings == SETTINGS
    np.testing.assert_allclose(again.predict(P_te), ensemble.predict(P_te), rtol=1e-5)
    ensemble.members_[1].save(tmp_path / "one.ppml", layout)
    one, _ = ElementEnsemble.load(tmp_path / "one.ppml")
    assert one.members == 1
    np.testing.assert_allclose(one.predict(P_te), ensemble.member_predictions(P_te)[1], rtol=1e-5)


def test_bad_input(tmp_path):
    with pytest.raises(PlaceprintError, match="at least one member"):
        ElementEnsemble(SETTINGS, members=0)
    with pytest.raises(PlaceprintError, match="not fitted"):
        ElementEnsemble(SETTINGS).predict(np.zeros((2, 3, 4)))
    with pytest.raises(PlaceprintError, match="not fitted"):
        ElementEnsemble(SETTINGS).save(tmp_path / "x", None)
    (tmp_path / "junk.ppml").write_bytes(b"not a model")
    with pytest.raises(PlaceprintError, match="not a placeprint file"):
        ElementEnsemble.load(tmp_path / "junk.ppml")
    assert not (tmp_path / "x").exists()
