r"""The central domain (DDAN eq 3): the source domain that minimises the total distributional
shift needed to align every other domain to it,

$$ c^* = \arg\min_{c} \sum_{i \ne c} d_{WS}(X_c, X_i), $$

from features (:func:`central_domain`, distances by
:func:`dgblocks.domains.wasserstein.wasserstein_matrix`) or from any distance matrix, e.g. DDAN
Table 2 (:func:`central_from_distances`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from dgblocks._checks import ShapeError, ValueRangeError, check_nonnegative_values, check_shape
from dgblocks.domains.wasserstein import Method, _as_matrix, wasserstein_matrix

__all__ = ["CentralDomain", "central_from_distances", "central_domain"]


class CentralDomain(NamedTuple):
    """The result of :func:`central_domain`: the chosen index and the full distance matrix."""

    index: int
    distances: Tensor


def central_from_distances(distances: Tensor | Sequence[Sequence[float]] | np.ndarray) -> int:
    r"""The central domain of a distance matrix (DDAN eq 3): the argmin of the row sums.

    $$ c^* = \arg\min_c \sum_{i \ne c} D_{ci} $$

    The diagonal is ignored (it is zero for a distance). Ties go to the lowest index. The
    matrix must be symmetric (to ``1e-6`` relative), non-negative and finite: an asymmetric
    one has no single row sum per domain.

    Shape:
        distances: (G, G); output: a Python int in [0, G).

    Invariants:
        - equals argmin of the row sums of D with its diagonal zeroed
        - permuting domains (rows and columns together) permutes the answer

    Example:
        >>> central_from_distances([[0.0, 1.0, 4.0], [1.0, 0.0, 2.0], [4.0, 2.0, 0.0]])
        1
    """
    d = _as_matrix(distances, "distances")
    g = check_shape(d, "G G", name="distances")["G"]
    if g == 0:
        raise ShapeError("distances: expected at least one domain, got shape (0, 0)")
    if d.is_complex() or d.dtype == torch.bool:
        raise ShapeError(f"distances: expected real distances, got {d.dtype}")
    if d.device.type == "meta":
        raise ShapeError("distances: expected values (a CPU or CUDA tensor), got a meta tensor")
    d = d.to(torch.float64).clone()
    d.fill_diagonal_(0.0)
    check_nonnegative_values(d, name="distances", always=True)  # NaN or < 0: not a distance
    if not torch.allclose(d, d.t(), rtol=1e-6, atol=1e-12):
        i, j = divmod(int((d - d.t()).abs().argmax()), g)
        raise ValueRangeError(f"distances: expected a symmetric matrix, got D[{i}, {j}]="
                              f"{d[i, j].item():.6g} != D[{j}, {i}]={d[j, i].item():.6g}")
    return int(d.sum(dim=1).argmin())


def central_domain(features_by_domain: Sequence[Tensor], *, method: Method = "sliced",
                   max_samples: int | None = -1, seed: int = 0, reg: float = 0.05,
                   n_projections: int = 200) -> CentralDomain:
    r"""Choose the central domain from features (DDAN eq 3); see :func:`wasserstein_matrix`.

    $$ c^* = \arg\min_{c} \sum_{i \ne c} d_{WS}(X_c, X_i) $$

    Shape:
        features_by_domain: G tensors (n_g, D); output: index (int), distances (G, G).

    Invariants:
        - index == central_from_distances(distances)

    Example:
        >>> near = [torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]),
        ...         torch.tensor([[0.0, 1.0]])]
        >>> central_domain(near, method="emd").index
        1
    """
    d = wasserstein_matrix(features_by_domain, method=method, max_samples=max_samples, seed=seed,
                           reg=reg, n_projections=n_projections)
    return CentralDomain(central_from_distances(d), d)
