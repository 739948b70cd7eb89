import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import dgblocks.functional as DF
from dgblocks.meta import meta_objective, module_loss, module_params
from dgblocks.meta.norm import FusedNormDoubleBackward, batch_norm_train
from tests._helpers import randn, scales, seeds

shapes = st.sampled_from([(5, 3), (4, 2, 6), (3, 4, 3, 2), (2, 3, 2, 2, 2)])


def native(x, w, b, rm=None, rv=None):
    return F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)


def fused(x, w, b, rm=None, rv=None):
    return batch_norm_train(x, w, b, rm, rv, momentum=0.1, eps=1e-5)


def second_order(fn, seed, shape, scale, trained):
    """Value, gradient and a second derivative (through the first gradient) of a loss of
    ``fn``; ``trained`` picks which of x, weight, bias require grad."""
    c = shape[1]
    x = randn(seed, *shape, scale=scale).requires_grad_(trained[0])
    w = randn(seed + 1, c).requires_grad_(trained[1])
    b = randn(seed + 2, c).requires_grad_(trained[2])
    r = randn(seed + 3, *shape)
    leaves = [t for t in (x, w, b) if t.requires_grad]
    y = fn(x, w, b)
    grads = torch.autograd.grad((y.tanh() * r).sum(), leaves, create_graph=True)
    probe = sum((g * randn(seed + 4 + i, *g.shape)).sum() for i, g in enumerate(grads))
    second = torch.autograd.grad(probe, leaves, allow_unused=True)
    return y, grads, second


# --- invariants -----------------------------------------------------------------------------
@given(seed=seeds, shape=shapes, scale=scales,
       trained=st.sampled_from([(True, True, True), (True, False, False), (True, True, False),
                                (True, False, True)]))
def test_prop_equals_native_batch_norm_in_value_gradient_and_second_derivative(
        seed, shape, scale, trained):
    got = second_order(fused, seed, shape, scale, trained)
    ref = second_order(native, seed, shape, scale, trained)
    for a, b in zip(got, ref):
        for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            if q is None:
                assert p is None or not p.abs().max() > 0
            else:
                torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-8 / min(scale, 1.0))


@given(seed=seeds, shape=shapes)
def test_prop_running_statistics_updated_as_by_batch_norm(seed, shape):
    c = shape[1]
    x, w, b = randn(seed, *shape), randn(seed + 1, c), randn(seed + 2, c)
    stats = [(randn(seed + 3, c), randn(seed + 4, c).abs() + 0.1) for _ in range(2)]
    fused(x, w, b, *stats[0])
    native(x, w, b, *stats[1])
    torch.testing.assert_close(stats[0], stats[1])


def test_third_derivative_is_exact():
    x = randn(0, 4, 3, 2, 2).requires_grad_()
    w, b = randn(1, 3).requires_grad_(), randn(2, 3).requires_grad_()
    assert torch.autograd.gradgradcheck(fused, (x, w, b))
    # the backward under create_graph (third derivatives) is the differentiable composite;
    # checked numerically (PyTorch's own batch norm fails this check: its double backward
    # holds the batch statistics constant)
    def first_grads(x, w, b):
        return torch.autograd.grad(fused(x, w, b).tanh().sum(), (x, w), create_graph=True)
    assert torch.autograd.gradgradcheck(first_grads, (x, w, b))


def test_mode_routes_training_norms_only():
    x = torch.randn(4, 3, 5, 5)
    bn, inorm = nn.BatchNorm2d(3), nn.InstanceNorm2d(3, affine=True)
    plain_bn, plain_in = nn.BatchNorm2d(3, affine=False), nn.InstanceNorm2d(3)
    with FusedNormDoubleBackward():
        y_bn, y_in = bn(x), inorm(x)
        y_plain_bn, y_plain_in = plain_bn(x), plain_in(x)
        y_eval = bn.eval()(x)
    assert type(y_bn.grad_fn).__name__ == "_BatchNormTrainBackward"
    assert type(y_in.grad_fn).__name__ == "ViewBackward0"  # (1, N*C, H, W) batch norm, viewed
    assert "BatchNormTrain" not in type(y_plain_bn.grad_fn).__name__
    assert y_plain_in.grad_fn is None or "BatchNormTrain" not in type(y_plain_in.grad_fn).__name__
    torch.testing.assert_close(y_bn, nn.BatchNorm2d(3)(x))
    torch.testing.assert_close(y_in, nn.InstanceNorm2d(3, affine=True)(x))
    torch.testing.assert_close(y_eval, bn(x))


class _Net(nn.Module):
    """Conv -> IN (IBN-style half) + BN -> ReLU -> pooled linear: every routed norm."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.inorm, self.bn = nn.InstanceNorm2d(2, affine=True), nn.BatchNorm2d(2)
        self.bn2, self.fc = nn.BatchNorm2d(4), nn.Linear(4, 3)

    def forward(self, x):
        h = self.conv(x)
        h = torch.cat([self.inorm(h[:, :2]), self.bn(h[:, 2:])], 1)
        return self.fc(self.bn2(h).relu().mean((2, 3)))


@pytest.mark.parametrize("inner_lr", [0.0, 0.3])
def test_meta_objective_gradient_is_the_same_with_fused_norm(inner_lr):
    grads = []
    for fused_norm in (True, False):
        torch.manual_seed(0)
        net = _Net().double()
        fn = module_loss(net, lambda call, b: F.cross_entropy(call(b[0]), b[1]))
        x, y = randn(5, 6, 2, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
        out = meta_objective(fn, module_params(net), (x, y), (x.flip(0), y), inner_lr=inner_lr,
                             fused_norm=fused_norm)
        out.loss.backward()
        grads.append([p.grad for p in net.parameters()] + [net.bn.running_mean.clone()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


# --- bad input, dtypes ------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    w = torch.ones(3)
    with pytest.raises(ValueError, match="x: expected"):
        batch_norm_train(torch.zeros(3), w, w)
    with pytest.raises(ValueError, match="weight: expected shape"):
        batch_norm_train(torch.zeros(4, 3), torch.ones(2), w)
    with pytest.raises(ValueError, match="running_var: expected shape"):
        batch_norm_train(torch.zeros(4, 3), w, w, torch.zeros(3), torch.ones(4))
    with pytest.raises(ValueError, match="weight: expected affine"):
        batch_norm_train(torch.zeros(4, 3), None, w)
    with pytest.raises(ValueError, match="eps"):
        batch_norm_train(torch.zeros(4, 3), w, w, eps=-1.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_second_derivative_is_finite(dtype):
    x = torch.randn(8, 3, 4, 4).to(dtype).requires_grad_()
    w, b = torch.ones(3, dtype=dtype, requires_grad=True), torch.zeros(3, dtype=dtype,
                                                                      requires_grad=True)
    (gx,) = torch.autograd.grad(batch_norm_train(x, w, b).float().tanh().sum(), x,
                                create_graph=True)
    gx.float().pow(2).sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad.float()).all()
    assert torch.isfinite(w.grad.float()).all()


def test_exported_in_functional():
    assert DF.batch_norm_train is batch_norm_train


@pytest.mark.parametrize(("name", "value"), [("running_var", float("nan")),
                                             ("running_var", -1.0),
                                             ("running_mean", float("inf"))])
def test_running_statistics_checked_under_nan_checks(name, value):
    # a NaN or negative running variance was kept by every later update, even with
    # dgblocks.checks(nan=True) asked for
    import dgblocks

    stats = {"running_mean": torch.zeros(3), "running_var": torch.ones(3)}
    stats[name] = torch.full((3,), value)
    x, w, b = torch.randn(8, 3, 4), torch.ones(3), torch.zeros(3)
    with dgblocks.checks(nan=True), pytest.raises(ValueError, match=f"^{name}: expected"):
        batch_norm_train(x, w, b, stats["running_mean"], stats["running_var"])
    batch_norm_train(x, w, b, stats["running_mean"], stats["running_var"])  # off: not read
    good = {"running_mean": torch.zeros(3), "running_var": torch.ones(3)}
    with dgblocks.checks(nan=True):
        batch_norm_train(x, w, b, good["running_mean"], good["running_var"])
    assert torch.isfinite(good["running_var"]).all() and (good["running_var"] >= 0).all()
