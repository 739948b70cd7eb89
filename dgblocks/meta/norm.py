r"""Batch norm with a closed-form double backward, for second-order meta steps.

A second-order meta step (:func:`dgblocks.meta.meta_objective`) differentiates through the
backward pass, so every training-mode batch norm is differentiated twice. PyTorch's generic
double backward of batch norm builds about 25 full-size temporaries per layer; in CDVM's meta
step on a ResNet it took a fifth of the step (``benchmarks/results/dg_overhead.json``). Here
the first backward is PyTorch's own kernel, and its backward (the double backward) is written
out per channel: with $\hat x = (x - \mu) s$, $s = (\sigma^2 + \epsilon)^{-1/2}$, the first
backward $g_x = \gamma s\,(g - \bar g - \hat x\, \overline{g \hat x})$, and incoming
gradients $u$ (of $g_x$), $a$ (of $g_\gamma$), $b$ (of $g_\beta$):

$$ \frac{\partial}{\partial g} = \gamma s\,(u - \bar u - \hat x\, \overline{u \hat x})
       + a \hat x + b, \qquad
   \frac{\partial}{\partial \gamma} = s \textstyle\sum (u g) - M s (\bar u \bar g
       + \overline{u \hat x}\; \overline{g \hat x}), $$

$$ \frac{\partial}{\partial x} = c_u u + c_g g + c_x \hat x + c_0, \quad
   c_u = -\gamma s^2 \overline{g \hat x}, \;
   c_g = s (a - \gamma s\, \overline{u \hat x}), \;
   c_x = s\,\overline{g \hat x}\,(2 \gamma s\, \overline{u \hat x} - a)
       - \gamma s\, \tfrac{\partial}{\partial \gamma} / M, $$

$c_0 = -c_u \bar u - c_g \bar g$ (bars: per-channel means over the $M$ = batch x space
positions). Every sum is a fused PyTorch batch-norm-backward reduction, every map one
``addcmul``: about 6 passes over the feature map instead of 25. A third derivative (the
backward run with ``create_graph=True``) takes a plain differentiable composite instead, with
the batch statistics as functions of $x$ (exact: PyTorch's own double backward holds them
constant, and its third derivative fails ``gradgradcheck``).

:class:`FusedNormDoubleBackward` is a ``TorchFunctionMode`` that routes the training-mode
``F.batch_norm`` / ``F.instance_norm`` calls of any model through :func:`batch_norm_train`;
:func:`dgblocks.meta.meta_objective` turns it on for its two forward passes (``fused_norm``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd import Function
from torch.overrides import TorchFunctionMode

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_async,
    check_device,
    check_finite,
    check_float,
    check_nonnegative,
    check_probability,
    nan_checked,
    values_on_host,
)

__all__ = ["batch_norm_train", "FusedNormDoubleBackward"]

_native_backward = torch.ops.aten.native_batch_norm_backward


def _c(t: Tensor, like: Tensor) -> Tensor:
    """A per-channel vector (C,) shaped (1, C, 1, ...) to broadcast against ``like``."""
    return t.to(like.dtype).view(1, -1, *([1] * (like.dim() - 2)))


def _composite(x: Tensor, g: Tensor, w: Tensor, u: Tensor | None, a: Tensor | None,
               b: Tensor | None, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """The same derivatives as differentiable torch ops of ``x`` (third order and beyond)."""
    dims = [0, *range(2, x.dim())]
    var, mean = torch.var_mean(x, dim=dims, correction=0)
    s = (var + eps).rsqrt()
    xhat = (x - _c(mean, x)) * _c(s, x)
    xhat_g = (g * xhat).mean(dims)
    g_bar = g.mean(dims)
    m = x.numel() // x.shape[1]
    zero = torch.zeros_like(s)
    u_bar, xhat_u, sum_ug = ((u.mean(dims), (u * xhat).mean(dims), (u * g).sum(dims))
                             if u is not None else (zero, zero, zero))
    a = zero if a is None else a
    b = zero if b is None else b
    ws = w * s
    d_g = _c(ws, x) * ((u if u is not None else 0) - _c(u_bar, x) - xhat * _c(xhat_u, x))
    d_g = d_g + xhat * _c(a, x) + _c(b, x)
    d_w = s * (sum_ug - m * (u_bar * g_bar + xhat_u * xhat_g))
    c_u, c_g = -ws * s * xhat_g, s * (a - ws * xhat_u)
    c_x = s * xhat_g * (2 * ws * xhat_u - a) - ws * d_w / m
    d_x = _c(c_x, x) * xhat + _c(-c_u * u_bar - c_g * g_bar, x) + _c(c_g, x) * g
    if u is not None:
        d_x = d_x + _c(c_u, x) * u
    return d_g, d_x, d_w


class _BatchNormBackward(Function):
    """PyTorch's batch-norm backward kernel, with the double backward of the module docstring."""

    @staticmethod
    def forward(ctx: Any, g: Tensor, x: Tensor, w: Tensor, mean: Tensor, invstd: Tensor,
                eps: float) -> tuple[Tensor, Tensor, Tensor]:
        gx, gw, gb = _native_backward(g, x, w, None, None, mean, invstd, True, eps,
                                      [True, True, True])
        ctx.save_for_backward(g, x, w, mean, invstd, gw, gb)
        ctx.eps = eps
        return gx, gw, gb

    @staticmethod
    def backward(ctx: Any, u: Tensor | None, a: Tensor | None,
                 b: Tensor | None) -> tuple[Tensor | None, ...]:
        g, x, w, mean, s, sum_gxhat, sum_g = ctx.saved_tensors
        need_g, need_x, need_w = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph: stay differentiable (statistics from x)
            d_g, d_x, d_w = _composite(x, g, w, u, a, b, ctx.eps)
            return (d_g if need_g else None, d_x if need_x else None, d_w if need_w else None,
                    None, None, None)
        m = x.numel() // x.shape[1]
        zero = torch.zeros_like(s)
        a = zero if a is None else a
        b = zero if b is None else b
        g_bar, xhat_g = sum_g / m, sum_gxhat / m
        gi_u = None
        if u is not None:  # one fused pass: gamma s (u - mean u - xhat mean(u xhat)), sums
            gi_u, sum_uxhat, sum_u = _native_backward(u, x, w, None, None, mean, s, True,
                                                      ctx.eps, [need_g, True, True])
            # sum(u g) in one pass: the grad_weight of a batch norm of g with mean 0, invstd 1.
            # The weight must be a defined tensor (ones): CUDA's kernel allocates grad_weight
            # from weight.options(), and None fails there ("tensor does not have a device").
            ones = torch.ones_like(s)
            sum_ug = _native_backward(u, g, ones, None, None, zero, ones, True, 0.0,
                                      [False, True, False])[1]
            u_bar, xhat_u = sum_u / m, sum_uxhat / m
        else:
            u_bar = xhat_u = sum_ug = zero
        ws = w * s
        d_w = s * (sum_ug - m * (u_bar * g_bar + xhat_u * xhat_g))
        d_g = d_x = None
        if need_g:  # gi_u + a xhat + b = gi_u + (a s) x + (b - a s mean)
            shift, scale = _c(b - a * s * mean, x), _c(a * s, x)
            d_g = (torch.addcmul(shift, x, scale) if gi_u is None
                   else gi_u.addcmul_(x, scale).add_(shift))
        if need_x:  # c_u u + c_g g + c_x xhat + c_0, xhat folded into x
            c_u, c_g = -ws * s * xhat_g, s * (a - ws * xhat_u)
            c_x = (s * xhat_g * (2 * ws * xhat_u - a) - ws * d_w / m) * s
            c_0 = -c_u * u_bar - c_g * g_bar - c_x * mean
            d_x = torch.addcmul(_c(c_0, x), x, _c(c_x, x)).addcmul_(g, _c(c_g, x))
            if u is not None:
                d_x.addcmul_(u, _c(c_u, x))
        return d_g, d_x, d_w if need_w else None, None, None, None


class _BatchNormTrain(Function):
    """Training-mode batch norm: PyTorch's forward kernel (running statistics updated as
    ``F.batch_norm`` does), backward through :class:`_BatchNormBackward`."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, b: Tensor, running_mean: Tensor | None,
                running_var: Tensor | None, momentum: float, eps: float) -> Tensor:
        out, mean, invstd = torch.native_batch_norm(x, w, b, running_mean, running_var, True,
                                                    momentum, eps)
        ctx.save_for_backward(x, w, mean, invstd)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        x, w, mean, invstd = ctx.saved_tensors
        gx, gw, gb = _BatchNormBackward.apply(g, x, w, mean, invstd, ctx.eps)
        return gx, gw, gb, None, None, None, None


def batch_norm_train(x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor | None = None,
                     running_var: Tensor | None = None, *, momentum: float = 0.1,
                     eps: float = 1e-5) -> Tensor:
    r"""Training-mode batch norm whose second derivative is fused (see the module docstring).

    $$ y = \gamma\, \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta $$

    with $\mu, \sigma^2$ the per-channel batch statistics; the running statistics, when given,
    are updated in place exactly as ``F.batch_norm(..., training=True)`` updates them.

    Args:
        x: input, channels on axis 1.
        weight: $\gamma$.
        bias: $\beta$.
        running_mean: running mean to update, or None.
        running_var: running (unbiased) variance to update, or None; under
            ``dgblocks.checks(nan=True)`` both must be finite and the variance >= 0 (an update
            would keep a NaN or negative value forever).
        momentum: running-statistics momentum.
        eps: added to the variance.

    Shape:
        x: (N, C, *); weight, bias, running_mean, running_var: (C,); output: (N, C, *).

    Invariants:
        - equals F.batch_norm(training=True) in value, gradient and second derivative
        - running statistics updated as by F.batch_norm

    Example:
        >>> x = torch.randn(8, 3, 4, 4, requires_grad=True)
        >>> w, b = torch.ones(3, requires_grad=True), torch.zeros(3, requires_grad=True)
        >>> y = batch_norm_train(x, w, b)
        >>> torch.allclose(y, F.batch_norm(x, None, None, w, b, training=True), atol=1e-6)
        True
        >>> (gx,) = torch.autograd.grad(y.tanh().sum(), x, create_graph=True)
        >>> gx.pow(2).sum().backward()  # a second derivative, through the fused formula
        >>> w.grad.shape
        torch.Size([3])
    """
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ShapeError(f"x: expected a tensor of shape (N, C, *), got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    c = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None and (not isinstance(t, Tensor) or t.shape != (c,)):
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ShapeError(f"{name}: expected shape ({c},) from x, got {got}")
    if weight is None or bias is None:
        raise ShapeError("weight: expected affine parameters (weight and bias), got None")
    if x.numel() // max(c, 1) <= 1:  # as F.batch_norm: one value per channel has no variance
        raise ShapeError(f"x: expected more than 1 value per channel in training mode, got"
                         f" shape {tuple(x.shape)}")
    check_float(x, name="x")
    wide = {x.dtype, torch.float32} if x.dtype in (torch.float16, torch.bfloat16) else {x.dtype}
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None and t.dtype not in wide:
            raise ValueRangeError(f"{name}: expected dtype {x.dtype} (from x), got {t.dtype}")
        if t is not None:
            check_device(t, x.device, name=name, origin="x")
    for name, t in (("x", x), ("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None:
            check_finite(t, name=name)
    if running_var is not None and nan_checked():  # a negative variance, kept by updates
        if not values_on_host(running_var):  # CUDA: a device assertion, no host sync
            check_async(running_var >= 0, "running_var: expected values >= 0 (a variance)")
        elif not bool((running_var >= 0).all()):
            raise ValueRangeError(f"running_var: expected values >= 0 (a variance), got"
                                  f" {running_var.min().item()}")
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
        raise ValueRangeError(f"momentum: expected a float in [0, 1], got {momentum!r}")
    check_probability(momentum, name="momentum")
    check_nonnegative(eps, name="eps")
    return _BatchNormTrain.apply(x, weight, bias, running_mean, running_var, float(momentum),
                                 float(eps))


_BN_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum",
            "eps")
_IN_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "use_input_stats",
            "momentum", "eps")


class FusedNormDoubleBackward(TorchFunctionMode):
    """Inside ``with FusedNormDoubleBackward():``, training-mode ``F.batch_norm`` (every
    ``nn.BatchNorm*d``) and ``F.instance_norm`` without running statistics (``nn.InstanceNorm*d``,
    IBN) use :func:`batch_norm_train`: same values, cheaper second derivatives. Anything else
    (eval mode, no affine parameters, instance norm tracking running statistics) is left as is.

    Only the forward pass needs the mode: the graph it records keeps the fused backward.

    Example:
        >>> bn = torch.nn.BatchNorm2d(3)
        >>> with FusedNormDoubleBackward():
        ...     y = bn(torch.randn(4, 3, 2, 2))
        >>> type(y.grad_fn).__name__
        '_BatchNormTrainBackward'
    """

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.batch_norm or func is F.instance_norm:
            a = {**dict(zip(_BN_ARGS if func is F.batch_norm else _IN_ARGS, args)), **kwargs}
            x, w, b = a.get("input"), a.get("weight"), a.get("bias")
            if func is F.batch_norm:
                fused = a.get("training", False) and w is not None and b is not None
                if fused:
                    return batch_norm_train(x, w, b, a.get("running_mean"), a.get("running_var"),
                                            momentum=a.get("momentum", 0.1), eps=a.get("eps", 1e-5))
            elif (a.get("use_input_stats", True) and a.get("running_mean") is None
                  and w is not None and b is not None and x.dim() >= 3):
                n, c = x.shape[:2]  # instance norm = batch norm of (1, N*C, *)
                y = batch_norm_train(x.reshape(1, n * c, *x.shape[2:]), w.repeat(n), b.repeat(n),
                                     eps=a.get("eps", 1e-5))
                return y.view_as(x)
        return func(*args, **kwargs)
