"""Cross-view losses: hand-computed values on a 3-pair batch and gradient checks."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (make installs it)")

from placeprint.crossview import losses as cv  # noqa: E402

D3 = torch.tensor([[0.5, 1.0, 2.0], [1.5, 0.2, 0.1], [3.0, 0.4, 1.0]], dtype=torch.float64)


def _triplets():
    """(d_p, d_n) of all 12 triplets of D3, written out: ground anchors, then aerial."""
    out = []
    for i in range(3):
        for j in range(3):
            if i != j:
                out.append((D3[i, i].item(), D3[i, j].item()))  # ground i, wrong aerial j
                out.append((D3[j, j].item(), D3[i, j].item()))  # aerial j, wrong ground i
    return out


def test_triplet_losses_by_hand():
    t = _triplets()
    assert len(t) == 12
    m = 0.3
    assert cv.triplet_margin(D3, m).item() == pytest.approx(
        np.mean([max(0.0, m + p - n) for p, n in t])
    )
    assert cv.soft_margin(D3).item() == pytest.approx(
        np.mean([math.log1p(math.exp(p - n)) for p, n in t])
    )
    assert cv.weighted_soft_margin(D3, 10.0).item() == pytest.approx(
        np.mean([math.log1p(math.exp(10 * (p - n))) for p, n in t])
    )


def test_quadruplet_by_hand():
    # anchor i, two other places k != j (both != i): with 3 places, (k, j) is the other two
    second = []
    for i in range(3):
        others = [x for x in range(3) if x != i]
        for k in others:
            for j in others:
                if k != j:
                    second.append(max(0.0, 0.1 + D3[i, i].item() - D3[k, j].item()))
    expected = cv.triplet_margin(D3, 0.2).item() + np.mean(second)
    assert cv.quadruplet(D3, 0.2, 0.1).item() == pytest.approx(expected)


def test_her_weights_by_hand():
    m, B = 1.0, 4
    gaps = torch.tensor([2.0, 0.5, -0.3, 1.0])
    w = cv.her_weights(gaps, m, B)
    assert w[0].item() == pytest.approx(0.1 / B)  # easy: gap > m
    assert w[1].item() == pytest.approx(math.log2(1 + math.exp(0.5 - 0.5)))  # between
    assert w[2].item() == pytest.approx(math.log2(1 + math.exp(0.5)))  # extremely hard
    assert w[3].item() == pytest.approx(math.log2(1 + math.exp(-0.5)))  # at the margin
    t = _triplets()
    ref = []
    for p, n in t:
        gap = n - p
        wt = 0.1 / 3 if gap > m else math.log2(1 + math.exp(m / 2 - max(gap, 0.0)))
        ref.append(wt * math.log1p(math.exp(p - n)))
    assert cv.hard_exemplar_reweighted(D3, margin=m).item() == pytest.approx(np.mean(ref))


def test_orientation_regression_by_hand():
    pred = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    heading = torch.tensor([0.0, math.pi / 2])
    assert cv.orientation_regression(pred, heading).item() == pytest.approx((0 + 1) / 2)


@pytest.mark.parametrize("name", sorted(cv.LOSSES))
def test_gradients_match_finite_differences(name):
    torch.manual_seed(0)
    g = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    a = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    loss = cv.LOSSES[name]

    weights = None
    if name == "her":  # the weights are constants of a step: freeze them at the start
        gaps, _ = cv._triplet_gaps(cv.squared_distances(g, a).detach())
        weights = cv.her_weights(-gaps, 1.0, 5)

    def f(g, a):
        D = cv.squared_distances(g, a)
        return loss(D, margin=1.0, weights=weights) if name == "her" else loss(D)

    assert torch.autograd.gradcheck(f, (g, a), eps=1e-6, atol=1e-5)


def test_squared_distances():
    g = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    a = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
    np.testing.assert_allclose(cv.squared_distances(g, a).numpy(), [[25.0, 5.0], [8.0, 0.0]])
