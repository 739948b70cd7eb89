import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.losses import ConsistencyLoss
from tests._helpers import batch, is_attached_zero, randn, random_rotation, scales, seeds

dims = st.integers(1, 8)


def naive_consistency(a, b):
    return torch.tensor([math.dist(x, y) for x, y in zip(a.tolist(), b.tolist())],
                        dtype=torch.float64)


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, n=batch, d=dims, scale=scales)
def test_matches_naive_reference(seed, n, d, scale):
    a, b = randn(seed, n, d, scale=scale), randn(seed + 1, n, d, scale=scale)
    torch.testing.assert_close(DF.consistency_loss(a, b, reduction="none"),
                               naive_consistency(a, b))
    torch.testing.assert_close(DF.consistency_loss(a, b), naive_consistency(a, b).mean())


# --- invariants (one property test each) -----------------------------------------------------
@given(seed=seeds, n=batch, d=dims, scale=scales, equal=st.integers(0, 16))
def test_prop_non_negative_zero_exactly_where_equal(seed, n, d, scale, equal):
    a, b = randn(seed, n, d, scale=scale), randn(seed + 1, n, d, scale=scale)
    same = torch.arange(n) < equal
    b[same] = a[same]
    v = DF.consistency_loss(a, b, reduction="none")
    assert (v >= 0).all() and (v[same] == 0).all() and (v[~same] > 0).all()


@given(seed=seeds, n=batch, d=dims)
def test_prop_symmetric(seed, n, d):
    a, b = randn(seed, n, d), randn(seed + 1, n, d)
    torch.testing.assert_close(DF.consistency_loss(a, b, reduction="none"),
                               DF.consistency_loss(b, a, reduction="none"))


@given(seed=seeds, n=batch, d=dims)
def test_prop_rigid_motion_invariance(seed, n, d):
    a, b = randn(seed, n, d), randn(seed + 1, n, d)
    r, t = random_rotation(seed + 2, d), randn(seed + 3, 1, d, scale=5.0)
    torch.testing.assert_close(DF.consistency_loss(a @ r + t, b @ r + t, reduction="none"),
                               DF.consistency_loss(a, b, reduction="none"))


# --- module == function, reductions, gradcheck ----------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function_and_shapes(reduction):
    a, b = randn(0, 5, 3), randn(1, 5, 3)
    loss = ConsistencyLoss(reduction=reduction)
    assert loss(a, b).shape == ((5,) if reduction == "none" else ())
    torch.testing.assert_close(loss(a, b), DF.consistency_loss(a, b, reduction=reduction))
    assert repr(loss) == f"ConsistencyLoss(reduction={reduction!r})"


def test_gradcheck():
    a, b = randn(0, 4, 3).requires_grad_(), randn(1, 4, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: DF.consistency_loss(x, y, reduction="none"),
                                    (a, b))


def test_gradient_finite_and_zero_where_equal():
    a = randn(0, 4, 3).requires_grad_()
    b = a.detach().clone()
    b[2:] += 1.0
    DF.consistency_loss(a, b).backward()
    assert torch.isfinite(a.grad).all()
    assert (a.grad[:2] == 0).all() and (a.grad[2:] != 0).any()


def test_frozen_side_gets_no_gradient_but_encoder_does():
    enc = torch.nn.Linear(6, 4)
    frozen_j, frozen_k = randn(0, 5, 6, dtype=torch.float32), randn(1, 5, 6, dtype=torch.float32)
    ConsistencyLoss()(enc(frozen_j), enc(frozen_k)).backward()
    assert enc.weight.grad is not None and enc.weight.grad.abs().sum() > 0


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="v_ij: expected 2-D"):
        DF.consistency_loss(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="v_ik: expected shape \\(N, D\\) with N=3"):
        DF.consistency_loss(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="v_ik: expected shape \\(N, D\\) with D=2"):
        DF.consistency_loss(torch.zeros(3, 2), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="reduction"):
        ConsistencyLoss(reduction="avg")


# --- degenerate batches ----------------------------------------------------------------------
def test_empty_batch_is_attached_zero():
    a, b = torch.zeros(0, 4, requires_grad=True), torch.zeros(0, 4)
    v = ConsistencyLoss()(a, b)
    assert is_attached_zero(v)
    v.backward()
    assert DF.consistency_loss(a, b, reduction="none").shape == (0,)


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_finite_in_low_precision(dtype):
    for scale in (1e-4, 1.0, 1e3):
        a = randn(2, 6, 32, scale=scale).to(dtype).requires_grad_()
        b = randn(3, 6, 32, scale=scale).to(dtype)
        v = DF.consistency_loss(a, b)
        assert v.dtype == (torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype) and torch.isfinite(v) and float(v.detach()) > 0
        (g,) = torch.autograd.grad(v.float(), a)
        assert torch.isfinite(g).all()
    a, b = randn(2, 6, 32), randn(3, 6, 32)
    torch.testing.assert_close(DF.consistency_loss(a.to(dtype), b.to(dtype)).double(),
                               DF.consistency_loss(a, b), rtol=0.02, atol=0.0)


def test_nan_row_propagates():  # `sq > 0` is false for NaN: the row used to count as 0
    a, b = randn(0, 3, 4), randn(1, 3, 4)
    a[1, 0] = float("nan")
    assert torch.isnan(DF.consistency_loss(a, b, reduction="none")[1])
    assert torch.isnan(DF.consistency_loss(a, b))
