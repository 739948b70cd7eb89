r"""Pairwise distances: the only place that handles fp16/bf16 quirks.

``torch.cdist`` is inaccurate for half precision on CPU (and its gradient at zero distance is
NaN), so every function here computes in float32 (float64 inputs stay float64) through the
expansion $\|x\|^2 + \|y\|^2 - 2 x y^\top$ and clamps tiny negative round-off to zero.
The Euclidean and squared Euclidean distances of fp16/bf16 inputs are *returned* in float32:
they are unbounded (64-D features of scale 40 have squared distances near 2e5, beyond the
float16 maximum 65504), so a half result would be ``inf`` where the float32 one is finite.
Cosine similarities and distances are bounded and keep the input dtype. Gradients flow back
to the inputs in their own dtype either way.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch
from torch import Tensor

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_choice,
    check_features,
    check_nonnegative,
)

__all__ = [
    "Metric",
    "pairwise_distance",
    "euclidean_distance",
    "squared_euclidean_distance",
    "cosine_distance",
    "cosine_similarity_matrix",
]

Metric = Literal["euclidean", "sqeuclidean", "cosine"]
_METRICS = ("euclidean", "sqeuclidean", "cosine")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _eps(eps: float, dtype: torch.dtype) -> float:
    # a finite floor >= 0 that the compute dtype can hold (1e300 cannot become a float32)
    check_nonnegative(eps, name="eps")
    big = torch.finfo(_compute_dtype(dtype)).max
    if eps > big:
        raise ValueRangeError(f"eps: expected a value <= {big:.4g} (the largest"
                              f" {_compute_dtype(dtype)}), got {eps!r}")
    return float(eps)


def grad_safe_eps(eps: float, dtype: torch.dtype) -> float:
    """The floor under a norm that keeps ``x / max(||x||, eps)``'s gradient (about 1 / eps)
    finite in ``dtype``: ``eps`` raised to ``4 / finfo(dtype).max`` (6e-5 for float16)."""
    return max(eps, 4.0 / torch.finfo(dtype).max) if dtype.is_floating_point else eps


def _no_autocast(x: Tensor) -> contextlib.AbstractContextManager:
    # Distances are computed in float32 even inside an autocast region (its bf16/fp16 matmul
    # loses the precision the expansion ||x||^2 + ||y||^2 - 2xy needs).
    if x.device.type == "meta":  # no autocast on meta (the device contract test)
        return contextlib.nullcontext()
    return torch.autocast(device_type=x.device.type, enabled=False)


def _pair(x: Tensor, y: Tensor | None, name_x: str, name_y: str) -> tuple[Tensor, Tensor]:
    sx = check_features(x, "N D", name=name_x)  # integer inputs: a float distance is meant
    if y is None:
        return x, x
    check_features(y, "M D", name=name_y, D=sx["D"])
    if y.device != x.device:
        raise ShapeError(f"{name_y}: expected device {x.device} (from {name_x}), got {y.device}")
    return x, y


def _sq_norms(xc: Tensor) -> Tensor:
    return xc.pow(2).sum(1, keepdim=True)


def _expand(xc: Tensor, yc: Tensor, xx: Tensor, yy: Tensor, *, inplace: bool = False
            ) -> Tensor:
    """``||x||^2 + ||y||^2 - 2 x y^T`` with round-off below 0 clamped, in one fused pass.
    ``inplace`` (no autograd) updates the sum of the norms in place: the same floats, since
    ``addmm`` copies its input to the output and runs the same GEMM with beta = 1."""
    if inplace:
        return (xx + yy.t()).addmm_(xc, yc.t(), alpha=-2.0).clamp_min_(0.0)
    return torch.addmm(xx + yy.t(), xc, yc.t(), alpha=-2.0).clamp_min(0.0)


def squared_euclidean_distance(x: Tensor, y: Tensor | None = None) -> Tensor:
    r"""Pairwise squared Euclidean distance.

    $$ d_{ij} = \|x_i - y_j\|_2^2 = \|x_i\|^2 + \|y_j\|^2 - 2\, x_i^\top y_j $$

    Args:
        x: first set of vectors.
        y: second set; ``None`` means ``x``.

    Shape:
        x: (N, D); y: (M, D); output: (N, M), dtype of ``x`` (float32 for fp16/bf16 ``x``:
        the value overflows float16 at feature scale 40).

    Invariants:
        - non-negative; symmetric when ``y`` is ``None``; zero diagonal for ``y is None``
        - finite for half inputs wherever the float32 distance is finite

    Example:
        >>> squared_euclidean_distance(torch.tensor([[0., 0.], [3., 4.]]))
        tensor([[ 0., 25.],
                [25.,  0.]])
    """
    x, y = _pair(x, y, "x", "y")
    same = y is x
    ct = _compute_dtype(x.dtype)
    with _no_autocast(x):
        xc, yc = x.to(ct), y.to(ct)
        xx = _sq_norms(xc)
        yy = xx if same else _sq_norms(yc)
        d = _expand(xc, yc, xx, yy)
    if same:
        d = d.fill_diagonal_(0.0)  # exact zeros, and no gradient through the diagonal
    return d if x.dtype in (torch.float16, torch.bfloat16) else d.to(x.dtype)


def euclidean_distance(x: Tensor, y: Tensor | None = None, *, eps: float = 1e-12) -> Tensor:
    r"""Pairwise Euclidean distance, with a finite gradient at zero distance.

    $$ d_{ij} = \sqrt{\max(\|x_i - y_j\|_2^2, \epsilon)} $$

    Args:
        x: first set of vectors.
        y: second set; ``None`` means ``x``.
        eps: floor $\epsilon \ge 0$ under the squared distance so that the square root has a
            finite gradient.

    Shape:
        x: (N, D); y: (M, D); output: (N, M), dtype of ``x`` (float32 for fp16/bf16 ``x``).

    Invariants:
        - non-negative and symmetric; satisfies the triangle inequality up to ``sqrt(eps)``

    Example:
        >>> euclidean_distance(torch.tensor([[0., 0.]]), torch.tensor([[3., 4.]]))
        tensor([[5.]])
    """
    x, y = _pair(x, y, "x", "y")
    ct = _compute_dtype(x.dtype)
    eps = _eps(eps, x.dtype)
    d2 = squared_euclidean_distance(x.to(ct), None if y is x else y.to(ct))
    d = d2.clamp_min(eps).sqrt()
    return d if x.dtype in (torch.float16, torch.bfloat16) else d.to(x.dtype)


def cosine_similarity_matrix(x: Tensor, y: Tensor | None = None, *, eps: float = 1e-8) -> Tensor:
    r"""Pairwise cosine similarity.

    $$ s_{ij} = \frac{x_i^\top y_j}{\max(\|x_i\|, \epsilon)\,\max(\|y_j\|, \epsilon)} $$

    Args:
        x: first set of vectors.
        y: second set; ``None`` means ``x``.
        eps: floor $\epsilon \ge 0$ under each norm (raised to ``4 / finfo(dtype).max`` for
            half inputs, so that the gradient stays finite).

    Shape:
        x: (N, D); y: (M, D); output: (N, M), dtype of ``x``.

    Invariants:
        - in [-1, 1]; unchanged by scaling any row by a positive constant

    Example:
        >>> cosine_similarity_matrix(torch.tensor([[1., 0.]]), torch.tensor([[0., 2.], [3., 0.]]))
        tensor([[0., 1.]])
    """
    x, y = _pair(x, y, "x", "y")
    ct = _compute_dtype(x.dtype)
    eps = grad_safe_eps(_eps(eps, x.dtype), x.dtype)  # half inputs: a gradient that fits in half
    with _no_autocast(x):
        xn = _unit(x.to(ct), eps)
        yn = xn if y is x else _unit(y.to(ct), eps)
        sim = (xn @ yn.t()).clamp(-1.0, 1.0)
    return sim.to(x.dtype)


def _unit(xc: Tensor, eps: float) -> Tensor:
    return torch.nn.functional.normalize(xc, dim=1, eps=eps)


def cosine_distance(x: Tensor, y: Tensor | None = None, *, eps: float = 1e-8) -> Tensor:
    r"""Pairwise cosine distance $d_{ij} = 1 - s_{ij}$ (see :func:`cosine_similarity_matrix`).

    Args:
        x: first set of vectors.
        y: second set; ``None`` means ``x``.
        eps: floor $\epsilon \ge 0$ under each norm.

    Shape:
        x: (N, D); y: (M, D); output: (N, M), dtype of ``x``.

    Invariants:
        - in [0, 2]; zero between parallel vectors

    Example:
        >>> cosine_distance(torch.tensor([[1., 0.]]), torch.tensor([[-2., 0.]]))
        tensor([[2.]])
    """
    return 1.0 - cosine_similarity_matrix(x, y, eps=eps)


def pairwise_distance(x: Tensor, y: Tensor | None = None, *,
                      metric: Metric = "euclidean") -> Tensor:
    r"""Pairwise distance by name: ``"euclidean"``, ``"sqeuclidean"`` or ``"cosine"``.

    $$ d_{ij} = \|x_i - y_j\|_2,\quad \|x_i - y_j\|_2^2 \quad\text{or}\quad 1 - \cos(x_i, y_j) $$

    Shape:
        x: (N, D); y: (M, D); output: (N, M), dtype of ``x`` (float32 for fp16/bf16 ``x``
        with the Euclidean metrics).

    Invariants:
        - non-negative; symmetric when ``y`` is ``None``

    Example:
        >>> pairwise_distance(torch.eye(2), metric="sqeuclidean")
        tensor([[0., 2.],
                [2., 0.]])
    """
    check_choice(metric, _METRICS, name="metric")
    if metric == "euclidean":
        return euclidean_distance(x, y)
    if metric == "sqeuclidean":
        return squared_euclidean_distance(x, y)
    return cosine_distance(x, y)


class RowDistances:
    r"""``pairwise_distance(x, y, metric=metric)`` for one block of rows of ``x`` at a time,
    with the terms of ``y`` (squared norms, or unit vectors for cosine) computed once.

    ``RowDistances(y, metric=m)(x)`` equals ``pairwise_distance(x, y, metric=m)`` bit for bit:
    the same operations in the same order, done in place where ``pairwise_distance`` makes a
    new tensor (no autograd: for evaluation). So the rows ``a:b`` of the full matrix come out
    the same from ``x[a:b]`` whenever the BLAS product's rows do not depend on the block (see
    :mod:`dgblocks.eval.streaming`, which uses it). Half inputs are computed in float32, as
    there. Holds ``y`` (and, for cosine, a float32 copy of its unit rows).

    Shape:
        y: (M, D); x: (N, D) with the dtype and device of y; output: (N, M), dtype of y
        (Euclidean metrics of fp16/bf16 inputs: float32, as :func:`pairwise_distance`).

    Example:
        >>> y = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
        >>> RowDistances(y, metric="sqeuclidean")(torch.tensor([[0.0, 0.0]]))
        tensor([[ 1., 25.]])
    """

    def __init__(self, y: Tensor, *, metric: Metric = "euclidean") -> None:
        check_choice(metric, _METRICS, name="metric")
        check_features(y, "M D", name="y")
        self.metric, self.y = metric, y
        ct = _compute_dtype(y.dtype)
        with _no_autocast(y), torch.no_grad():
            yc = y.to(ct)
            if metric == "cosine":
                self.yc = _unit(yc, grad_safe_eps(1e-8, y.dtype))
            else:  # in slices of rows (the same floats): no (M, D) temporary
                self.yc = yc
                self.yy = torch.cat([_sq_norms(yc[i: i + 4096]) for i in range(0, len(yc), 4096)])

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        """Distances ``(N, M)`` of the rows of ``x`` to every row of ``y``."""
        check_features(x, "N D", name="x", D=self.y.shape[1])
        if x.dtype != self.y.dtype or x.device != self.y.device:
            raise ShapeError(f"x: expected {self.y.dtype} on {self.y.device} (from y), got"
                             f" {x.dtype} on {x.device}")
        ct = _compute_dtype(x.dtype)
        with _no_autocast(x):
            xc = x.to(ct)
            if self.metric == "cosine":
                sim = (_unit(xc, grad_safe_eps(1e-8, x.dtype)) @ self.yc.t()).clamp_(-1.0, 1.0)
                return sim.to(x.dtype).neg_().add_(1.0)  # 1 - sim, rounded once
            d = _expand(xc, self.yc, _sq_norms(xc), self.yy, inplace=True)
        out = x.dtype if x.dtype not in (torch.float16, torch.bfloat16) else ct  # half: float32
        if self.metric == "sqeuclidean":
            return d.to(out)
        return d.clamp_min_(1e-12).sqrt_().to(out)  # euclidean_distance's eps
