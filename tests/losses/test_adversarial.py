import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.layers import DannSchedule
from dgblocks.losses import ReverseCrossEntropy
from tests._helpers import batch, classes, is_attached_zero, randint, randn, scales, seeds

coeffs = st.floats(min_value=0.0, max_value=5.0)


def naive_ce(logits, labels):
    out = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        out.append(lse - row[y])
    return torch.tensor(out, dtype=torch.float64)


def naive_ce_grad(logits, labels):
    # d/dz of the mean cross-entropy: (softmax - onehot) / N
    p = logits.softmax(-1)
    return (p - F.one_hot(labels, logits.shape[1]).to(p.dtype)) / logits.shape[0]


# --- reference: value is the CE, gradient is reversed -----------------------------------------
@given(seed=seeds, n=batch, k=classes, scale=scales)
def test_value_matches_naive_cross_entropy(seed, n, k, scale):
    logits, labels = randn(seed, n, k, scale=min(scale, 30.0)), randint(seed, k, n)
    got = DF.reverse_cross_entropy(logits, labels, 0.3, reduction="none")
    torch.testing.assert_close(got, naive_ce(logits, labels), atol=1e-9, rtol=1e-9)


@given(seed=seeds, n=batch, k=classes, coeff=coeffs)
def test_prop_gradient_is_minus_coeff_times_ce_gradient(seed, n, k, coeff):
    logits, labels = randn(seed, n, k).requires_grad_(), randint(seed, k, n)
    (g,) = torch.autograd.grad(DF.reverse_cross_entropy(logits, labels, coeff), logits)
    torch.testing.assert_close(g, -coeff * naive_ce_grad(logits.detach(), labels))


@given(seed=seeds, n=batch, k=classes)
def test_prop_row_shift_invariance(seed, n, k):
    logits, labels = randn(seed, n, k), randint(seed, k, n)
    shift = randn(seed + 1, n, 1, scale=100.0)
    torch.testing.assert_close(DF.reverse_cross_entropy(logits + shift, labels, reduction="none"),
                               DF.reverse_cross_entropy(logits, labels, reduction="none"))


def test_encoder_receives_reversed_gradient():
    enc, head = torch.nn.Linear(6, 4).double(), torch.nn.Linear(4, 3).double()
    x, y = randn(0, 5, 6), torch.tensor([0, 1, 2, 0, 1])
    ref = torch.autograd.grad(F.cross_entropy(head(enc(x)), y), enc.weight)[0]
    got = torch.autograd.grad(DF.reverse_cross_entropy(head(enc(x)), y, 2.0), enc.weight)[0]
    torch.testing.assert_close(got, -2.0 * ref)


def test_gradcheck_through_a_double_reversal():
    # the loss's own gradient is deliberately "wrong" (reversed); reversing twice restores the
    # true cross-entropy gradient, which gradcheck then verifies numerically in float64
    logits, labels = randn(4, 3, 5).requires_grad_(), torch.tensor([4, 0, 2])
    assert torch.autograd.gradcheck(
        lambda z: DF.reverse_cross_entropy(DF.grad_reverse(z, 0.5), labels, 2.0,
                                           reduction="none"), (logits,))


# --- module == function, reductions, schedule ------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function_and_shapes(reduction):
    logits, labels = randn(1, 5, 4).requires_grad_(), torch.tensor([0, 1, 1, 3, 0])
    mod = ReverseCrossEntropy(coeff=0.4, reduction=reduction)
    got = mod(logits, labels)
    want = DF.reverse_cross_entropy(logits, labels, 0.4, reduction=reduction)
    assert got.shape == ((5,) if reduction == "none" else ())
    torch.testing.assert_close(got, want)
    g1 = torch.autograd.grad(got.sum(), logits)[0]
    g2 = torch.autograd.grad(want.sum(), logits)[0]
    torch.testing.assert_close(g1, g2)
    assert f"reduction={reduction!r}" in repr(mod)


def test_module_schedule_steps_and_survives_state_dict():
    a = ReverseCrossEntropy(schedule=DannSchedule(max_steps=10))
    logits, labels = randn(2, 3, 4).requires_grad_(), torch.tensor([0, 1, 2])
    (g0,) = torch.autograd.grad(a(logits, labels), logits)
    assert torch.equal(g0, torch.zeros_like(g0))  # lo = 0 at the start of the warm-up
    a.step(5)
    b = ReverseCrossEntropy(schedule=DannSchedule(max_steps=10))
    b.load_state_dict(a.state_dict())
    (g1,) = torch.autograd.grad(b(logits, labels), logits)
    coeff = float(DF.dann_coeff(0.5))
    torch.testing.assert_close(g1, -coeff * naive_ce_grad(logits.detach(), labels),
                               rtol=1e-6, atol=1e-9)


# --- bad input and degenerate batches --------------------------------------------------------
def test_bad_input_names_the_argument():
    z = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="logits: expected 2-D"):
        DF.reverse_cross_entropy(torch.zeros(4), torch.tensor([0]))
    with pytest.raises(ValueError, match="labels: expected values in \\[0, 4\\)"):
        DF.reverse_cross_entropy(z, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="labels: expected shape \\(N,\\) with N=3"):
        DF.reverse_cross_entropy(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels: expected an integer dtype"):
        DF.reverse_cross_entropy(z, torch.zeros(3))
    with pytest.raises(ValueError, match="coeff: expected a value >= 0"):
        DF.reverse_cross_entropy(z, torch.tensor([0, 1, 2]), -1.0)
    with pytest.raises(ValueError, match="reduction"):
        ReverseCrossEntropy(reduction="avg")
    with pytest.raises(ValueError, match="coeff: expected a value >= 0"):
        ReverseCrossEntropy(coeff=-2.0)


def test_degenerate_batch_is_attached_zero():
    logits = torch.zeros(0, 4, requires_grad=True)
    v = DF.reverse_cross_entropy(logits, torch.zeros(0, dtype=torch.long))
    assert is_attached_zero(v)
    v.backward()


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_finite_in_low_precision_and_huge_logits(dtype):
    logits = (randn(3, 8, 5) * 1e4).to(dtype).requires_grad_()
    v = DF.reverse_cross_entropy(logits, randint(3, 5, 8), 1.0)
    assert v.dtype == dtype and torch.isfinite(v)
    (g,) = torch.autograd.grad(v.float(), logits)
    assert g.dtype == dtype and torch.isfinite(g).all()


def test_finite_under_autocast_bf16_cpu():
    lin = torch.nn.Linear(16, 6)
    x = randn(4, 8, 16, dtype=torch.float32) * 1e3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = ReverseCrossEntropy(coeff=1.0)(lin(x), randint(4, 6, 8))
    assert torch.isfinite(v)
    v.float().backward()
    assert torch.isfinite(lin.weight.grad).all()
