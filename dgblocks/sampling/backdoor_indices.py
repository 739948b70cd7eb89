r"""Which $K$ domain factors each sample is paired with in the backdoor adjustment (DIR-ReID 3.3).

:func:`backdoor_indices` returns, for every sample $i$ and pair $k$, two factor indices
$(j, j')$ and a mix weight $w$: the pair is $s_i \oplus (w\, v_j + (1 - w)\, v_{j'})$, built by
:func:`dgblocks.sampling.backdoor.backdoor_pairs`. The choice is made under
``torch.no_grad()``; randomness comes only from an optional ``torch.Generator``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_choice,
    check_features,
    check_generator,
    check_int,
    check_probability,
)
from dgblocks.distances import squared_euclidean_distance

__all__ = ["Strategy", "STRATEGIES", "backdoor_indices"]

Strategy = Literal["random", "hardest", "mixup", "mixhard"]
STRATEGIES: tuple[str, ...] = ("random", "hardest", "mixup", "mixhard")


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None,
             device: torch.device) -> Tensor:
    gdev = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gdev).to(device)


def _random_distinct(b: int, k: int, generator: torch.Generator | None,
                     device: torch.device) -> Tensor:
    # K distinct j != i per row: the top-k of uniform scores with the diagonal pushed below 0.
    scores = _uniform((b, b), generator, device)
    scores.fill_diagonal_(-1.0)
    return scores.topk(k, dim=1).indices


def _other(n: int, exclude: list[Tensor], generator: torch.Generator | None,
           device: torch.device) -> Tensor:
    # Uniform integer in [0, n) outside the (pairwise distinct) excluded values, element-wise.
    r = (_uniform(exclude[0].shape, generator, device) * (n - len(exclude))).long()
    r = r.clamp_max(n - len(exclude) - 1)
    for e in torch.stack(exclude).sort(dim=0).values:
        r = r + (r >= e).long()
    return r


def backdoor_indices(v: Tensor, *, k: int, strategy: Strategy = "mixup",
                     alpha: float | None = 0.5,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    r"""Choose the $K$ domain factors paired with each sample (DIR-ReID 3.3, four strategies).

    $$ \tilde v_{ik} = w_{ik}\, v_{j_{ik}} + (1 - w_{ik})\, v_{j'_{ik}} $$

    - ``random``: $K$ distinct $j \ne i$, uniformly; $j' = j$, $w = 1$.
    - ``hardest``: the $K$ factors farthest from $v_i$ (Euclidean); $j' = j$, $w = 1$.
    - ``mixup``: $K$ distinct $j \ne i$ and, for each, a random $j' \notin \{i, j\}$;
      $w = \alpha$ (eq 9).
    - ``mixhard``: $j$ runs over the $K$ hardest factors, $j'$ is another of them drawn at
      random; $w = \alpha$.

    The choice is not differentiable and is made under ``torch.no_grad()``.

    Args:
        v: domain factors of the batch.
        k: number of factors $K$ per sample.
        strategy: ``"random" | "hardest" | "mixup" | "mixhard"``.
        alpha: mix weight for ``mixup``/``mixhard``; ``None`` draws $w \sim U(0, 1)$ per mix.
        generator: source of randomness (``None``: the global torch RNG).

    Shape:
        v: (B, dv); output: index (B, K, 2) long, weight (B, K) in the dtype of ``v``.

    Invariants:
        - ``random``: index[i, :, 0] holds K distinct values, none equal to i
        - ``hardest``: index[i, :, 0] is the set of the K largest distances ||v_i - v_j||
        - mixes: weights in [0, 1]; j != j' and neither equals i (mixup)

    Example:
        >>> v = torch.tensor([[0.0], [1.0], [5.0]])
        >>> index, weight = backdoor_indices(v, k=1, strategy="hardest")
        >>> index[:, 0, 0].tolist(), weight[:, 0].tolist()
        ([2, 2, 0], [1.0, 1.0, 1.0])
    """
    b = check_features(v, "B D", name="v")["B"]
    check_choice(strategy, STRATEGIES, name="strategy")
    check_int(k, name="k", minimum=1)
    if alpha is not None:
        check_probability(alpha, name="alpha")
    check_generator(generator)
    if b == 0:
        raise ShapeError("v: expected at least one sample, got B=0")
    if k > b - 1:
        raise ValueRangeError(f"k: expected an int <= {b - 1} (the candidates j != i in a batch"
                              f" of B={b}), got {k}")
    mixes = strategy in ("mixup", "mixhard")
    if strategy == "mixup" and b < 3:
        raise ShapeError(f"v: mixup needs B >= 3 (a pair j != j' besides i), got B={b}")
    if strategy == "mixhard" and k < 2:
        raise ValueRangeError(f"k: mixhard mixes pairs of the K hardest, expected k >= 2, got {k}")
    device = v.device
    with torch.no_grad():
        rows = torch.arange(b, device=device).unsqueeze(1).expand(b, k)
        if strategy in ("hardest", "mixhard"):
            d = squared_euclidean_distance(v.detach())
            d.fill_diagonal_(-1.0)  # distances are >= 0: i is never among the hardest
            first = d.topk(k, dim=1).indices
        else:
            first = _random_distinct(b, k, generator, device)
        if strategy == "mixup":
            second = _other(b, [rows, first], generator, device)
        elif strategy == "mixhard":
            pos = torch.arange(k, device=device).expand(b, k)
            second = first.gather(1, _other(k, [pos], generator, device))
        else:
            second = first
        if not mixes:
            weight = torch.ones(b, k, dtype=v.dtype, device=device)
        elif alpha is None:
            weight = _uniform((b, k), generator, device).to(v.dtype)
        else:
            weight = torch.full((b, k), float(alpha), dtype=v.dtype, device=device)
    return torch.stack([first, second], dim=-1), weight
