r"""Fused negative entropy: Triton kernel where available, :mod:`dgblocks.losses.entropy` otherwise.

The eager function :func:`dgblocks.losses.entropy.neg_entropy` is both the fallback and the
reference the kernel is tested against (Triton interpreter on CPU, see ``tests/kernels``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgblocks._checks import Reduction, check_finite, check_reduction, check_shape
from dgblocks.kernels._dispatch import kernel_module, resolve_fused
from dgblocks.losses import entropy as _eager
from dgblocks.losses._reduction import reduce

__all__ = ["neg_entropy"]

_KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def neg_entropy(logits: Tensor, *, weights: Tensor | None = None, reduction: Reduction = "mean",
                use_fused: bool | None = None) -> Tensor:
    r"""Negative Shannon entropy of ``softmax(logits)``, fused in one pass per row when possible.

    $$ L_i = \sum_k w_k\, c_{ik} \log c_{ik}, \qquad c_i = \mathrm{softmax}(z_i) $$

    Same contract as :func:`dgblocks.losses.entropy.neg_entropy` (argument checks, float32
    computation for half inputs, output dtype). The fused path streams each row once forward
    (online max and sums) and once backward, and never stores the (N, K) softmax; it runs when
    :func:`~dgblocks.kernels.fused_available` is true and the dtype is float16, bfloat16 or
    float32. float64 and every other case take the eager reference.

    Args:
        logits: unnormalised class scores $z$ (K may be large: 18,530 identities).
        weights: per-class weights $w$ (CaNE's prior); ``None`` means 1.
        reduction: ``"mean" | "sum" | "none"`` over the batch.
        use_fused: ``None`` picks automatically, ``True`` demands the kernel (``ValueError``
            when it cannot run), ``False`` forces the eager path.

    Shape:
        logits: (N, K); weights: (K,); output: () or (N,) for "none", dtype of ``logits``.

    Invariants:
        - equals :func:`dgblocks.losses.entropy.neg_entropy` (to float32 round-off) with its
          gradients, on either path
        - in [-log K, 0] when weights is None; unchanged by adding a constant to a row

    Example:
        >>> neg_entropy(torch.zeros(4, 10), use_fused=False)  # eager path, no triton needed
        tensor(-2.3026)
    """
    sizes = check_shape(logits, "N K", name="logits")
    check_reduction(reduction)
    if weights is not None:
        check_shape(weights, "K", name="weights", K=sizes["K"])
    fused = resolve_fused(use_fused, logits, dtype_ok=logits.dtype in _KERNEL_DTYPES)
    if not fused or logits.numel() == 0:
        return _eager.neg_entropy(logits, weights=weights, reduction=reduction)
    check_finite(logits, name="logits")
    if weights is not None and weights.device != logits.device:
        raise ValueError(f"weights: expected device {logits.device} (from logits),"
                         f" got {weights.device}")
    w = None if weights is None else weights.to(torch.float32)
    per_row = kernel_module("_entropy_triton").neg_entropy_rows(logits, w)
    return reduce(per_row, reduction).to(logits.dtype)
