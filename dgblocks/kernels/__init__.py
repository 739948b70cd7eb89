"""Fused Triton kernels for two hot spots, with the eager PyTorch path as fallback and reference.

- :func:`neg_entropy`: negative entropy of a softmax over many classes (K up to 18,530), forward
  and backward each one streaming pass per row, the (N, K) softmax never stored;
- :func:`batch_hard` / :func:`triplet_loss`: batch-hard mining fused with the Euclidean
  distance matrix, which only ever exists tile by tile.

Each public function checks its arguments like its eager twin in :mod:`dgblocks.losses`, then
runs the Triton kernel when :func:`fused_available` says so (a CUDA tensor and ``triton``
installed, or Triton's CPU interpreter forced with ``TRITON_INTERPRET=1`` for tests) and the
eager function otherwise. ``triton`` is optional (``pip install 'dgblocks[kernels]'``): without
it everything here still imports and falls back.

Verified: forward values and gradients against the eager functions under Triton's CPU
interpreter (``tests/kernels``). Not measured: speed. No GPU was available when these kernels
were written, so no speed-up is claimed (see ``benchmarks/kernels.py``).

>>> from dgblocks import kernels
>>> kernels.neg_entropy(torch.zeros(2, 4), use_fused=False)
tensor(-1.3863)
"""

from dgblocks.kernels._dispatch import fused_available, interpreter_active, triton_available
from dgblocks.kernels.entropy import neg_entropy
from dgblocks.kernels.triplet import BatchHard, batch_hard, triplet_loss

__all__ = [
    "fused_available",
    "interpreter_active",
    "triton_available",
    "neg_entropy",
    "batch_hard",
    "BatchHard",
    "triplet_loss",
]
