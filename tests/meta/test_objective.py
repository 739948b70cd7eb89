import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import dgblocks.functional as DF
from dgblocks.meta import MetaObjective, meta_objective, module_loss, module_params
from tests._helpers import randn, seeds

etas = st.sampled_from([0.0, 0.01, 0.1, 0.5])


def quadratic(seed, d):
    """L(theta; (A, b)) = 1/2 theta^T A theta - b^T theta with A symmetric positive definite."""
    m = randn(seed, d, d)
    return m @ m.T / d + torch.eye(d, dtype=torch.float64), randn(seed + 1, d)


def quad_loss(p, batch):
    a, b = batch
    t = p["theta"]
    return 0.5 * t @ a @ t - b @ t


def tiny_mlp(seed):
    g = torch.Generator().manual_seed(seed)
    return {"w1": torch.randn(3, 2, generator=g, dtype=torch.float64, requires_grad=True),
            "b1": torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True),
            "w2": torch.randn(1, 3, generator=g, dtype=torch.float64, requires_grad=True)}


def mlp_loss(p, batch):
    x, y = batch
    h = torch.tanh(x @ p["w1"].T + p["b1"])
    return ((h @ p["w2"].T).squeeze(1) - y).pow(2).mean()


def mlp_batch(seed, n=5):
    return randn(seed, n, 2), randn(seed + 7, n)


# --- reference: explicit second-order gradient --------------------------------------------------
@given(seed=seeds, d=st.integers(1, 5), eta=etas, gamma=st.sampled_from([0.5, 1.0]))
def test_gradient_matches_explicit_second_order(seed, d, eta, gamma):
    (a1, b1), (a2, b2) = quadratic(seed, d), quadratic(seed + 3, d)
    theta = randn(seed + 5, d).requires_grad_()
    out = meta_objective(quad_loss, {"theta": theta}, (a1, b1), (a2, b2), inner_lr=eta,
                         test_weight=gamma)
    (got,) = torch.autograd.grad(out.loss, theta)
    t = theta.detach()
    adapted = t - eta * (a1 @ t - b1)
    expect = (a1 @ t - b1) + gamma * (torch.eye(d, dtype=t.dtype) - eta * a1) @ (a2 @ adapted - b2)
    torch.testing.assert_close(got, expect)
    torch.testing.assert_close(out.adapted["theta"].detach(), adapted)
    first = meta_objective(quad_loss, {"theta": theta}, (a1, b1), (a2, b2), inner_lr=eta,
                           test_weight=gamma, first_order=True)
    (got1,) = torch.autograd.grad(first.loss, theta)
    torch.testing.assert_close(got1, (a1 @ t - b1) + gamma * (a2 @ adapted - b2))


def test_gradient_matches_finite_differences_on_tiny_mlp():
    p = tiny_mlp(0)
    tr, te = mlp_batch(1), mlp_batch(2)

    def f(w1, b1, w2):
        return meta_objective(mlp_loss, {"w1": w1, "b1": b1, "w2": w2}, tr, te,
                              inner_lr=0.3).loss

    assert torch.autograd.gradcheck(f, (p["w1"], p["b1"], p["w2"]))
    # the first-order gradient is measurably different: the Hessian term matters here
    g2 = torch.autograd.grad(f(p["w1"], p["b1"], p["w2"]), p["w1"])[0]
    g1 = torch.autograd.grad(meta_objective(mlp_loss, p, tr, te, inner_lr=0.3,
                                            first_order=True).loss, p["w1"])[0]
    assert not torch.allclose(g1, g2, atol=1e-6)


def test_functional_call_on_a_module_matches_manual_parameters():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1, bias=False)).double()
    fn = module_loss(net, lambda call, b: (call(b[0]).squeeze(1) - b[1]).pow(2).mean())
    tr, te = mlp_batch(1), mlp_batch(2)
    out = meta_objective(fn, module_params(net), tr, te, inner_lr=0.3)
    out.loss.backward()
    p = {"w1": net[0].weight.detach().clone().requires_grad_(),
         "b1": net[0].bias.detach().clone().requires_grad_(),
         "w2": net[2].weight.detach().clone().requires_grad_()}
    ref = meta_objective(mlp_loss, p, tr, te, inner_lr=0.3)
    ref.loss.backward()
    torch.testing.assert_close(out.loss, ref.loss)
    torch.testing.assert_close(net[0].weight.grad, p["w1"].grad)
    torch.testing.assert_close(net[2].weight.grad, p["w2"].grad)


# --- invariants ---------------------------------------------------------------------------------
@given(seed=seeds, gamma=st.sampled_from([0.0, 0.5, 1.0]))
def test_zero_inner_lr_is_the_sum_of_both_losses(seed, gamma):
    p, tr, te = tiny_mlp(seed % 1000), mlp_batch(seed), mlp_batch(seed + 1)
    out = meta_objective(mlp_loss, p, tr, te, inner_lr=0.0, test_weight=gamma)
    torch.testing.assert_close(out.loss, mlp_loss(p, tr) + gamma * mlp_loss(p, te))


@given(seed=seeds, eta=etas)
def test_orders_agree_for_a_linear_meta_train_loss(seed, eta):
    theta = randn(seed, 4).requires_grad_()
    c = randn(seed + 1, 4)

    def loss(p, batch):
        return c @ p["theta"] if batch == "train" else p["theta"].pow(2).sum()

    g = [torch.autograd.grad(meta_objective(loss, {"theta": theta}, "train", "test",
                                            inner_lr=eta, first_order=fo).loss, theta)[0]
         for fo in (False, True)]
    torch.testing.assert_close(g[0], g[1])


# --- module == function, degenerate, dtypes, bad input -----------------------------------------
def test_module_matches_function_and_repr():
    p, tr, te = tiny_mlp(3), mlp_batch(4), mlp_batch(5)
    meta = MetaObjective(inner_lr=0.2, test_weight=0.5)
    torch.testing.assert_close(meta(mlp_loss, p, tr, te).loss,
                               DF.meta_objective(mlp_loss, p, tr, te, inner_lr=0.2,
                                                 test_weight=0.5).loss)
    assert meta(mlp_loss, p, tr, te, inner_lr=0.0).loss.item() == pytest.approx(
        (mlp_loss(p, tr) + 0.5 * mlp_loss(p, te)).item())
    assert "inner_lr=0.2" in repr(meta)


def test_parameter_unused_by_meta_train_keeps_its_value_and_gets_a_gradient():
    p = {"a": torch.ones(2, requires_grad=True), "b": torch.ones(2, requires_grad=True)}
    out = meta_objective(lambda q, s: (q["a"] ** 2).sum() if s == "tr" else
                         (q["a"] * q["b"]).sum(), p, "tr", "te", inner_lr=0.1)
    assert out.adapted["b"] is p["b"]
    out.loss.backward()
    assert torch.isfinite(p["a"].grad).all() and torch.isfinite(p["b"].grad).all()


def test_frozen_parameters_are_not_adapted():
    p = {"w": torch.ones(2, requires_grad=True), "frozen": torch.ones(2)}
    out = meta_objective(lambda q, _: (q["w"] * q["frozen"]).pow(2).sum(), p, 0, 0, inner_lr=1.0)
    assert out.adapted["frozen"] is p["frozen"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_finite(dtype):
    p = {k: v.detach().to(dtype).requires_grad_() for k, v in tiny_mlp(1).items()}
    tr, te = ((t.to(dtype) for t in mlp_batch(s)) for s in (2, 3))
    out = meta_objective(mlp_loss, p, tuple(tr), tuple(te), inner_lr=0.1)
    out.loss.backward()
    assert torch.isfinite(out.loss.float()) and torch.isfinite(p["w1"].grad.float()).all()


def test_bad_input_names_the_argument():
    p = tiny_mlp(0)
    b = mlp_batch(0)
    with pytest.raises(ValueError, match="inner_lr"):
        meta_objective(mlp_loss, p, b, b, inner_lr=-0.1)
    with pytest.raises(ValueError, match="inner_lr"):
        MetaObjective(inner_lr=-1.0)
    with pytest.raises(ValueError, match="test_weight"):
        meta_objective(mlp_loss, p, b, b, inner_lr=0.1, test_weight=-1.0)
    with pytest.raises(ValueError, match="params"):
        meta_objective(mlp_loss, {}, b, b, inner_lr=0.1)
    with pytest.raises(ValueError, match="params"):
        meta_objective(mlp_loss, {k: v.detach() for k, v in p.items()}, b, b, inner_lr=0.1)
    with pytest.raises(ValueError, match="loss_fn: expected a scalar"):
        meta_objective(lambda q, _: q["w1"], p, b, b, inner_lr=0.1)


# Gradient reversal inside the inner step: the meta-gradient is the true derivative of
# L_mte(theta - eta * g(theta)) with g the *reversed* gradient. Autograd alone differentiates the
# layer's pseudo-derivative a second time: on y = GRL_c(x) * w, L = y^2 it gives
# d g_x / dx = +2 c^2 w^2 where the reversed gradient g_x = -2 c x w^2 has derivative -2 c w^2.
C, ETA = 0.7, 0.1


def grl_loss(p, batch):
    if batch == "train":
        return (DF.grad_reverse(p["x"], C) * p["w"]).pow(2).sum()
    return (p["x"] * 1.3 + p["w"] * 0.4).pow(2).sum()


def grl_params():
    return {"x": torch.tensor([0.5], dtype=torch.float64, requires_grad=True),
            "w": torch.tensor([3.0], dtype=torch.float64, requires_grad=True)}


def test_inner_step_through_gradient_reversal_has_the_exact_derivative():
    p = grl_params()
    out = meta_objective(grl_loss, p, "train", "test", inner_lr=ETA)
    dx = torch.autograd.grad(out.adapted["x"], p["x"], retain_graph=True)[0]
    # x' = x - eta * g_x, g_x = -2 c x w^2 (reversed): dx'/dx = 1 + 2 eta c w^2 (old: 1 - 2 eta c^2 w^2)
    torch.testing.assert_close(dx, torch.tensor([1 + 2 * ETA * C * 9.0], dtype=torch.float64))
    # the inner step uses the reversed gradient: x' = x + eta * 2 c x w^2
    torch.testing.assert_close(out.adapted["x"].detach(),
                               torch.tensor([0.5 + ETA * 2 * C * 0.5 * 9.0], dtype=torch.float64))


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_through_gradient_reversal_matches_finite_differences(first_order):
    p = grl_params()
    out = meta_objective(grl_loss, p, "train", "test", inner_lr=ETA, first_order=first_order)
    out.loss.backward()

    def g(x, w):  # the reversed gradient of the meta-train loss
        return -C * 2 * x * w**2, 2 * x**2 * w

    def meta_test(x, w, x0=None, w0=None):  # L_mte(theta'); first order freezes g at theta0
        gx, gw = g(x if x0 is None else x0, w if w0 is None else w0)
        return ((x - ETA * gx) * 1.3 + (w - ETA * gw) * 0.4) ** 2

    x, w, e = 0.5, 3.0, 1e-6
    fo = dict(x0=x, w0=w) if first_order else {}
    dx = (meta_test(x + e, w, **fo) - meta_test(x - e, w, **fo)) / (2 * e) + g(x, w)[0]
    dw = (meta_test(x, w + e, **fo) - meta_test(x, w - e, **fo)) / (2 * e) + g(x, w)[1]
    assert p["x"].grad.item() == pytest.approx(dx, rel=1e-6)
    assert p["w"].grad.item() == pytest.approx(dw, rel=1e-6)
    assert out.meta_train.item() == pytest.approx((x * w) ** 2)  # the value is unchanged
