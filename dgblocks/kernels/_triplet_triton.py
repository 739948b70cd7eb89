r"""Triton kernel of batch-hard mining fused with the Euclidean distance matrix.

One program per block of ``BLOCK_M`` anchors. It walks the batch in blocks of ``BLOCK_N``
candidates; for each tile it accumulates $x_a^\top x_j$ over the feature axis (``tl.dot``,
IEEE float32: no TF32), forms the same expression as :mod:`dgblocks.distances`,

$$ d_{aj} = \sqrt{\max\bigl(\max(\|x_a\|^2 + \|x_j\|^2 - 2\,x_a^\top x_j,\ 0),\ \epsilon\bigr)},
   \qquad d_{aa} = \sqrt{\epsilon}, $$

and folds the tile into a running hardest positive (largest $d$ with the same label, $j \ne a$)
and hardest negative (smallest $d$ with a different label). Ties go to the smallest index,
within a tile (``tie_break_left``) and across tiles (a later tile must be strictly better),
as ``torch.argmax``/``argmin`` do in :func:`dgblocks.losses.triplet.batch_hard_mining`. An
anchor without a positive (or negative) keeps index 0 and is marked invalid, as there. The
(B, B) matrix only ever exists tile by tile, in registers.

This module imports without ``triton`` (the kernel is then a plain function never launched).
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

__all__ = ["INTERPRETED", "batch_hard_indices"]

EPS = 1e-12  # the floor of dgblocks.distances.euclidean_distance


@_jit
def _batch_hard_fwd(x_ptr, sq_ptr, lab_ptr, pos_ptr, neg_ptr, valid_ptr, B, D, stride_x, eps,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid = tl.program_id(0)
    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = rows < B
    sq_r = tl.load(sq_ptr + rows, mask=rmask, other=0.0)
    lab_r = tl.load(lab_ptr + rows, mask=rmask, other=0)
    best_p = tl.full([BLOCK_M], float("-inf"), tl.float32)
    best_n = tl.full([BLOCK_M], float("inf"), tl.float32)
    idx_p = tl.zeros([BLOCK_M], tl.int32)
    idx_n = tl.zeros([BLOCK_M], tl.int32)
    for n0 in range(0, B, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        cmask = cols < B
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
        for d0 in range(0, D, BLOCK_D):
            dd = d0 + tl.arange(0, BLOCK_D)
            dmask = dd < D
            xa = tl.load(x_ptr + rows[:, None].to(tl.int64) * stride_x + dd[None, :],
                         mask=rmask[:, None] & dmask[None, :], other=0.0)
            xb = tl.load(x_ptr + cols[:, None].to(tl.int64) * stride_x + dd[None, :],
                         mask=cmask[:, None] & dmask[None, :], other=0.0)
            acc = tl.dot(xa, tl.trans(xb), acc, input_precision="ieee")
        sq_c = tl.load(sq_ptr + cols, mask=cmask, other=0.0)
        lab_c = tl.load(lab_ptr + cols, mask=cmask, other=0)
        d2 = tl.maximum((sq_r[:, None] + sq_c[None, :]) - 2.0 * acc, 0.0)
        self_pair = rows[:, None] == cols[None, :]
        d2 = tl.where(self_pair, 0.0, d2)
        d = tl.sqrt_rn(tl.maximum(d2, eps))
        same = lab_r[:, None] == lab_c[None, :]
        pos = same & (~self_pair) & cmask[None, :]
        neg = (~same) & cmask[None, :]
        tile_p, arg_p = tl.max(tl.where(pos, d, float("-inf")), axis=1, return_indices=True,
                               return_indices_tie_break_left=True)
        tile_n, arg_n = tl.min(tl.where(neg, d, float("inf")), axis=1, return_indices=True,
                               return_indices_tie_break_left=True)
        take_p = tile_p > best_p
        take_n = tile_n < best_n
        idx_p = tl.where(take_p, arg_p + n0, idx_p)
        idx_n = tl.where(take_n, arg_n + n0, idx_n)
        best_p = tl.where(take_p, tile_p, best_p)
        best_n = tl.where(take_n, tile_n, best_n)
    valid = (best_p > float("-inf")) & (best_n < float("inf"))
    tl.store(pos_ptr + rows, idx_p, mask=rmask)
    tl.store(neg_ptr + rows, idx_n, mask=rmask)
    tl.store(valid_ptr + rows, valid.to(tl.int8), mask=rmask)


INTERPRETED = type(_batch_hard_fwd).__name__ == "InterpretedFunction"


def _pow2(value: int, name: str) -> int:
    if value < 16 or value & (value - 1):
        raise ValueError(f"{name}: expected a power of two >= 16, got {value}")
    return value


def batch_hard_indices(x: Tensor, labels: Tensor, *, block_m: int = 32, block_n: int = 32,
                       block_d: int = 32) -> tuple[Tensor, Tensor, Tensor]:
    """Launch the mining kernel on float32 features ``x`` (B, D) and integer ``labels`` (B,).

    Returns ``(pos_idx, neg_idx, valid)`` as int64, int64 and bool tensors of shape (B,), the
    contract of :func:`dgblocks.losses.triplet.batch_hard_mining`. No gradient (indices).
    Block sizes are powers of two >= 16 (``tl.dot``'s minimum); tests use 16 to cross tiles.
    """
    if triton is None:
        raise ValueError("x: the fused kernel needs the optional dependency triton"
                         " (pip install 'dgblocks[kernels]')")
    if x.dtype != torch.float32:
        raise ValueError(f"x: expected float32 (upcast by the caller), got {x.dtype}")
    b, d = x.shape
    with torch.no_grad():
        x = x.detach().contiguous()
        sq = x.pow(2).sum(1)  # the same row norms as dgblocks.distances
        lab = labels.contiguous()
        pos = torch.empty(b, dtype=torch.int64, device=x.device)
        neg = torch.empty_like(pos)
        valid = torch.empty(b, dtype=torch.int8, device=x.device)
        bm, bn, bd = _pow2(block_m, "block_m"), _pow2(block_n, "block_n"), _pow2(block_d, "block_d")
        _batch_hard_fwd[(triton.cdiv(b, bm),)](x, sq, lab, pos, neg, valid, b, d, x.stride(0), EPS,
                                               BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd)
    return pos, neg, valid.bool()
