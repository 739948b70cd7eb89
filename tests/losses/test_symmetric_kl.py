import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.losses import SymmetricKL
from tests._helpers import batch, is_attached_zero, randn, scales, seeds, small

taus = st.sampled_from([2e-3, 0.1, 1.0, 5.0])
dims = st.integers(min_value=1, max_value=12)


def _log_softmax(row, tau):
    z = [v / tau for v in row]
    m = max(z)
    lse = m + math.log(sum(math.exp(v - m) for v in z))
    return [v - lse for v in z]


def naive_kl(lp, lq):
    return sum(math.exp(a) * (a - b) for a, b in zip(lp, lq))


def naive_symmetric_kl(a, b, tau):
    out = []
    for ra, rb in zip(a.tolist(), b.tolist()):
        lp, lq = _log_softmax(ra, tau), _log_softmax(rb, tau)
        out.append(naive_kl(lp, lq) + naive_kl(lq, lp))
    return torch.tensor(out, dtype=torch.float64)


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, n=batch, d=dims, tau=st.sampled_from([0.1, 1.0, 5.0]), scale=scales)
def test_matches_naive_reference(seed, n, d, tau, scale):
    a, b = randn(seed, n, d, scale=min(scale, 10.0)), randn(seed + 1, n, d, scale=min(scale, 10.0))
    got = DF.symmetric_kl(a, b, tau=tau, reduction="none")
    torch.testing.assert_close(got, naive_symmetric_kl(a, b, tau), atol=1e-9, rtol=1e-7)


@given(seed=seeds, n=batch, k=small, d=dims, tau=taus)
def test_neighbours_are_averaged(seed, n, k, d, tau):
    a, b = randn(seed, n, d), randn(seed + 1, n, k, d)
    got = DF.symmetric_kl(a, b, tau=tau, reduction="none")
    each = torch.stack([DF.symmetric_kl(a, b[:, j], tau=tau, reduction="none") for j in range(k)])
    torch.testing.assert_close(got, each.mean(0))
    # reduction="sum" over (N, k, D) is DDAN eq 8: sum_n 1/k sum_i [KL + KL]
    torch.testing.assert_close(DF.symmetric_kl(a, b, tau=tau, reduction="sum"), each.mean(0).sum())


def test_mask_averages_the_valid_neighbours_only():
    a, b = randn(0, 3, 5), randn(1, 3, 4, 5)
    mask = torch.tensor([[True, False, True, False], [False] * 4, [True] * 4])
    b_bad = b.clone()
    b_bad[~mask] = 1e3  # whatever the pool holds at invalid slots does not matter
    got = DF.symmetric_kl(a, b_bad, tau=0.5, mask=mask, reduction="none")
    want = torch.stack([DF.symmetric_kl(a[:1], b[:1, [0, 2]], tau=0.5),
                        torch.tensor(0.0, dtype=torch.float64),
                        DF.symmetric_kl(a[2:], b[2:], tau=0.5)])
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(SymmetricKL(tau=0.5)(a, b_bad, mask), want.mean())


# --- invariants ------------------------------------------------------------------------------
@given(seed=seeds, n=batch, d=dims, tau=taus, scale=scales)
def test_prop_symmetric(seed, n, d, tau, scale):
    a, b = randn(seed, n, d, scale=scale), randn(seed + 1, n, d, scale=scale)
    assert torch.equal(DF.symmetric_kl(a, b, tau=tau, reduction="none"),
                       DF.symmetric_kl(b, a, tau=tau, reduction="none"))


@given(seed=seeds, n=batch, d=dims, tau=taus, scale=scales)
def test_prop_nonnegative_and_zero_on_equal_inputs(seed, n, d, tau, scale):
    a, b = randn(seed, n, d, scale=scale), randn(seed + 1, n, d, scale=scale)
    assert (DF.symmetric_kl(a, b, tau=tau, reduction="none") >= 0).all()
    assert torch.equal(DF.symmetric_kl(a, a, tau=tau, reduction="none"), torch.zeros(n).double())


@given(seed=seeds, n=batch, d=dims, tau=st.sampled_from([0.1, 1.0, 5.0]))
def test_prop_row_shift_invariance(seed, n, d, tau):
    a, b = randn(seed, n, d), randn(seed + 1, n, d)
    sa, sb = randn(seed + 2, n, 1, scale=10.0), randn(seed + 3, n, 1, scale=10.0)
    torch.testing.assert_close(DF.symmetric_kl(a + sa, b + sb, tau=tau, reduction="none"),
                               DF.symmetric_kl(a, b, tau=tau, reduction="none"))


# --- module == function, reductions, gradcheck ----------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function_and_shapes(reduction):
    a, b = randn(1, 5, 6), randn(2, 5, 3, 6)
    mod = SymmetricKL(tau=0.5, reduction=reduction)
    for other in (b[:, 0], b):
        got = mod(a, other)
        assert got.shape == ((5,) if reduction == "none" else ())
        torch.testing.assert_close(got, DF.symmetric_kl(a, other, tau=0.5, reduction=reduction))
    assert "tau=0.5" in repr(mod)


def test_gradcheck():
    a, b = randn(3, 2, 3).requires_grad_(), randn(4, 2, 2, 3).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, y: DF.symmetric_kl(x, y, tau=0.7, reduction="none"), (a, b))
    assert torch.autograd.gradcheck(
        lambda x, y: DF.symmetric_kl(x, y, tau=0.7), (a, b[:, 0]))


# --- bad input and degenerate batches --------------------------------------------------------
def test_bad_input_names_the_argument():
    a = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="tau: expected a value > 0"):
        DF.symmetric_kl(a, a, tau=0.0)
    with pytest.raises(ValueError, match="tau: expected a finite"):
        SymmetricKL(tau=float("inf"))
    with pytest.raises(TypeError):
        SymmetricKL()  # tau is required: there is no sensible default for features
    with pytest.raises(ValueError, match="b: expected shape \\(N, D\\) with D=4"):
        DF.symmetric_kl(a, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="b: expected shape \\(N, k, D\\) with N=3"):
        DF.symmetric_kl(a, torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="b: expected at least one neighbour"):
        DF.symmetric_kl(a, torch.zeros(3, 0, 4))
    with pytest.raises(ValueError, match="mask: expected shape \\(N, k\\) with k=2"):
        DF.symmetric_kl(a, torch.zeros(3, 2, 4), mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask: expected a bool"):
        DF.symmetric_kl(a, torch.zeros(3, 2, 4), mask=torch.ones(3, 2))
    with pytest.raises(ValueError, match="mask: only used when b is \\(N, k, D\\)"):
        DF.symmetric_kl(a, a, mask=torch.ones(3, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="a: expected 2-D"):
        DF.symmetric_kl(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="reduction"):
        SymmetricKL(tau=1.0, reduction="batchmean")


def test_degenerate_batch_is_attached_zero():
    a = torch.zeros(0, 4, requires_grad=True)
    v = DF.symmetric_kl(a, torch.zeros(0, 4))
    assert is_attached_zero(v)
    v.backward()


# --- numerics: DDAN's tau = 2e-3 on features of magnitude 10-100 ------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("magnitude", [10.0, 100.0])
def test_finite_at_ddan_temperature(dtype, magnitude):
    a = (randn(5, 16, 64) * magnitude).to(dtype).requires_grad_()
    b = (randn(6, 16, 8, 64) * magnitude).to(dtype)
    v = SymmetricKL(tau=2e-3)(a, b)
    # the value (~1e5 here) exceeds the fp16 range: half inputs give a float32 loss
    assert v.dtype == torch.float32 and torch.isfinite(v) and v > 0
    (g,) = torch.autograd.grad(v, a)
    assert g.dtype == dtype and torch.isfinite(g).all()
    assert g.float().abs().max() <= 1 / 2e-3  # saturated softmaxes: |grad| <= 1 / tau


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_finite_gradient_near_a_tie(dtype):
    # two equal top entries: the gradient is ~ |x| / tau^2 (3e6 here), finite in f32 and bf16
    a = torch.tensor([[100.0, 100.0, 0.0]], dtype=dtype, requires_grad=True)
    b = torch.tensor([[0.0, 50.0, 100.0]], dtype=dtype)
    (g,) = torch.autograd.grad(DF.symmetric_kl(a, b, tau=2e-3), a)
    assert torch.isfinite(g).all() and g.float().abs().max() > 1e6


def test_finite_under_autocast_bf16_cpu():
    lin = torch.nn.Linear(16, 32)
    x = randn(7, 8, 16, dtype=torch.float32) * 30
    pool = randn(8, 8, 4, 32, dtype=torch.float32) * 30
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = SymmetricKL(tau=2e-3)(lin(x), pool)
    assert torch.isfinite(v)
    v.float().backward()
    assert torch.isfinite(lin.weight.grad).all()


@pytest.mark.parametrize("tau", [1e-30, 1e-38])
def test_tiny_temperature_is_finite_and_exact(tau):
    # softmax(a / tau) overflowed to NaN for a tiny tau; now the logits are shifted first and
    # the value is (1/tau) sum_r (p_r - q_r)(a_r - b_r): one-hot softmaxes give
    # (a_i - b_i - a_j + b_j) / tau with i, j the argmax of a and b
    a, b = torch.tensor([[1.0, 0.0, 0.5]]), torch.tensor([[0.0, 2.0, 0.5]])
    got = DF.symmetric_kl(a, b, tau=tau)
    assert torch.isfinite(got)
    torch.testing.assert_close(got.double(), torch.tensor((1.0 - 0.0 - 0.0 + 2.0) / tau,
                                                          dtype=torch.float64), rtol=1e-5, atol=0)


def test_temperature_below_the_reciprocal_of_the_dtype_max_is_refused():
    a = torch.randn(2, 3)
    with pytest.raises(ValueError, match="^tau: expected a value >= 2.94e-39"):
        DF.symmetric_kl(a, a, tau=1e-300)
    assert torch.isfinite(DF.symmetric_kl(a.double(), a.flip(1).double(), tau=1e-300))
