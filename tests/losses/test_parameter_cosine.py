import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import dgblocks.functional as DF
from dgblocks.losses import ParameterCosine
from tests._helpers import seeds

widths = st.integers(1, 6)
pairs = st.integers(1, 4)


def make(seed, i, o, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, 2)).to(dtype)


def naive_cosine(a, b):
    u = [v for p in a.parameters() for v in p.detach().flatten().tolist()]
    w = [v for p in b.parameters() for v in p.detach().flatten().tolist()]
    dot = sum(x * y for x, y in zip(u, w))
    return dot / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in w)))


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, p=pairs, i=widths, o=widths)
def test_matches_naive_reference(seed, p, i, o):
    a = [make(seed + 2 * q, i, o) for q in range(p)]
    b = [make(seed + 2 * q + 1, i, o) for q in range(p)]
    got = DF.parameter_cosine(a, b, reduction="none")
    want = torch.tensor([naive_cosine(x, y) for x, y in zip(a, b)], dtype=torch.float64)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(DF.parameter_cosine(a, b), want.mean())


def test_cdvm_eq2_global_against_each_local():
    g, locals_ = make(0, 3, 4), [make(k, 3, 4) for k in (1, 2, 3)]
    want = sum(naive_cosine(g, lk) for lk in locals_) / 3
    torch.testing.assert_close(DF.parameter_cosine([g], locals_),
                               torch.tensor(want, dtype=torch.float64))
    torch.testing.assert_close(DF.parameter_cosine(g, locals_), DF.parameter_cosine([g], locals_))


# --- invariants (one property test each) -----------------------------------------------------
@given(seed=seeds, p=pairs, i=widths, o=widths, scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_prop_in_minus_one_one(seed, p, i, o, scale):
    a = [make(seed + q, i, o) for q in range(p)]
    b = [[t * scale for t in make(seed + 100 + q, i, o).parameters()] for q in range(p)]
    v = DF.parameter_cosine(a, b, reduction="none")
    assert ((v >= -1) & (v <= 1)).all()


@given(seed=seeds, i=widths, o=widths)
def test_prop_identical_modules_give_one(seed, i, o):
    a = make(seed, i, o)
    b = make(seed, i, o)  # same seed: a distinct module with identical parameters
    torch.testing.assert_close(DF.parameter_cosine([a, a], [a, b]),
                               torch.tensor(1.0, dtype=torch.float64))


@given(seed=seeds, i=widths, o=widths, c=st.floats(1e-3, 1e3))
def test_prop_scale_invariance(seed, i, o, c):
    a, b = make(seed, i, o), make(seed + 1, i, o)
    scaled = [p.detach() * c for p in b.parameters()]
    torch.testing.assert_close(DF.parameter_cosine([a], [scaled]), DF.parameter_cosine(a, b))
    torch.testing.assert_close(DF.parameter_cosine([scaled], [a]), DF.parameter_cosine(a, b))


# --- module == function, reductions, gradcheck ----------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function_and_shapes(reduction):
    a, b = [make(q, 3, 2) for q in range(3)], [make(10 + q, 3, 2) for q in range(3)]
    loss = ParameterCosine(reduction=reduction)
    got = loss(a, b)
    assert got.shape == ((3,) if reduction == "none" else ())
    torch.testing.assert_close(got, DF.parameter_cosine(a, b, reduction=reduction))
    torch.testing.assert_close(loss(list(zip(a, b))), got)
    torch.testing.assert_close(loss(nn.ModuleList(a), nn.ModuleList(b)), got)
    assert repr(loss) == f"ParameterCosine(reduction={reduction!r})"


def test_gradcheck_and_gradient_reaches_both_modules():
    a = [torch.randn(3, 2, dtype=torch.float64, requires_grad=True),
         torch.randn(2, dtype=torch.float64, requires_grad=True)]
    b = [torch.randn(3, 2, dtype=torch.float64, requires_grad=True),
         torch.randn(2, dtype=torch.float64, requires_grad=True)]
    assert torch.autograd.gradcheck(
        lambda w, x, y, z: DF.parameter_cosine([[w, x]], [[y, z]]), (*a, *b))
    g, l1 = make(0, 3, 3, torch.float32), make(1, 3, 3, torch.float32)
    ParameterCosine()([(g, l1)]).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in [*g.parameters(), *l1.parameters()])


def test_minimising_drives_the_cosine_down():
    a, b = make(0, 4, 4, torch.float32), make(1, 4, 4, torch.float32)
    opt = torch.optim.SGD([*a.parameters(), *b.parameters()], lr=0.5)
    start = float(DF.parameter_cosine(a, b).detach())
    for _ in range(50):
        opt.zero_grad()
        DF.parameter_cosine(a, b).backward()
        opt.step()
    assert float(DF.parameter_cosine(a, b).detach()) < min(start, -0.9)


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    a, b = [nn.Linear(3, 2), nn.Linear(3, 2)], [nn.Linear(3, 2), nn.Linear(4, 2)]
    with pytest.raises(ValueError, match="params_b\\[1\\]: expected parameter shapes"):
        DF.parameter_cosine(a, b)
    with pytest.raises(ValueError, match="params_b\\[1\\]: expected parameter shapes .* \\(from"
                                         " params_a\\[0\\]\\)"):
        DF.parameter_cosine([nn.Linear(3, 2)], [nn.Linear(3, 2), nn.Linear(3, 2, bias=False)])
    with pytest.raises(ValueError, match="params_b: expected 2 items"):
        DF.parameter_cosine(a, a * 3)
    with pytest.raises(ValueError, match="params_a: expected at least one module"):
        DF.parameter_cosine([], [])
    with pytest.raises(ValueError, match="params_a\\[0\\]: expected at least one parameter"):
        DF.parameter_cosine([nn.ReLU()], [nn.ReLU()])
    with pytest.raises(ValueError, match="params_a\\[0\\]: expected floating tensors"):
        DF.parameter_cosine([torch.tensor([1, 2])], [torch.tensor([1, 2])])
    with pytest.raises(ValueError, match="modules_a\\[0\\]: expected a \\(module_a, module_b\\)"):
        ParameterCosine()([nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="reduction"):
        ParameterCosine(reduction="avg")


# --- degenerate parameters -------------------------------------------------------------------
def test_zero_parameters_give_zero_with_finite_gradient():
    a = [torch.zeros(4, requires_grad=True)]
    b = [torch.ones(4, requires_grad=True)]
    v = DF.parameter_cosine([a], [b])
    assert float(v.detach()) == 0.0 and v.requires_grad
    v.backward()
    assert torch.isfinite(a[0].grad).all() and torch.isfinite(b[0].grad).all()


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_finite_in_low_precision(dtype):
    for scale in (1e-3, 1.0, 1e3):
        a = [(torch.randn(64, 64) * scale).to(dtype).requires_grad_() for _ in range(2)]
        b = [(torch.randn(64, 64) * scale).to(dtype).requires_grad_() for _ in range(2)]
        v = DF.parameter_cosine([a], [b])
        assert torch.isfinite(v) and -1 <= float(v.detach()) <= 1
        v.backward()
        assert all(torch.isfinite(t.grad).all() for t in a + b)
        same = DF.parameter_cosine([a], [[t.detach().clone() for t in a]])
        torch.testing.assert_close(same.detach(), torch.tensor(1.0), atol=1e-3, rtol=0)


def test_gradient_finite_for_tiny_half_parameters():  # norm ~6e-8 gave inf gradients
    a = torch.full((16,), 1.5e-8).half().requires_grad_()
    b = torch.randn(16, generator=torch.Generator().manual_seed(0)).half().requires_grad_()
    ParameterCosine()(a, b).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
