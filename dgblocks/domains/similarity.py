r"""Cosine similarity between domains, and a markdown table of any domain x domain matrix.

DDAN (Chen et al. 2021, Table 4) shows that identity-wise similarity enhancement ($L_{SE}$)
makes features of similar people from different domains closer than features of different
people from the same domain. :func:`domain_cosine_similarity` is the domain-level summary of
that effect: the cosine similarity between the mean (L2-normalised) features of every pair of
domains, computed after training with and without $L_{SE}$. :func:`domain_table` prints it,
or the Wasserstein matrix of DDAN Table 2, as a markdown table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_device,
    check_features,
    check_int,
    check_shape,
)
from dgblocks.data.base import ReIDDataset
from dgblocks.domains.wasserstein import _as_matrix, _domains
from dgblocks.eval import encode_dataset

__all__ = ["domain_cosine_similarity", "domain_table", "encode_domains"]


def domain_cosine_similarity(features_by_domain: Sequence[Tensor]) -> Tensor:
    r"""Cosine similarity between the mean directions of the domains' features.

    $$ \mu_g = \frac{1}{n_g} \sum_{i=1}^{n_g} \frac{x^g_i}{\|x^g_i\|}, \qquad
       S_{ab} = \frac{\mu_a^\top \mu_b}{\|\mu_a\|\, \|\mu_b\|} $$

    Features are L2-normalised before averaging (cosine retrieval compares directions), so no
    single large-norm image dominates a domain's mean. A domain whose mean is the zero vector
    has similarity 0 with every domain, itself included.

    Args:
        features_by_domain: one feature matrix per domain (as
            :func:`~dgblocks.domains.wasserstein_matrix`), each with at least one row.

    Shape:
        features_by_domain: G tensors (n_g, D); output: (G, G) in their dtype and device.

    Invariants:
        - symmetric, values in [-1, 1], diagonal 1 (domains with a non-zero mean)
        - unchanged by scaling any feature vector by a positive factor
        - unchanged by permuting the rows of any domain

    Example:
        >>> a, b = torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.tensor([[0.0, 3.0]])
        >>> domain_cosine_similarity([a, b, torch.tensor([[1.0, 1.0]])])
        tensor([[1.0000, 0.0000, 0.7071],
                [0.0000, 1.0000, 0.7071],
                [0.7071, 0.7071, 1.0000]])
    """
    features_by_domain = _domains(features_by_domain, "features_by_domain", 1)
    dim = check_shape(features_by_domain[0], "N D", name="features_by_domain[0]")["D"]
    means = []
    for g, x in enumerate(features_by_domain):
        if check_features(x, "N D", name=f"features_by_domain[{g}]", D=dim)["N"] == 0:
            raise ShapeError(f"features_by_domain[{g}]: expected at least one row, got 0")
        check_device(x, features_by_domain[0].device, name=f"features_by_domain[{g}]",
                     origin="features_by_domain[0]")
        means.append(torch.nn.functional.normalize(x, dim=1).mean(0))
    m = torch.nn.functional.normalize(torch.stack(means), dim=1)
    return (m @ m.t()).clamp(-1.0, 1.0)


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
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise ValueRangeError(f"names: expected a sequence of domain names, got {names!r:.60}")
    check_int(digits, name="digits", minimum=0)
    m = _as_matrix(matrix, "matrix").to(torch.float64)
    check_shape(m, "G G", name="matrix", G=len(names))
    cols = [*names, "sum"] if sums else list(names)
    rows = [f"| {n} | " + " | ".join(f"{v:.{digits}f}" for v in (
        [*m[i].tolist(), float(m[i].sum())] if sums else m[i].tolist())) + " |"
        for i, n in enumerate(names)]
    return "\n".join([title, f"| {corner} | " + " | ".join(cols) + " |",
                      "|" + " --- |" * (len(cols) + 1), *rows])


def encode_domains(encode: Callable[[Tensor], Tensor], ds: ReIDDataset, num_domains: int, *,
                   max_per_domain: int | None = None, seed: int = 0, device: Any = "cpu",
                   batch_size: int = 128) -> list[Tensor]:
    """Features of at most ``max_per_domain`` random images of each domain of ``ds``.

    ``None`` encodes every image. The inputs of :func:`domain_cosine_similarity` and
    :func:`~dgblocks.domains.wasserstein_matrix`; runs under ``torch.no_grad()``.

    Shape:
        ds.domains: (N,) in ``[0, num_domains)``; output: ``num_domains`` tensors (n_g, D),
        n_g <= max_per_domain, float32 on the CPU (as :func:`dgblocks.eval.encode_dataset`).

    Invariants:
        - entry g holds features of images of domain g only, each image at most once

    Example:
        >>> from dgblocks.data.base import ReIDDataset
        >>> ds = ReIDDataset(torch.zeros(4, 3, 2, 2, dtype=torch.uint8), pids=[0, 1, 2, 3],
        ...                  camids=[0, 0, 0, 0], domains=[0, 1, 0, 1])
        >>> [f.shape for f in encode_domains(lambda x: x.flatten(1), ds, 2, max_per_domain=1)]
        [torch.Size([1, 12]), torch.Size([1, 12])]
    """
    if not callable(encode):
        raise ValueRangeError(f"encode: expected a callable images -> features, got"
                              f" {type(encode).__name__}")
    if not isinstance(ds, ReIDDataset):
        raise ShapeError(f"ds: expected a ReIDDataset, got {type(ds).__name__}")
    check_int(num_domains, name="num_domains", minimum=1)
    if max_per_domain is not None:
        check_int(max_per_domain, name="max_per_domain", minimum=1)
    gen, out = torch.Generator().manual_seed(check_int(seed, name="seed")), []
    with torch.no_grad():
        for d in range(num_domains):
            idx = (ds.domains == d).nonzero().flatten()
            if max_per_domain is not None and len(idx) > max_per_domain:
                idx = idx[torch.randperm(len(idx), generator=gen)[:max_per_domain]]
            out.append(encode_dataset(encode, ds, index=idx, device=device,
                                      batch_size=batch_size))
    return out
