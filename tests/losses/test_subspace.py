import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.losses import SubspaceConsistency, SubspaceDiversity
from tests._helpers import batch, is_attached_zero, randint, randn, randperm, scales, seeds

subspaces = st.integers(2, 8)
margins = st.floats(0.0, 1.0)


def naive_diversity(W, m1):
    out = []
    for row in W.tolist():
        v = len(row)
        s = sum(max(0.0, m1 - abs(row[m] - row[n])) ** 2
                for m in range(v) for n in range(v) if m != n)
        out.append(s / (v * (v - 1)))
    return torch.tensor(out, dtype=torch.float64)


def naive_consistency(W, m2, labels=None):
    rows, b = W.tolist(), W.shape[0]
    out, has = [], []
    for i in range(b):
        terms = [max(0.0, math.dist(rows[i], rows[j]) - m2) ** 2 for j in range(b)
                 if j != i and (labels is None or labels[j] == labels[i])]
        out.append(sum(terms) / len(terms) if terms else 0.0)
        has.append(bool(terms))
    return torch.tensor(out, dtype=torch.float64), torch.tensor(has)


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, b=batch, v=subspaces, m1=margins)
def test_diversity_matches_naive_reference(seed, b, v, m1):
    W = randn(seed, b, v, scale=0.3)
    torch.testing.assert_close(DF.subspace_diversity(W, m1=m1, reduction="none"),
                               naive_diversity(W, m1))


@given(seed=seeds, b=batch, v=subspaces, m2=margins)
def test_consistency_matches_paper_double_sum(seed, b, v, m2):
    W = randn(seed, b, v, scale=0.5)
    rows = W.tolist()
    paper = sum(max(0.0, math.dist(rows[i], rows[j]) - m2) ** 2
                for i in range(b) for j in range(b) if i != j) / (b * (b - 1))
    torch.testing.assert_close(DF.subspace_consistency(W, m2=m2),
                               torch.tensor(paper, dtype=torch.float64))
    torch.testing.assert_close(DF.subspace_consistency(W, m2=m2, reduction="none"),
                               naive_consistency(W, m2)[0])


@given(seed=seeds, b=batch, v=subspaces, k=st.integers(1, 6))
def test_consistency_with_labels_matches_naive_reference(seed, b, v, k):
    W, y = randn(seed, b, v), randint(seed + 1, k, b)
    want, has = naive_consistency(W, 0.1, y.tolist())
    torch.testing.assert_close(DF.subspace_consistency(W, y, reduction="none"), want)
    mean = want[has].mean() if has.any() else torch.tensor(0.0, dtype=torch.float64)
    torch.testing.assert_close(DF.subspace_consistency(W, y), mean)


# --- invariants: diversity -------------------------------------------------------------------
@given(seed=seeds, b=batch, v=subspaces, m1=margins, scale=scales)
def test_prop_diversity_range(seed, b, v, m1, scale):
    d = DF.subspace_diversity(randn(seed, b, v, scale=scale), m1=m1, reduction="none")
    assert ((d >= 0) & (d <= m1**2 + 1e-12)).all()


@given(seed=seeds, b=batch, v=subspaces, m1=margins)
def test_prop_diversity_zero_when_gaps_exceed_margin(seed, b, v, m1):
    gaps = m1 + randn(seed, b, v).abs()  # sorted weights with consecutive gaps >= m1
    W = gaps.cumsum(dim=1)[:, randperm(seed + 1, v)].requires_grad_()
    assert is_attached_zero(DF.subspace_diversity(W, m1=m1))


@given(seed=seeds, b=batch, v=subspaces)
def test_prop_diversity_row_shift_invariance(seed, b, v):
    W, shift = randn(seed, b, v, scale=0.1), randn(seed + 1, b, 1, scale=10.0)
    torch.testing.assert_close(DF.subspace_diversity(W + shift, reduction="none"),
                               DF.subspace_diversity(W, reduction="none"))


@given(seed=seeds, b=batch, v=subspaces)
def test_prop_diversity_subspace_permutation_invariance(seed, b, v):
    W = randn(seed, b, v, scale=0.1)
    torch.testing.assert_close(DF.subspace_diversity(W[:, randperm(seed, v)], reduction="none"),
                               DF.subspace_diversity(W, reduction="none"))


# --- invariants: consistency -----------------------------------------------------------------
@given(seed=seeds, b=batch, v=subspaces, scale=scales, k=st.integers(1, 4))
def test_prop_consistency_non_negative(seed, b, v, scale, k):
    W = randn(seed, b, v, scale=scale)
    assert (DF.subspace_consistency(W, reduction="none") >= 0).all()
    assert (DF.subspace_consistency(W, randint(seed, k, b), reduction="none") >= 0).all()


@given(seed=seeds, b=batch, v=subspaces, m2=st.floats(1e-3, 1.0))
def test_prop_consistency_zero_within_margin(seed, b, v, m2):
    noise = randn(seed, b, v)
    noise = noise / noise.norm(dim=1, keepdim=True) * (0.49 * m2)  # pairwise < m2
    W = (randn(seed + 1, 1, v) + noise).requires_grad_()
    assert is_attached_zero(DF.subspace_consistency(W, m2=m2))


@given(seed=seeds, b=batch, v=subspaces)
def test_prop_consistency_translation_invariance(seed, b, v):
    W, t = randn(seed, b, v), randn(seed + 1, 1, v, scale=5.0)
    torch.testing.assert_close(DF.subspace_consistency(W + t, reduction="none"),
                               DF.subspace_consistency(W, reduction="none"))


@given(seed=seeds, b=batch, v=subspaces, k=st.integers(1, 4))
def test_prop_consistency_permutation_invariance(seed, b, v, k):
    W, y = randn(seed, b, v), randint(seed + 1, k, b)
    ps, pv = randperm(seed + 2, b), randperm(seed + 3, v)
    torch.testing.assert_close(DF.subspace_consistency(W[ps][:, pv], y[ps]),
                               DF.subspace_consistency(W, y))


# --- module == function, reductions, gradcheck ----------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function_and_shapes(reduction):
    W, y = randn(0, 6, 4, scale=0.1), torch.tensor([0, 0, 1, 1, 2, 3])
    div, con = SubspaceDiversity(m1=0.2, reduction=reduction), SubspaceConsistency(
        m2=0.05, reduction=reduction)
    shape = (6,) if reduction == "none" else ()
    assert div(W).shape == shape and con(W).shape == shape and con(W, y).shape == shape
    torch.testing.assert_close(div(W), DF.subspace_diversity(W, m1=0.2, reduction=reduction))
    torch.testing.assert_close(con(W, y), DF.subspace_consistency(W, y, m2=0.05,
                                                                  reduction=reduction))
    per = DF.subspace_consistency(W, y, m2=0.05, reduction="none")
    assert (per[4:] == 0).all()  # labels 2 and 3 have no partner: excluded
    if reduction == "mean":
        torch.testing.assert_close(con(W, y), per[:4].mean())
    assert "m1=0.2" in repr(div) and "m2=0.05" in repr(con)


def test_gradcheck():
    W = randn(1, 4, 3, scale=0.1).requires_grad_()
    y = torch.tensor([0, 1, 0, 1])
    assert torch.autograd.gradcheck(
        lambda w: DF.subspace_diversity(w, m1=0.3, reduction="none"), (W,))
    assert torch.autograd.gradcheck(
        lambda w: DF.subspace_consistency(w, m2=0.01, reduction="none"), (W,))
    assert torch.autograd.gradcheck(lambda w: DF.subspace_consistency(w, y, m2=0.01), (W,))


def test_gradient_finite_at_equal_weights():
    W = torch.full((3, 4), 0.25, requires_grad=True)
    (DF.subspace_diversity(W) + DF.subspace_consistency(W)).backward()
    assert torch.isfinite(W.grad).all()


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    W = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="W: expected 2-D"):
        DF.subspace_diversity(torch.zeros(4))
    with pytest.raises(ValueError, match="W: expected 2-D"):
        DF.subspace_consistency(torch.zeros(4, 3, 1))
    with pytest.raises(ValueError, match="labels: expected shape \\(N,\\) with N=4 from W"):
        DF.subspace_consistency(W, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="m1: expected a value >= 0, got -0.1"):
        DF.subspace_diversity(W, m1=-0.1)
    with pytest.raises(ValueError, match="m1"):
        SubspaceDiversity(m1=-1.0)
    with pytest.raises(ValueError, match="m2: expected a value >= 0"):
        SubspaceConsistency(m2=-0.1)
    with pytest.raises(ValueError, match="reduction"):
        DF.subspace_consistency(W, reduction="avg")


# --- degenerate batches ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 1), (0, 4), (1, 1)])
def test_diversity_degenerate_is_attached_zero(shape):
    W = randn(0, *shape).requires_grad_()
    v = SubspaceDiversity()(W)
    assert is_attached_zero(v)
    v.backward()
    assert DF.subspace_diversity(W, reduction="none").shape == (shape[0],)


@pytest.mark.parametrize("b,labels", [(1, None), (0, None), (3, [0, 1, 2])])
def test_consistency_degenerate_is_attached_zero(b, labels):
    W = randn(0, b, 4).requires_grad_()
    y = None if labels is None else torch.tensor(labels)
    v = SubspaceConsistency()(W, y)
    assert is_attached_zero(v)
    v.backward()
    assert DF.subspace_consistency(W, y, reduction="none").shape == (b,)


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_finite_in_low_precision(dtype):
    for scale in (1e-3, 1.0, 10.0):  # the loss itself must fit fp16 (< 65504)
        W = randn(2, 8, 4, scale=scale).to(dtype).requires_grad_()
        for v, wide in ((DF.subspace_diversity(W), dtype),
                        (DF.subspace_consistency(W, m2=0.0), (torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype))):
            assert v.dtype == wide and torch.isfinite(v)
            (g,) = torch.autograd.grad(v.float(), W)
            assert torch.isfinite(g).all()
    W = randn(3, 8, 4, scale=0.2)
    torch.testing.assert_close(DF.subspace_consistency(W.to(dtype)).double(),
                               DF.subspace_consistency(W), atol=2e-3, rtol=0.05)


def test_half_consistency_at_scale_1e4_returns_finite_float32():  # fp16 used to give inf
    W = (1e4 * randn(8, 8, 4)).half()
    v = DF.subspace_consistency(W)
    assert v.dtype == torch.float32 and torch.isfinite(v)
    v = SubspaceConsistency()(W, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert v.dtype == torch.float32 and torch.isfinite(v)
