import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.layers import ConstantSchedule, DannSchedule, GradientReversal
from tests._helpers import randn, scales, seeds, small

coeffs = st.floats(min_value=0.0, max_value=10.0)
shapes = st.lists(small, min_size=1, max_size=3)


def naive_dann(p, hi, lo, gamma):
    p = min(max(p, 0.0), 1.0)
    return 2 * (hi - lo) / (1 + math.exp(-gamma * p)) - (hi - lo) + lo


# --- grad_reverse: reference and invariants -------------------------------------------------
@given(seed=seeds, shape=shapes, scale=scales)
def test_prop_forward_is_identity(seed, shape, scale):
    x = randn(seed, *shape, scale=scale)
    y = DF.grad_reverse(x, 0.7)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(y, x)


@given(seed=seeds, shape=shapes, coeff=coeffs, as_tensor=st.booleans())
def test_prop_gradient_is_minus_coeff_times_upstream(seed, shape, coeff, as_tensor):
    x = randn(seed, *shape).requires_grad_()
    upstream = randn(seed + 1, *shape)
    c = torch.tensor(coeff, dtype=torch.float64) if as_tensor else coeff
    (g,) = torch.autograd.grad(DF.grad_reverse(x, c), x, upstream)
    torch.testing.assert_close(g, -coeff * upstream, atol=0, rtol=1e-12)


def test_zero_coeff_blocks_the_gradient():
    x = torch.ones(3, requires_grad=True)
    DF.grad_reverse(x, 0.0).sum().backward()
    assert torch.equal(x.grad, torch.zeros(3))


def test_chained_layers_and_composition_with_a_loss():
    # encoder -> GRL -> head: the head's gradient is untouched, the encoder's is reversed
    enc, head = torch.nn.Linear(4, 3).double(), torch.nn.Linear(3, 2).double()
    x = randn(0, 5, 4)
    ref = head(enc(x)).square().sum()
    ref_grads = torch.autograd.grad(ref, [enc.weight, head.weight])
    out = head(DF.grad_reverse(enc(x), 0.5)).square().sum()
    got = torch.autograd.grad(out, [enc.weight, head.weight])
    torch.testing.assert_close(got[0], -0.5 * ref_grads[0])
    torch.testing.assert_close(got[1], ref_grads[1])


def test_gradcheck_through_a_double_reversal():
    # a single reversal has no numerical counterpart; two of them, 0.5 and 2, are the identity
    x = randn(5, 3, 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: DF.grad_reverse(DF.grad_reverse(z, 0.5), 2.0).sin(),
                                    (x,))


def test_torch_func_and_second_order():
    # CDVM's meta-learning runs torch.func transforms and second-order gradients through it
    x = randn(1, 4, 3)
    f = lambda z: DF.grad_reverse(z, 0.5).square().sum()  # noqa: E731
    torch.testing.assert_close(torch.func.grad(f)(x[0]), -x[0])
    torch.testing.assert_close(torch.func.vmap(torch.func.grad(f))(x), -x)
    xr = x.clone().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda z: DF.grad_reverse(z, 0.7), (xr,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_gradient_keeps_dtype(dtype):
    x = (randn(2, 4, 3) * 1e3).to(dtype).requires_grad_()
    y = GradientReversal(schedule=DannSchedule(max_steps=4))(x)  # float32 tensor coefficient
    (g,) = torch.autograd.grad(y.float().sum(), x)
    assert y.dtype == dtype and g.dtype == dtype and torch.isfinite(g).all()


# --- dann_coeff ------------------------------------------------------------------------------
@given(p=st.floats(0.0, 1.0), lo=st.floats(0.0, 1.0), span=st.floats(0.0, 5.0),
       gamma=st.floats(0.1, 50.0))
def test_dann_coeff_matches_formula(p, lo, span, gamma):
    got = DF.dann_coeff(torch.tensor(p, dtype=torch.float64), hi=lo + span, lo=lo, gamma=gamma)
    assert got.dtype == torch.float64
    assert math.isclose(float(got), naive_dann(p, lo + span, lo, gamma), rel_tol=1e-9,
                        abs_tol=1e-12)


@given(lo=st.floats(0.0, 1.0), span=st.floats(0.0, 5.0), gamma=st.floats(0.1, 50.0))
def test_prop_dann_coeff_is_lo_at_start(lo, span, gamma):
    assert math.isclose(float(DF.dann_coeff(0.0, hi=lo + span, lo=lo, gamma=gamma)), lo,
                        abs_tol=1e-6)


@pytest.mark.parametrize("p", [1.5, -0.5, float("nan"), torch.tensor([0.5, 1.5]),
                               torch.tensor([float("nan")]), torch.tensor(-1e-3)])
def test_dann_coeff_refuses_a_progress_outside_0_1(p):
    # a progress of 1.5 was silently clipped to 1 (a schedule with a wrong max_steps)
    with pytest.raises(ValueError, match="^p: expected"):
        DF.dann_coeff(p)


@given(seed=seeds, lo=st.floats(0.0, 1.0), span=st.floats(0.0, 5.0), gamma=st.floats(0.1, 50.0))
def test_prop_dann_coeff_monotone_within_range(seed, lo, span, gamma):
    p = torch.rand(64, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    p = torch.cat([p.sort().values, torch.tensor([1.0], dtype=torch.float64)])
    c = DF.dann_coeff(p, hi=lo + span, lo=lo, gamma=gamma)
    assert (c.diff() >= -1e-12).all()
    assert (c >= lo - 1e-12).all() and (c <= lo + span + 1e-12).all()


@given(lo=st.floats(0.0, 1.0), span=st.floats(0.0, 5.0), gamma=st.floats(0.1, 50.0))
def test_prop_dann_coeff_near_hi_at_end(lo, span, gamma):
    c = float(DF.dann_coeff(torch.tensor(1.0, dtype=torch.float64), hi=lo + span, lo=lo,
                            gamma=gamma))
    assert lo + span - c <= 2 * span / (1 + math.exp(gamma)) + 1e-12
    assert abs(float(DF.dann_coeff(torch.tensor(1.0, dtype=torch.float64))) - 1) < 1e-4


def test_dann_coeff_gradcheck():
    p = torch.tensor([0.1, 0.4, 0.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: DF.dann_coeff(t, hi=2.0, lo=0.5), (p,))


# --- schedules and the module ----------------------------------------------------------------
def test_dann_schedule_follows_the_formula_step_by_step():
    s = DannSchedule(max_steps=10, hi=2.0, lo=0.5, gamma=10.0)
    for n in range(13):
        assert math.isclose(float(s()), naive_dann(n / 10, 2.0, 0.5, 10.0), rel_tol=1e-6)
        s.step()
    assert int(s.steps) == 13 and float(s.progress) == 1.0


def test_state_dict_round_trip_restores_the_step():
    a = GradientReversal(schedule=DannSchedule(max_steps=100))
    a.step(37)
    assert set(a.state_dict()) == {"schedule.steps"}
    b = GradientReversal(schedule=DannSchedule(max_steps=100))
    assert float(b.coeff) == 0.0
    b.load_state_dict(a.state_dict())
    assert int(b.schedule.steps) == 37
    torch.testing.assert_close(b.coeff, a.coeff)
    c = ConstantSchedule(value=0.3)
    c.load_state_dict(ConstantSchedule(value=0.6).state_dict())
    torch.testing.assert_close(c(), torch.tensor(0.6))


@pytest.mark.parametrize("coeff", [None, 0.0, 0.25, 3.0])
def test_module_equals_function(coeff):
    x = randn(3, 4, 5).requires_grad_()
    grl = GradientReversal(coeff=coeff)
    expected_coeff = 1.0 if coeff is None else coeff
    (g_mod,) = torch.autograd.grad(grl(x).sum(), x)
    (g_fn,) = torch.autograd.grad(DF.grad_reverse(x, expected_coeff).sum(), x)
    torch.testing.assert_close(g_mod, g_fn)
    assert "auto_step=False" in repr(grl) and "value=" in repr(grl)


def test_auto_step_counts_training_forwards_only():
    grl = GradientReversal(schedule=DannSchedule(max_steps=4), auto_step=True)
    x = torch.ones(2, 2, requires_grad=True)
    grl(x)
    grl(x)
    assert int(grl.schedule.steps) == 2
    grl.eval()(x)
    assert int(grl.schedule.steps) == 2
    manual = GradientReversal(schedule=DannSchedule(max_steps=4))
    manual(x)
    assert int(manual.schedule.steps) == 0  # default: the loop calls .step()


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="coeff: expected a value >= 0"):
        DF.grad_reverse(x, -1.0)
    with pytest.raises(ValueError, match="coeff: expected a finite"):
        DF.grad_reverse(x, float("nan"))
    with pytest.raises(ValueError, match="coeff: expected a scalar tensor"):
        DF.grad_reverse(x, torch.ones(2))
    with pytest.raises(ValueError, match="x: expected a torch.Tensor"):
        DF.grad_reverse([1.0], 1.0)
    with pytest.raises(ValueError, match="coeff: expected a value >= 0"):
        GradientReversal(coeff=-0.5)
    with pytest.raises(ValueError, match="schedule: expected either coeff or schedule"):
        GradientReversal(coeff=1.0, schedule=ConstantSchedule())
    with pytest.raises(ValueError, match="schedule: expected an nn.Module"):
        GradientReversal(schedule=lambda: 1.0)
    with pytest.raises(ValueError, match="max_steps: expected an int >= 1"):
        DannSchedule(max_steps=0)
    with pytest.raises(ValueError, match="max_steps: expected an int"):
        DannSchedule(max_steps=10.5)
    with pytest.raises(ValueError, match="hi: expected a value >= lo"):
        DannSchedule(max_steps=10, hi=0.1, lo=0.5)
    with pytest.raises(ValueError, match="lo: expected a value >= 0"):
        DannSchedule(max_steps=10, lo=-0.1)
    with pytest.raises(ValueError, match="gamma: expected a value > 0"):
        DannSchedule(max_steps=10, gamma=0.0)
    with pytest.raises(ValueError, match="gamma: expected a finite"):
        DF.dann_coeff(0.5, gamma=float("inf"))
    with pytest.raises(ValueError, match="value: expected a value >= 0"):
        ConstantSchedule(value=-1.0)
    with pytest.raises(ValueError, match="n: expected an int >= 0"):
        DannSchedule(max_steps=3).step(-1)
