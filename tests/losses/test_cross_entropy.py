import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.losses import LabelSmoothingCE
from tests._helpers import batch, classes, is_attached_zero, randint, randn, scales, seeds

epss = st.floats(min_value=0.0, max_value=1.0)


def naive_ls_ce(logits, labels, eps):
    out = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        k = len(row)
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        q = [eps / k + (1 - eps) * (j == y) for j in range(k)]
        out.append(-sum(qj * (v - lse) for qj, v in zip(q, row)))
    return torch.tensor(out, dtype=torch.float64)


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, n=batch, k=classes, eps=epss, scale=scales)
def test_matches_naive_reference(seed, n, k, eps, scale):
    logits, labels = randn(seed, n, k, scale=min(scale, 30.0)), randint(seed, k, n)
    got = DF.label_smoothing_ce(logits, labels, eps=eps, reduction="none")
    torch.testing.assert_close(got, naive_ls_ce(logits, labels, eps), atol=1e-9, rtol=1e-9)


@given(seed=seeds, n=batch, k=classes, eps=epss, scale=scales)
def test_matches_torch_label_smoothing(seed, n, k, eps, scale):
    logits, labels = randn(seed, n, k, scale=scale), randint(seed, k, n)
    torch.testing.assert_close(DF.label_smoothing_ce(logits, labels, eps=eps),
                               F.cross_entropy(logits, labels, label_smoothing=eps))


# --- invariants ------------------------------------------------------------------------------
@given(seed=seeds, n=batch, k=classes, scale=scales)
def test_prop_eps_zero_is_cross_entropy(seed, n, k, scale):
    logits, labels = randn(seed, n, k, scale=scale), randint(seed, k, n)
    torch.testing.assert_close(DF.label_smoothing_ce(logits, labels, eps=0.0, reduction="none"),
                               F.cross_entropy(logits, labels, reduction="none"))


@given(seed=seeds, n=batch, k=classes, eps=epss, scale=scales)
def test_prop_at_least_the_smoothed_target_entropy(seed, n, k, eps, scale):
    logits, labels = randn(seed, n, k, scale=scale), randint(seed, k, n)
    v = DF.label_smoothing_ce(logits, labels, eps=eps, reduction="none")
    assert (v >= DF.smoothed_target_entropy(k, eps) - 1e-9).all()


@given(n=batch, k=classes, eps=st.floats(0.01, 1.0))
def test_prop_bound_attained_at_the_target(n, k, eps):
    labels = torch.arange(n) % k
    q = torch.full((n, k), eps / k, dtype=torch.float64)
    q[torch.arange(n), labels] += 1 - eps
    v = DF.label_smoothing_ce(q.log(), labels, eps=eps, reduction="none")
    torch.testing.assert_close(v, torch.full((n,), DF.smoothed_target_entropy(k, eps),
                                             dtype=torch.float64))


@given(seed=seeds, n=batch, k=classes, eps=epss)
def test_prop_row_shift_invariance(seed, n, k, eps):
    logits, labels = randn(seed, n, k), randint(seed, k, n)
    shift = randn(seed + 1, n, 1, scale=100.0)
    torch.testing.assert_close(DF.label_smoothing_ce(logits + shift, labels, eps=eps),
                               DF.label_smoothing_ce(logits, labels, eps=eps))


@given(k=st.integers(1, 50))
def test_prop_smoothed_target_entropy_ends(k):
    assert DF.smoothed_target_entropy(k, 0.0) == 0.0
    assert math.isclose(DF.smoothed_target_entropy(k, 1.0), math.log(k), abs_tol=1e-12)


# --- module == function, reductions, gradcheck ----------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function_and_shapes(reduction):
    logits, labels = randn(1, 5, 4), torch.tensor([0, 1, 1, 3, 0])
    mod = LabelSmoothingCE(eps=0.2, reduction=reduction)
    got = mod(logits, labels)
    assert got.shape == ((5,) if reduction == "none" else ())
    torch.testing.assert_close(got, DF.label_smoothing_ce(logits, labels, eps=0.2,
                                                          reduction=reduction))
    assert "eps=0.2" in repr(mod)


def test_gradcheck():
    logits, labels = randn(2, 3, 5).requires_grad_(), torch.tensor([4, 0, 2])
    assert torch.autograd.gradcheck(
        lambda z: DF.label_smoothing_ce(z, labels, eps=0.3, reduction="none"), (logits,))


# --- bad input and degenerate batches --------------------------------------------------------
def test_bad_input_names_the_argument():
    z, y = torch.zeros(3, 4), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="eps: expected a value in \\[0, 1\\]"):
        DF.label_smoothing_ce(z, y, eps=1.5)
    with pytest.raises(ValueError, match="eps: expected a value in \\[0, 1\\]"):
        LabelSmoothingCE(eps=-0.1)
    with pytest.raises(ValueError, match="eps: expected a float"):
        LabelSmoothingCE(eps="0.1")
    with pytest.raises(ValueError, match="logits: expected 2-D"):
        DF.label_smoothing_ce(torch.zeros(2, 3, 4), y)
    with pytest.raises(ValueError, match="labels: expected values in \\[0, 4\\)"):
        DF.label_smoothing_ce(z, torch.tensor([0, -1, 2]))
    with pytest.raises(ValueError, match="labels: expected shape \\(N,\\) with N=3"):
        DF.label_smoothing_ce(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        LabelSmoothingCE(reduction="batchmean")
    with pytest.raises(ValueError, match="num_classes"):
        DF.smoothed_target_entropy(0, 0.1)


def test_degenerate_batches():
    logits = torch.zeros(0, 4, requires_grad=True)
    v = DF.label_smoothing_ce(logits, torch.zeros(0, dtype=torch.long))
    assert is_attached_zero(v)
    v.backward()
    one = torch.zeros(1, 1)  # a single class: the loss is 0
    assert float(DF.label_smoothing_ce(one, torch.tensor([0]))) == 0.0


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_finite_in_low_precision_and_huge_logits(dtype):
    logits = (randn(3, 8, 5) * 1e4).to(dtype).requires_grad_()
    v = DF.label_smoothing_ce(logits, randint(3, 5, 8))
    assert v.dtype == dtype and torch.isfinite(v)
    (g,) = torch.autograd.grad(v.float(), logits)
    assert torch.isfinite(g).all()


def test_finite_under_autocast_bf16_cpu():
    lin = torch.nn.Linear(16, 6)
    x = randn(4, 8, 16, dtype=torch.float32) * 1e3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = LabelSmoothingCE()(lin(x), randint(4, 6, 8))
    assert torch.isfinite(v)
    v.float().backward()
    assert torch.isfinite(lin.weight.grad).all()
