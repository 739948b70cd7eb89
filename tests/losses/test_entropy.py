import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dgblocks
import dgblocks.functional as DF
from dgblocks.losses import CalibratedNegEntropy, NegEntropy
from tests._helpers import batch, classes, is_attached_zero, randint, randn, randperm, scales, seeds


def naive_neg_entropy(logits, weights=None):
    out = []
    for row in logits.tolist():
        m = max(row)
        ex = [math.exp(v - m) for v in row]
        s = sum(ex)
        c = [e / s for e in ex]
        w = [1.0] * len(row) if weights is None else weights.tolist()
        out.append(sum(wk * ck * math.log(ck) for wk, ck in zip(w, c) if ck > 0))
    return torch.tensor(out, dtype=torch.float64)


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, n=batch, k=classes, scale=scales)
def test_matches_naive_reference(seed, n, k, scale):
    logits = randn(seed, n, k, scale=min(scale, 30.0))
    got = DF.neg_entropy(logits, reduction="none")
    torch.testing.assert_close(got, naive_neg_entropy(logits), atol=1e-9, rtol=1e-9)


@given(seed=seeds, n=batch, k=classes)
def test_cane_matches_naive_reference(seed, n, k):
    logits = randn(seed, n, k)
    prior = randn(seed + 1, k).abs()
    prior = prior / prior.sum()
    got = DF.calibrated_neg_entropy(logits, prior, reduction="none")
    torch.testing.assert_close(got, naive_neg_entropy(logits, prior))


# --- invariants (one property test each) -----------------------------------------------------
@given(seed=seeds, n=batch, k=classes, scale=scales)
def test_prop_range(seed, n, k, scale):
    v = DF.neg_entropy(randn(seed, n, k, scale=scale), reduction="none")
    assert (v <= 1e-12).all() and (v >= -math.log(k) - 1e-9).all()


@given(n=batch, k=classes, c=st.floats(-1e4, 1e4))
def test_prop_uniform_is_minus_log_k(n, k, c):
    v = DF.neg_entropy(torch.full((n, k), c, dtype=torch.float64), reduction="none")
    torch.testing.assert_close(v, torch.full((n,), -math.log(k), dtype=torch.float64))


@given(seed=seeds, n=batch, k=classes)
def test_prop_row_shift_invariance(seed, n, k):
    logits = randn(seed, n, k)
    shift = randn(seed + 1, n, 1, scale=100.0)
    torch.testing.assert_close(DF.neg_entropy(logits + shift, reduction="none"),
                               DF.neg_entropy(logits, reduction="none"))


@given(seed=seeds, n=batch, k=classes)
def test_prop_class_permutation_invariance(seed, n, k):
    logits, w = randn(seed, n, k), randn(seed + 1, k).abs()
    p = randperm(seed, k)
    torch.testing.assert_close(DF.neg_entropy(logits[:, p], weights=w[p]),
                               DF.neg_entropy(logits, weights=w))


@given(seed=seeds, n=batch, k=classes)
def test_prop_cane_uniform_prior_is_ne_over_k(seed, n, k):
    logits = randn(seed, n, k)
    prior = torch.full((k,), 1.0 / k, dtype=torch.float64)
    torch.testing.assert_close(DF.calibrated_neg_entropy(logits, prior),
                               DF.neg_entropy(logits) / k)


@given(seed=seeds, n=batch, k=classes, scale=scales)
def test_prop_cane_range(seed, n, k, scale):
    prior = DF.class_prior(randint(seed, k, 50), k).double()
    v = DF.calibrated_neg_entropy(randn(seed, n, k, scale=scale), prior, reduction="none")
    assert (v <= 1e-12).all() and (v >= -prior.max() * math.log(k) - 1e-9).all()


@given(seed=seeds, n=batch, k=classes)
def test_prop_cane_permutation_invariance(seed, n, k):
    logits, prior = randn(seed, n, k), DF.class_prior(randint(seed, k, 40), k).double()
    p = randperm(seed + 2, k)
    torch.testing.assert_close(DF.calibrated_neg_entropy(logits[:, p], prior[p]),
                               DF.calibrated_neg_entropy(logits, prior))


@given(seed=seeds, k=classes, n=st.integers(1, 60))
def test_prop_class_prior_is_distribution(seed, k, n):
    p = DF.class_prior(randint(seed, k, n), k)
    assert (p >= 0).all()
    torch.testing.assert_close(p.sum(), torch.tensor(1.0))


# --- focal variant ---------------------------------------------------------------------------
def test_cane_focal_weights_each_sample_by_its_class_prior():
    logits = randn(0, 6, 3)
    labels = torch.tensor([0, 1, 2, 0, 0, 1])
    prior = DF.class_prior(labels, 3).double()
    got = DF.calibrated_neg_entropy(logits, prior, labels=labels, focal=True, reduction="none")
    torch.testing.assert_close(got, naive_neg_entropy(logits) * prior[labels])


# --- module == function, reductions, gradcheck ----------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function_and_shapes(reduction):
    logits = randn(1, 5, 4)
    labels = torch.tensor([0, 1, 1, 3, 0])
    expected_shape = (5,) if reduction == "none" else ()
    ne = NegEntropy(reduction=reduction)(logits)
    assert ne.shape == expected_shape
    torch.testing.assert_close(ne, DF.neg_entropy(logits, reduction=reduction))
    cane = CalibratedNegEntropy.from_labels(labels, num_classes=4, reduction=reduction)
    torch.testing.assert_close(
        cane(logits).double(), DF.calibrated_neg_entropy(logits, cane.prior.double(), reduction=reduction))
    focal = CalibratedNegEntropy.from_labels(labels, num_classes=4, focal=True, reduction=reduction)
    assert focal(logits, labels).shape == expected_shape


def test_gradcheck():
    logits = randn(2, 3, 4).requires_grad_()
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: DF.neg_entropy(z, reduction="none"), (logits,))
    assert torch.autograd.gradcheck(lambda z: DF.calibrated_neg_entropy(z, prior), (logits,))


def test_state_dict_round_trip():
    a = CalibratedNegEntropy(prior=torch.tensor([0.7, 0.3]))
    b = CalibratedNegEntropy(prior=torch.tensor([0.5, 0.5]))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b.prior, a.prior)
    assert "num_classes=2" in repr(a)


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="logits: expected 2-D"):
        DF.neg_entropy(torch.zeros(3))
    with pytest.raises(ValueError, match="weights: expected shape"):
        DF.neg_entropy(torch.zeros(3, 4), weights=torch.ones(5))
    with pytest.raises(ValueError, match="reduction"):
        DF.neg_entropy(torch.zeros(3, 4), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        NegEntropy(reduction="avg")
    with pytest.raises(ValueError, match="labels: expected values in \\[0, 3\\)"):
        DF.class_prior(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="labels: expected shape \\(N,\\) with N=2"):
        DF.calibrated_neg_entropy(torch.zeros(2, 3), torch.ones(3) / 3,
                                  labels=torch.tensor([0, 1, 2]), focal=True)
    with pytest.raises(ValueError, match="labels: required"):
        DF.calibrated_neg_entropy(torch.zeros(2, 3), torch.ones(3) / 3, focal=True)
    with pytest.raises(ValueError, match="prior: expected non-negative"):
        CalibratedNegEntropy(prior=torch.tensor([-0.1, 1.1]))
    with pytest.raises(ValueError, match="num_classes"):
        DF.class_prior(torch.tensor([0]), 0)
    with pytest.raises(ValueError, match="logits: expected finite"):
        with dgblocks.checks(nan=True):
            DF.neg_entropy(torch.tensor([[float("nan"), 0.0]]))


def test_degenerate_batch_is_attached_zero():
    logits = torch.zeros(0, 4, requires_grad=True)
    v = DF.neg_entropy(logits)
    assert is_attached_zero(v)
    v.backward()


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_finite_in_low_precision_and_huge_logits(dtype):
    logits = (randn(3, 8, 5) * 1e4).to(dtype).requires_grad_()
    prior = torch.full((5,), 0.2)
    for v in (DF.neg_entropy(logits), DF.calibrated_neg_entropy(logits, prior)):
        assert v.dtype == dtype and torch.isfinite(v)
        (g,) = torch.autograd.grad(v.float(), logits)
        assert torch.isfinite(g).all()


def test_finite_under_autocast_bf16_cpu():
    lin = torch.nn.Linear(16, 6)
    x = randn(4, 8, 16, dtype=torch.float32) * 1e3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = NegEntropy()(lin(x))
    assert torch.isfinite(v)
    v.float().backward()
    assert torch.isfinite(lin.weight.grad).all()
