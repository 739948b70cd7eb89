import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.losses import TripletLoss
from tests._helpers import (
    batch,
    is_attached_zero,
    randint,
    randn,
    random_rotation,
    randperm,
    scales,
    seeds,
)

dims = st.integers(1, 6)
ids = st.integers(1, 5)
metrics = st.sampled_from(["euclidean", "cosine"])


def naive_triplet(features, labels, margin=0.3, soft=False, metric="euclidean"):
    """Per-anchor loss and validity from explicit loops in float64."""
    x, y = features.tolist(), labels.tolist()

    def dist(a, b):
        if metric == "euclidean":
            return math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b)))
        na = math.sqrt(sum(p * p for p in a))
        nb = math.sqrt(sum(q * q for q in b))
        return 1.0 - sum(p * q for p, q in zip(a, b)) / (na * nb)

    out, valid = [], []
    for a in range(len(x)):
        pos = [dist(x[a], x[j]) for j in range(len(x)) if j != a and y[j] == y[a]]
        neg = [dist(x[a], x[j]) for j in range(len(x)) if y[j] != y[a]]
        if not pos or not neg:
            out.append(0.0)
            valid.append(False)
            continue
        gap = max(pos) - min(neg)
        out.append(math.log1p(math.exp(gap)) if soft else max(0.0, gap + margin))
        valid.append(True)
    return torch.tensor(out, dtype=torch.float64), torch.tensor(valid)


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, n=batch, d=dims, k=ids, soft=st.booleans(), metric=metrics)
def test_matches_naive_reference(seed, n, d, k, soft, metric):
    f, y = randn(seed, n, d), randint(seed + 1, k, n)
    got = DF.triplet_loss(f, y, soft_margin=soft, metric=metric, reduction="none")
    want, valid = naive_triplet(f, y, soft=soft, metric=metric)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    mean = DF.triplet_loss(f, y, soft_margin=soft, metric=metric)
    expected = want[valid].mean() if valid.any() else torch.tensor(0.0, dtype=torch.float64)
    torch.testing.assert_close(mean, expected, atol=1e-6, rtol=1e-6)


@given(seed=seeds, n=batch, k=ids)
def test_prop_mining_picks_hardest(seed, n, k):
    f, y = randn(seed, n, 3), randint(seed + 1, k, n)
    d = DF.euclidean_distance(f)
    pos, neg, valid = DF.batch_hard_mining(d, y)
    for a in torch.nonzero(valid).flatten().tolist():
        same = (y == y[a]) & (torch.arange(n) != a)
        assert y[pos[a]] == y[a] and pos[a] != a and y[neg[a]] != y[a]
        assert d[a, pos[a]] == d[a][same].max() and d[a, neg[a]] == d[a][y != y[a]].min()


# --- invariants (one property test each) -----------------------------------------------------
@given(seed=seeds, n=batch, d=dims, k=ids, scale=scales, soft=st.booleans(), metric=metrics)
def test_prop_non_negative(seed, n, d, k, scale, soft, metric):
    v = DF.triplet_loss(randn(seed, n, d, scale=scale), randint(seed + 1, k, n),
                        soft_margin=soft, metric=metric, reduction="none")
    assert (v >= 0).all()


@given(seed=seeds, n=batch, d=dims, k=ids, soft=st.booleans())
def test_prop_rotation_translation_invariance(seed, n, d, k, soft):
    f, y = randn(seed, n, d), randint(seed + 1, k, n)
    moved = f @ random_rotation(seed + 2, d) + randn(seed + 3, 1, d, scale=5.0)
    torch.testing.assert_close(DF.triplet_loss(moved, y, soft_margin=soft, reduction="none"),
                               DF.triplet_loss(f, y, soft_margin=soft, reduction="none"),
                               atol=1e-6, rtol=1e-6)


@given(seed=seeds, k=st.integers(2, 5), per=st.integers(2, 4), d=dims,
       margin=st.floats(0.0, 2.0))
def test_prop_zero_when_every_anchor_meets_margin(seed, k, per, d, margin):
    labels = torch.arange(k).repeat_interleave(per)
    centers = torch.zeros(k, d, dtype=torch.float64)
    centers[:, 0] = torch.arange(k, dtype=torch.float64) * (margin + 3.0)
    # each coordinate within 0.25/sqrt(d) of its centre: intra-class distances <= 0.5, while
    # inter-class distances >= margin + 2.5
    noise = randn(seed, k * per, d, scale=0.1).clamp(-0.25 / math.sqrt(d), 0.25 / math.sqrt(d))
    f = centers[labels] + noise
    f = f[randperm(seed + 1, k * per)] @ random_rotation(seed + 2, d)
    labels = labels[randperm(seed + 1, k * per)]
    v = DF.triplet_loss(f.requires_grad_(), labels, margin=margin)
    assert is_attached_zero(v)


@given(seed=seeds, n=st.integers(1, 16), d=dims, soft=st.booleans(), metric=metrics)
def test_prop_no_positive_pair_is_attached_zero(seed, n, d, soft, metric):
    f = randn(seed, n, d).requires_grad_()
    v = DF.triplet_loss(f, randperm(seed + 1, n), soft_margin=soft, metric=metric)
    assert is_attached_zero(v)
    v.backward()
    assert torch.equal(f.grad, torch.zeros_like(f))


# --- module == function, reductions, gradcheck ----------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("soft", [False, True])
def test_module_equals_function_and_shapes(reduction, soft):
    f, y = randn(1, 8, 5), torch.tensor([0, 0, 1, 1, 2, 2, 3, 4])
    loss = TripletLoss(margin=0.5, soft_margin=soft, reduction=reduction)
    got = loss(f, y)
    assert got.shape == ((8,) if reduction == "none" else ())
    torch.testing.assert_close(got, DF.triplet_loss(f, y, margin=0.5, soft_margin=soft,
                                                    reduction=reduction))
    per = DF.triplet_loss(f, y, margin=0.5, soft_margin=soft, reduction="none")
    assert (per[6:] == 0).all()  # labels 3 and 4 have no positive: excluded
    if reduction == "mean":
        torch.testing.assert_close(got, per[:6].mean())
    if reduction == "sum":
        torch.testing.assert_close(got, per.sum())
    assert "margin=0.5" in repr(loss) and "batch_hard" in repr(loss)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("soft", [False, True])
def test_gradcheck(metric, soft):
    f = randn(3, 6, 3).requires_grad_()
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.autograd.gradcheck(
        lambda x: DF.triplet_loss(x, y, margin=1.0, soft_margin=soft, metric=metric,
                                  reduction="none"), (f,))


def test_gradient_flows_only_through_mined_pairs():
    f = torch.tensor([[0.0], [1.0], [5.0], [2.5]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 0, 1])
    v = DF.triplet_loss(f, y, margin=0.0, reduction="none")[0]  # anchor 0: p = 2, n = 3
    v.backward()
    torch.testing.assert_close(f.grad.flatten(), torch.tensor([0.0, 0.0, 1.0, -1.0],
                                                              dtype=torch.float64))


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    f, y = torch.zeros(4, 2), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="features: expected 2-D"):
        DF.triplet_loss(torch.zeros(4), y)
    with pytest.raises(ValueError, match="labels: expected shape \\(N,\\) with N=4"):
        DF.triplet_loss(f, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels: expected an integer dtype"):
        DF.triplet_loss(f, y.float())
    with pytest.raises(ValueError, match="margin: expected a value >= 0, got -0.3"):
        DF.triplet_loss(f, y, margin=-0.3)
    with pytest.raises(ValueError, match="margin: expected a value >= 0"):
        TripletLoss(margin=-0.1)
    with pytest.raises(ValueError, match="metric"):
        TripletLoss(metric="manhattan")
    with pytest.raises(ValueError, match="mining"):
        TripletLoss(mining="batch_all")
    with pytest.raises(ValueError, match="reduction"):
        DF.triplet_loss(f, y, reduction="avg")
    with pytest.raises(ValueError, match="dist: expected shape"):
        DF.batch_hard_mining(torch.zeros(3, 4), torch.tensor([0, 1, 2]))


# --- degenerate batches ----------------------------------------------------------------------
@pytest.mark.parametrize("n,labels", [(0, []), (1, [0]), (4, [2, 2, 2, 2]), (3, [0, 1, 2])])
def test_degenerate_batch_is_attached_zero(n, labels):
    f = randn(0, n, 3).requires_grad_()
    y = torch.tensor(labels, dtype=torch.long)
    v = TripletLoss()(f, y)
    assert is_attached_zero(v)
    v.backward()
    assert DF.triplet_loss(f, y, reduction="none").shape == (n,)


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_finite_in_low_precision(dtype, metric):
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    for scale in (1e-3, 1.0, 3e2):
        f = randn(4, 8, 16, scale=scale).to(dtype).requires_grad_()
        v = DF.triplet_loss(f, y, metric=metric)
        assert v.dtype == (torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype) and torch.isfinite(v)
        (g,) = torch.autograd.grad(v.float(), f)
        assert torch.isfinite(g).all()
    ref = DF.triplet_loss(randn(4, 8, 16), y, metric=metric)
    low = DF.triplet_loss(randn(4, 8, 16).to(dtype), y, metric=metric)
    torch.testing.assert_close(low.double(), ref, atol=0.05, rtol=0.02)


def test_finite_under_autocast_bf16_cpu():
    lin = torch.nn.Linear(16, 8)
    x = randn(5, 8, 16, dtype=torch.float32) * 10
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = TripletLoss()(lin(x), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert torch.isfinite(v)
    v.float().backward()
    assert torch.isfinite(lin.weight.grad).all()


def test_cosine_gradient_finite_for_tiny_half_vectors():  # norm ~6e-8 gave inf gradients
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    f = torch.cat([torch.full((4, 16), 1.5e-8), randn(9, 4, 16)]).half().requires_grad_()
    DF.triplet_loss(f, y, metric="cosine").backward()
    assert torch.isfinite(f.grad).all()
