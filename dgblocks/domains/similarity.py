r"""Cosine similarity between domains, and a markdown table of any domain x domain matrix.

DDAN (Chen et al. 2021, Table 4) shows that identity-wise similarity enhancement ($L_{SE}$)
makes features of similar people from different domains closer than features of different
people from the same domain. :func:`domain_cosine_similarity` is the domain-level summary of
that effect: the cosine similarity between the mean (L2-normalised) features of every pair of
domains, computed after training with and without $L_{SE}$. :func:`domain_table` prints it,
or the Wasserstein matrix of DDAN Table 2, as a markdown table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dgblocks._checks import ShapeError, ValueRangeError, check_int, check_labels, check_shape

__all__ = ["domain_cosine_similarity", "domain_table"]


def domain_cosine_similarity(features: Tensor, domains: Tensor, *,
                             num_domains: int | None = None) -> Tensor:
    r"""Cosine similarity between the mean directions of the domains' features.

    $$ \mu_g = \frac{1}{n_g} \sum_{i:\, d_i = g} \frac{x_i}{\|x_i\|}, \qquad
       S_{ab} = \frac{\mu_a^\top \mu_b}{\|\mu_a\|\, \|\mu_b\|} $$

    Features are L2-normalised before averaging (cosine retrieval compares directions), so no
    single large-norm image dominates a domain's mean. A domain whose mean is the zero vector
    has similarity 0 with every domain, itself included.

    Args:
        features: one feature vector per image.
        domains: domain index per image, in ``[0, G)``.
        num_domains: G; ``None`` means ``domains.max() + 1``. Every domain needs an image.

    Shape:
        features: (N, D); domains: (N,); output: (G, G) in the features' dtype and device.

    Invariants:
        - symmetric, values in [-1, 1], diagonal 1 (domains with a non-zero mean)
        - unchanged by scaling any feature vector by a positive factor
        - unchanged by permuting the images (with their domain labels)

    Example:
        >>> f = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
        >>> domain_cosine_similarity(f, torch.tensor([0, 0, 1, 2]))
        tensor([[1.0000, 0.0000, 0.7071],
                [0.0000, 1.0000, 0.7071],
                [0.7071, 0.7071, 1.0000]])
    """
    n = check_shape(features, "N D", name="features")["N"]
    if n == 0:
        raise ShapeError("features: expected at least one image, got N=0")
    check_labels(domains, None, name="domains", n=n, length_from="features")
    g = (max(int(domains.max()) + 1, 1) if num_domains is None else
         check_int(num_domains, name="num_domains", minimum=1))
    check_labels(domains, g, name="domains", n=n, length_from="features")
    counts = torch.bincount(domains.long(), minlength=g)
    if bool((counts == 0).any()):
        empty = (counts == 0).nonzero().flatten().tolist()
        raise ValueRangeError(f"domains: expected at least one image per domain in [0, {g}), "
                              f"got none for {empty}")
    unit = torch.nn.functional.normalize(features, dim=1)
    means = torch.zeros(g, features.shape[1], dtype=unit.dtype, device=unit.device)
    means.index_add_(0, domains.long().to(unit.device), unit)
    means = torch.nn.functional.normalize(means / counts.to(means).unsqueeze(1), dim=1)
    return (means @ means.t()).clamp(-1.0, 1.0)


def domain_table(names: Sequence[str], matrix: Tensor | Sequence[Sequence[float]], *,
                 title: str, corner: str = "domain", sums: bool = False,
                 digits: int = 3) -> str:
    """A (G, G) matrix between named domains as a markdown table (DDAN Tables 2 and 4).

    Args:
        names: the G domain names (rows and columns, in order).
        matrix: the values, e.g. :func:`domain_cosine_similarity` or
            :func:`~dgblocks.domains.wasserstein_matrix`.
        title: a line printed above the table.
        corner: the header of the name column.
        sums: add a column with each row's sum (eq 3's cost of each central domain).
        digits: decimals per value.

    Shape:
        matrix: (G, G) with G = len(names); output: a string of G + 3 lines.

    Example:
        >>> print(domain_table(["a", "b"], [[0.0, 1.5], [1.5, 0.0]], title="W1", sums=True))
        W1
        | domain | a | b | sum |
        | --- | --- | --- | --- |
        | a | 0.000 | 1.500 | 1.500 |
        | b | 1.500 | 0.000 | 1.500 |
    """
    m = torch.as_tensor(matrix, dtype=torch.float64)
    check_shape(m, "G G", name="matrix", G=len(names))
    cols = [*names, "sum"] if sums else list(names)
    rows = [f"| {n} | " + " | ".join(f"{v:.{digits}f}" for v in (
        [*m[i].tolist(), float(m[i].sum())] if sums else m[i].tolist())) + " |"
        for i, n in enumerate(names)]
    return "\n".join([title, f"| {corner} | " + " | ".join(cols) + " |",
                      "|" + " --- |" * (len(cols) + 1), *rows])
