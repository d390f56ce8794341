"""Cross-view models: shapes, unit descriptors, DSM against a brute-force circular search,
recall by hand, and training that checkpoints, resumes and reloads."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (make installs it)")

from placeprint.crossview.evaluate import recall  # noqa: E402
from placeprint.crossview.models import (  # noqa: E402
    CrossViewModel,
    ModelConfig,
    dsm_scores,
    uv_channels,
)
from placeprint.errors import PlaceprintError  # noqa: E402

SMALL = dict(ground_size=(16, 64), aerial_size=(16, 64), channels=(4, 8, 8, 8))


@pytest.mark.parametrize(
    "options",
    [
        {"aggregation": "safa"},
        {"aggregation": "netvlad", "clusters": 3},
        {"aggregation": "netvlad_shared", "clusters": 3, "uv": True, "fcam": True},
        {"aggregation": "safa", "polar": False, "aerial_size": (32, 32), "uv": True},
        {"aggregation": "dsm", "dsm_channels": 4, "orientation": True},
    ],
)
def test_descriptors_are_unit_vectors(options):
    torch.manual_seed(0)
    model = CrossViewModel(ModelConfig(**{**SMALL, **options})).eval()
    c = model.config
    g = model.encode_ground(torch.rand(3, 3, *c.ground_size))
    a = model.encode_aerial(torch.rand(3, 3, *c.aerial_size))
    norms = lambda x: x.flatten(1).norm(dim=1)  # noqa: E731
    np.testing.assert_allclose(norms(g).detach().numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(norms(a).detach().numpy(), 1.0, rtol=1e-5)
    if c.aggregation != "dsm":
        assert g.shape == a.shape
    if c.orientation:
        assert model.predict_heading(torch.rand(2, 3, *c.ground_size)).shape == (2, 2)


def test_dsm_finds_the_shift_by_brute_force():
    rng = np.random.default_rng(0)
    aerial = torch.from_numpy(rng.normal(size=(3, 4, 2, 16)).astype(np.float32))
    # ground 0 = aerial 1 turned by 5 columns, 6 columns wide (a limited field of view)
    ground = torch.roll(aerial[1:2], shifts=-5, dims=3)[..., :6]
    scores, shifts = dsm_scores(ground, aerial)
    assert int(torch.argmax(scores[0])) == 1 and int(shifts[0, 1]) == 5
    assert scores[0, 1].item() == pytest.approx(1.0, abs=1e-5)
    # brute force: every aerial, every shift
    g = ground[0].flatten() / ground[0].norm()
    for j in range(3):
        best = max(
            float(g @ (w := torch.roll(aerial[j], -s, dims=2)[..., :6].flatten()) / w.norm())
            for s in range(16)
        )
        assert scores[0, j].item() == pytest.approx(best, abs=1e-5)
    with pytest.raises(PlaceprintError, match="wider"):
        dsm_scores(aerial, ground)


def test_uv_channels():
    uv = uv_channels(4, 8, polar=True)
    assert uv.shape == (2, 4, 8) and uv[0, 0, 0] < uv[0, 0, -1] and uv[1, 0, 0] > uv[1, -1, 0]
    sq = uv_channels(8, 8, polar=False)
    assert sq[1].min() < -0.5 and sq[1, 0, 0] > 0.5  # range: centre low, corners high
    assert sq[0, 0, 4].abs() < 0.2  # due north of the centre: azimuth ~0


def test_recall_by_hand():
    S = np.array([[0.9, 0.1, 0.2], [0.8, 0.5, 0.6], [0.1, 0.2, 0.3]])
    r = recall(S, ks=(1, 2))
    # ranks of the true tile: 0, 2, 0
    assert r["r1"] == pytest.approx(2 / 3) and r["r2"] == pytest.approx(2 / 3)
    assert r["r_top1pct"] == pytest.approx(2 / 3)  # top 1 % of 3 tiles is 1 tile


@pytest.mark.parametrize(
    "options, message",
    [
        ({"aggregation": "gem"}, "aggregation"),
        ({"aggregation": "dsm", "polar": False, "aerial_size": (32, 32)}, "polar"),
        ({"polar": False}, "square"),
        ({"ground_size": (20, 64)}, "multiples of 8"),
    ],
)
def test_bad_model_configs(options, message):
    with pytest.raises(PlaceprintError, match=message):
        ModelConfig(**{**SMALL, **options}).check()


def test_training_checkpoints_resumes_and_reloads(tmp_path):
    from placeprint.crossview.pairs import PairSettings, make_pairs
    from placeprint.crossview.train import TrainSettings, load_checkpoint, load_model, train
    from placeprint.crossview.world import WorldConfig

    world = WorldConfig(size_m=128.0)
    ps = PairSettings(tile_px=32, tile_res_m=1.0, pano_width=64, spacing_m=6.0)
    tr = make_pairs(12, "train", 0, world, ps)
    va = make_pairs(6, "val", 0, world, ps)
    config = ModelConfig(**SMALL)
    settings = TrainSettings(epochs=1, batch=4, threads=1)
    ck = tmp_path / "m.pt"
    _, h1 = train(tr, va, config, settings, ck)
    assert len(h1.loss) == 1 and np.isfinite(h1.loss[0])
    other = TrainSettings(epochs=2, batch=4, threads=1, learning_rate=0.01)
    with pytest.raises(PlaceprintError, match="other settings"):
        train(tr, va, config, other, ck, resume=True)
    # resuming with more epochs goes on from epoch 1 and keeps the history
    _, h = train(tr, va, config, TrainSettings(epochs=3, batch=4, threads=1), ck, resume=True)
    assert len(h.loss) == 3 and h.loss[0] == h1.loss[0] and load_checkpoint(ck)["epoch"] == 3
    model = load_model(ck)
    assert model.config == config
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    foreign = tmp_path / "foreign.pt"
    torch.save({"x": 1}, foreign)
    for bad in (foreign, tmp_path / "missing.pt"):
        with pytest.raises(PlaceprintError):
            load_model(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PlaceprintError, match="not a placeprint"):
        load_model(junk)


def test_dsm_heading_is_refined_between_columns():
    from placeprint.crossview.models import dsm_heading, refine_shift

    # a parabola's vertex from three samples
    assert refine_shift(torch.tensor(0.5), torch.tensor(1.0), torch.tensor(0.7)).item() == (
        pytest.approx(0.5 * (0.5 - 0.7) / (0.5 - 2 + 0.7))
    )
    # a smooth periodic aerial map; the ground is it shifted by 5.3 columns (resampled)
    wa, h = 32, 2
    cols = torch.arange(wa, dtype=torch.float64)
    freqs = torch.tensor([1.0, 2.0, 3.0])[:, None, None]
    aerial = torch.cos(2 * torch.pi * freqs * (cols / wa) + torch.arange(h)[None, :, None])
    ground = torch.cos(2 * torch.pi * freqs * ((cols + 5.3) / wa) + torch.arange(h)[None, :, None])
    est = dsm_heading(ground[None].float(), aerial[None].float())
    assert abs(est.item() - 5.3) < 0.2


def test_bad_training_settings():
    from placeprint.crossview.train import TrainSettings

    for bad, message in (
        ({"loss": "hinge"}, "loss"),
        ({"batch": 2}, "batch"),
        ({"fov_deg": 0.0}, "fov_deg"),
    ):
        with pytest.raises(PlaceprintError, match=message):
            TrainSettings(**bad).check()


def test_crossview_describer_matches_the_model(tmp_path):
    from placeprint import describe
    from placeprint.crossview.data import aerial_inputs, ground_inputs
    from placeprint.crossview.evaluate import encode
    from placeprint.crossview.train import History, TrainSettings, load_model, save_checkpoint

    torch.manual_seed(1)
    config = ModelConfig(**SMALL)
    model = CrossViewModel(config)
    ck = tmp_path / "m.pt"
    opt = torch.optim.Adam(model.parameters())
    save_checkpoint(ck, model, opt, config, TrainSettings(), History(), 0)
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 255, size=(3, 40, 40, 3), dtype=np.uint8)
    panos = rng.integers(0, 255, size=(2, 20, 40, 3), dtype=np.uint8)
    d = describe.get("crossview", model=str(ck), view="aerial")
    reference = encode(load_model(ck), aerial_inputs(tiles, config), ground=False).numpy()
    np.testing.assert_allclose(d(list(tiles)), reference, rtol=1e-5, atol=1e-6)
    assert d.dim == reference.shape[1] and d.config()["weights"]
    g = describe.get("crossview", model=str(ck), view="ground")
    ref_g = encode(load_model(ck), ground_inputs(panos, config), ground=True).numpy()
    np.testing.assert_allclose(g(list(panos)), ref_g, rtol=1e-5, atol=1e-6)
    with pytest.raises(PlaceprintError, match="square"):
        d(list(panos))
    with pytest.raises(PlaceprintError, match="view"):
        describe.get("crossview", model=str(ck), view="side")
    with pytest.raises(PlaceprintError, match="model="):
        describe.get("crossview")
