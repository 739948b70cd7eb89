r"""Triton kernels of the fused negative entropy (see :func:`dgblocks.kernels.neg_entropy`).

One program per row of logits $z$ (N, K). The forward streams the row once with an online
maximum $m$ and keeps, relative to it, $s = \sum_k e^{z_k - m}$,
$W = \sum_k w_k e^{z_k - m}$ and $A = \sum_k w_k e^{z_k - m}(z_k - m)$; when the maximum
grows to $m'$ every sum is rescaled by $r = e^{m - m'}$, and $A' = r\,(A + (m - m') W)$.
Then, with $c = \mathrm{softmax}(z)$,

$$ L = \sum_k w_k c_k \log c_k = \frac{A}{s} - \log s \cdot \frac{W}{s}. $$

The backward streams the row once more, with $\mathrm{lse} = m + \log s$ and
$\bar w = W / s$ saved by the forward:

$$ \frac{\partial L}{\partial z_j} = c_j\,\bigl(w_j (\log c_j + 1) - L - \bar w\bigr). $$

Everything is computed in float32 (float16/bfloat16 logits are upcast on load). This module
imports without ``triton`` (the kernels are then plain functions that are never launched).
"""

from __future__ import annotations

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl

    _jit = triton.jit
except ImportError:  # triton is optional: the module still imports (doctests, docs)
    triton = None

    def _jit(fn):  # type: ignore[no-redef]
        return fn

__all__ = ["INTERPRETED", "NegEntropyRows", "neg_entropy_rows", "MAX_BLOCK_K"]

MAX_BLOCK_K = 4096  # columns per step of the row loop (a power of two)


@_jit
def _neg_entropy_fwd(z_ptr, w_ptr, loss_ptr, lse_ptr, wbar_ptr, K, stride_z,
                     HAS_W: tl.constexpr, BLOCK_K: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = z_ptr + row * stride_z
    m = tl.load(base).to(tl.float32)  # any entry of the row is a valid starting maximum
    s = m * 0.0
    ws = m * 0.0
    a = m * 0.0
    for k0 in range(0, K, BLOCK_K):
        offs = k0 + tl.arange(0, BLOCK_K)
        mask = offs < K
        z = tl.load(base + offs, mask=mask, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(z, axis=0))
        r = tl.exp(m - m_new)
        e = tl.exp(z - m_new)  # 0 on masked lanes
        zc = tl.where(mask, z - m_new, 0.0)
        if HAS_W:
            w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            ew = e * w
        else:
            ew = e
        a = r * (a + (m - m_new) * ws) + tl.sum(ew * zc, axis=0)
        ws = r * ws + tl.sum(ew, axis=0)
        s = r * s + tl.sum(e, axis=0)
        m = m_new
    log_s = tl.log(s)
    wbar = ws / s
    tl.store(loss_ptr + row, a / s - log_s * wbar)
    tl.store(lse_ptr + row, m + log_s)
    tl.store(wbar_ptr + row, wbar)


@_jit
def _neg_entropy_bwd(z_ptr, w_ptr, g_ptr, loss_ptr, lse_ptr, wbar_ptr, dz_ptr, K, stride_z,
                     stride_dz, HAS_W: tl.constexpr, BLOCK_K: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = z_ptr + row * stride_z
    g = tl.load(g_ptr + row).to(tl.float32)
    lse = tl.load(lse_ptr + row)
    shift = tl.load(loss_ptr + row) + tl.load(wbar_ptr + row)
    for k0 in range(0, K, BLOCK_K):
        offs = k0 + tl.arange(0, BLOCK_K)
        mask = offs < K
        z = tl.load(base + offs, mask=mask, other=0.0).to(tl.float32)
        logc = z - lse
        c = tl.exp(logc)
        if HAS_W:
            w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        else:
            w = 1.0
        dz = g * c * (w * (logc + 1.0) - shift)
        tl.store(dz_ptr + row * stride_dz + offs, dz, mask=mask)


INTERPRETED = type(_neg_entropy_fwd).__name__ == "InterpretedFunction"


def _block(k: int, block_k: int | None) -> int:
    if block_k is None:
        return min(MAX_BLOCK_K, max(16, triton.next_power_of_2(k)))
    if block_k < 16 or block_k & (block_k - 1):
        raise ValueError(f"block_k: expected a power of two >= 16, got {block_k}")
    return block_k


class NegEntropyRows(torch.autograd.Function):
    """Per-row ``sum_k w_k c_k log c_k`` (float32) with the fused forward and backward."""

    @staticmethod
    def forward(ctx, z: Tensor, w: Tensor | None, block_k: int) -> Tensor:  # type: ignore[override]
        n, k = z.shape
        loss = torch.empty(n, dtype=torch.float32, device=z.device)
        lse, wbar = torch.empty_like(loss), torch.empty_like(loss)
        has_w = w is not None
        w_arg = w if has_w else z  # never read when HAS_W is false
        _neg_entropy_fwd[(n,)](z, w_arg, loss, lse, wbar, k, z.stride(0),
                               HAS_W=has_w, BLOCK_K=block_k)
        ctx.save_for_backward(z, w_arg, loss, lse, wbar)
        ctx.has_w, ctx.block_k = has_w, block_k
        return loss

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # type: ignore[override]
        z, w_arg, loss, lse, wbar = ctx.saved_tensors
        dz = dw = None
        if ctx.needs_input_grad[0]:
            n, k = z.shape
            g = grad.to(torch.float32).contiguous()
            dz = torch.empty_like(z)
            _neg_entropy_bwd[(n,)](z, w_arg, g, loss, lse, wbar, dz, k, z.stride(0), dz.stride(0),
                                   HAS_W=ctx.has_w, BLOCK_K=ctx.block_k)
        if ctx.has_w and ctx.needs_input_grad[1]:
            # Rare (a learnt prior): dL_i/dw_k = c_ik log c_ik, in eager PyTorch.
            logp = (z.float() - lse[:, None])
            dw = (grad.float()[:, None] * logp.exp() * logp).sum(0).to(w_arg.dtype)
        return dz, dw, None


def neg_entropy_rows(z: Tensor, w: Tensor | None = None, *, block_k: int | None = None
                     ) -> Tensor:
    """Launch the fused kernels: per-row negative entropy in float32, differentiable.

    ``z`` is made row-contiguous; ``w`` (K,) is used in its own dtype (float32 on the device of
    ``z`` expected). ``block_k`` (a power of two >= 16) overrides the row step (tests use a
    small one to exercise the online rescaling across steps).
    """
    if triton is None:
        raise ValueError("z: the fused kernel needs the optional dependency triton"
                         " (pip install 'dgblocks[kernels]')")
    z = z if z.stride(-1) == 1 else z.contiguous()
    if w is not None:
        w = w.contiguous()
    return NegEntropyRows.apply(z, w, _block(z.shape[1], block_k))
