r"""Backdoor adjustment over disentangled factors (DIR-ReID eq 8-11).

DIR-ReID approximates $P(Y \mid do(S = s_i)) = \frac{1}{|V|}\sum_{v} P(Y \mid s_i \oplus v)$
(eq 8) by pairing each identity factor $s_i$ with $K$ domain factors chosen from the batch
(eq 10), and trains $C_{SC}$ on every pair $s_i \oplus v_k$ with the label $y_i$ (eq 11).

The choice of the $K$ factors is split from the pairing: :func:`backdoor_indices` (in
:mod:`dgblocks.sampling.backdoor_indices`) chooses (under ``torch.no_grad()``, randomness from
an optional ``torch.Generator``),
:func:`backdoor_pairs` is the pure, differentiable core that builds
$s_i \oplus (w\, v_j + (1 - w)\, v_{j'})$ from given indices and weights, and
:func:`backdoor_adjustment` composes the two. :func:`backdoor_linear` applies a linear head
to the pairs without building them (the head is linear in $s_i \oplus \tilde v$, so
$K$ pairs per sample cost two small matrix products). Every strategy is expressed in that one
form: for ``random`` and ``hardest`` the two indices are equal and the weight is 1.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    ValueRangeError,
    check_choice,
    check_device,
    check_features,
    check_index,
    check_int,
    check_probability,
    check_same_length,
    check_shape,
)
from dgblocks._module_checks import check_dtype
from dgblocks.sampling.backdoor_indices import STRATEGIES, Strategy, backdoor_indices

__all__ = [
    "Strategy",
    "STRATEGIES",
    "BackdoorResult",
    "backdoor_indices",
    "backdoor_pairs",
    "backdoor_linear",
    "backdoor_adjustment",
    "BackdoorAdjustment",
]


def _check_index(index: Tensor, s: Tensor, b: int) -> None:
    # an index of -1 would silently pair with the last factor, B would index out of bounds
    if index.dtype != torch.long:
        raise ValueRangeError(f"index: expected dtype torch.int64, got {index.dtype}")
    check_device(index, s.device, name="index", origin="s")
    check_index(index, b, name="index", origin="v")


class BackdoorResult(NamedTuple):
    """What :func:`backdoor_adjustment` returns, so that a recipe can log the choice.

    Attributes:
        pairs: the concatenations $s_i \\oplus \\tilde v_{ik}$, shape (B, K, ds+dv).
        index: the chosen factor indices $(j, j')$, shape (B, K, 2), long.
        weight: the mix weight $w$ of ``index[..., 0]``, shape (B, K); 1 for random/hardest.
    """

    pairs: Tensor
    index: Tensor
    weight: Tensor


def backdoor_pairs(s: Tensor, v: Tensor, index: Tensor, weight: Tensor) -> Tensor:
    r"""Pure core: concatenate each $s_i$ with its $K$ (mixed) domain factors (eq 9-10).

    $$ p_{ik} = s_i \oplus \big(w_{ik}\, v_{j_{ik}} + (1 - w_{ik})\, v_{j'_{ik}}\big) $$

    Differentiable in ``s`` and ``v``; ``index`` and ``weight`` are given (see
    :func:`backdoor_indices`).

    Args:
        s: identity factors.
        v: domain factors.
        index: factor indices $(j, j')$ in ``[0, B)``, int64 (a value check: -1 is refused,
            not wrapped to the last row).
        weight: mix weight $w$ of ``index[..., 0]``.

    Shape:
        s: (B, ds); v: (B, dv); index: (B, K, 2); weight: (B, K); output: (B, K, ds+dv).

    Invariants:
        - output[i, k, :ds] == s[i]
        - output[i, k, ds:] is a convex combination of v[j] and v[j'] for weights in [0, 1]

    Example:
        >>> s, v = torch.zeros(2, 1), torch.tensor([[2.0], [4.0]])
        >>> index = torch.tensor([[[1, 0]], [[0, 1]]])
        >>> backdoor_pairs(s, v, index, torch.full((2, 1), 0.5))
        tensor([[[0., 3.]],
        <BLANKLINE>
                [[0., 3.]]])
    """
    b = check_features(s, "B S", name="s")["B"]
    check_features(v, "B V", name="v", B=b)
    k = check_shape(index, "B K 2", name="index", B=b)["K"]
    check_features(weight, "B K", name="weight", B=b, K=k)
    for name, t in (("v", v), ("weight", weight)):
        check_device(t, s.device, name=name, origin="s")
    _check_index(index, s, b)
    w = weight.to(v.dtype).unsqueeze(-1)
    v_mix = w * v[index[..., 0]] + (1 - w) * v[index[..., 1]]  # (B, K, dv)
    s_rep = s.unsqueeze(1).expand(b, k, s.shape[1])
    return torch.cat([s_rep, v_mix.to(s.dtype)], dim=-1)


def backdoor_linear(s: Tensor, v: Tensor, index: Tensor, weight: Tensor, head_weight: Tensor,
                    head_bias: Tensor | None = None) -> Tensor:
    r"""A linear head on the backdoor pairs, without building the pairs (DIR-ReID eq 11).

    With $W = [W_s \; W_v]$ split at $d_s$:

    $$ W p_{ik} + b = W_s s_i + w_{ik}\, W_v v_{j_{ik}} + (1 - w_{ik})\, W_v v_{j'_{ik}} + b $$

    so $s W_s^\top$ and $v W_v^\top$ are computed once per sample and gathered per pair:
    $2 B (d_s + d_v) C$ multiply-adds instead of $B K (d_s + d_v) C$ (K = 10: a fifth), and no
    (B, K, ds+dv) tensor. Equal to ``F.linear(backdoor_pairs(s, v, index, weight), W, b)`` up
    to floating-point rounding, in value and gradient.

    Args:
        s: identity factors.
        v: domain factors.
        index: factor indices $(j, j')$ in ``[0, B)`` (:func:`backdoor_indices`), int64.
        weight: mix weight $w$ of ``index[..., 0]``.
        head_weight: the head's weight $W$ (an ``nn.Linear(ds + dv, C).weight``); ``s`` and
            ``v`` must have its dtype (or run under ``torch.autocast``).
        head_bias: its bias $b$, or None.

    Shape:
        s: (B, ds); v: (B, dv); index: (B, K, 2); weight: (B, K); head_weight: (C, ds+dv);
        head_bias: (C,); output: (B, K, C).

    Invariants:
        - equals the head applied to :func:`backdoor_pairs`

    Example:
        >>> s, v = torch.randn(4, 3), torch.randn(4, 2)
        >>> index, weight = torch.tensor([[[1, 2]], [[0, 3]], [[3, 1]], [[2, 0]]]), torch.rand(4, 1)
        >>> head = nn.Linear(5, 6)
        >>> out = backdoor_linear(s, v, index, weight, head.weight, head.bias)
        >>> out.shape
        torch.Size([4, 1, 6])
        >>> torch.allclose(out, head(backdoor_pairs(s, v, index, weight)), atol=1e-6)
        True
    """
    shape = check_features(s, "B S", name="s")
    b, ds = shape["B"], shape["S"]
    dv = check_features(v, "B V", name="v", B=b)["V"]
    k = check_shape(index, "B K 2", name="index", B=b)["K"]
    check_features(weight, "B K", name="weight", B=b, K=k)
    c = check_features(head_weight, "C D", name="head_weight", D=ds + dv)["C"]
    if head_bias is not None:
        check_features(head_bias, "C", name="head_bias", C=c)
    for name, t in (("v", v), ("weight", weight), ("head_weight", head_weight),
                    ("head_bias", head_bias)):
        if t is not None:
            check_device(t, s.device, name=name, origin="s")
    for name, t in (("s", s), ("v", v), ("head_bias", head_bias)):
        if t is not None:
            check_dtype(t, head_weight.dtype, name=name, origin="the dtype of head_weight")
    _check_index(index, s, b)
    z_s = nn.functional.linear(s, head_weight[:, :ds], head_bias)     # (B, C)
    z_v = nn.functional.linear(v, head_weight[:, ds:])                # (B, C)
    w = weight.to(z_v.dtype).unsqueeze(-1)
    return z_s.unsqueeze(1) + w * z_v[index[..., 0]] + (1 - w) * z_v[index[..., 1]]


def backdoor_adjustment(s: Tensor, v: Tensor, *, k: int, strategy: Strategy = "mixup",
                        alpha: float | None = 0.5,
                        generator: torch.Generator | None = None) -> BackdoorResult:
    r"""Backdoor adjustment pairs (DIR-ReID eq 8-11): choose, then concatenate.

    $$ P(Y \mid do(S = s_i)) \approx \frac{1}{K} \sum_{k=1}^K P(Y \mid s_i \oplus \tilde v_{ik}) $$

    See :func:`backdoor_indices` for the strategies and :func:`backdoor_pairs` for the core.

    Args:
        s: identity factors $s$.
        v: domain factors $v$ of the same samples.
        k: number of factors per sample (must not exceed B - 1).
        strategy: ``"random" | "hardest" | "mixup" | "mixhard"``.
        alpha: mix weight ($0.5$ in the paper); ``None`` draws it uniformly per mix.
        generator: source of randomness.

    Shape:
        s: (B, ds); v: (B, dv); output: pairs (B, K, ds+dv), index (B, K, 2), weight (B, K).

    Invariants:
        - pairs[i, k, :ds] == s[i] for every k
        - no pair uses the sample's own domain factor v_i

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> out = backdoor_adjustment(torch.randn(8, 4), torch.randn(8, 3), k=2, generator=g)
        >>> out.pairs.shape, out.index.shape, out.weight.shape
        (torch.Size([8, 2, 7]), torch.Size([8, 2, 2]), torch.Size([8, 2]))
    """
    check_features(s, "B S", name="s")
    check_features(v, "B V", name="v")
    check_same_length(("s", s), ("v", v))
    check_device(v, s.device, name="v", origin="s")
    index, weight = backdoor_indices(v, k=k, strategy=strategy, alpha=alpha, generator=generator)
    return BackdoorResult(backdoor_pairs(s, v, index, weight), index, weight)


class BackdoorAdjustment(nn.Module):
    """Backdoor adjustment (DIR-ReID eq 8-11); see :func:`dgblocks.functional.backdoor_adjustment`.

    Args:
        k: number of domain factors paired with each sample (10 for ReID in DIR-ReID).
        strategy: ``"random" | "hardest" | "mixup" | "mixhard"``.
        alpha: mix weight for the mixing strategies; ``None`` draws it uniformly per mix.

    Shape:
        s: (B, ds); v: (B, dv); output: :class:`BackdoorResult` with pairs (B, K, ds+dv).

    Example:
        >>> ba = BackdoorAdjustment(k=3, strategy="random")
        >>> g = torch.Generator().manual_seed(1)
        >>> out = ba(torch.randn(6, 4), torch.randn(6, 2), generator=g)
        >>> out.pairs.shape
        torch.Size([6, 3, 6])
    """

    functional_name: ClassVar[str | None] = "backdoor_adjustment"

    def __init__(self, *, k: int, strategy: Strategy = "mixup", alpha: float | None = 0.5) -> None:
        super().__init__()
        self.k = check_int(k, name="k", minimum=1)
        self.strategy = check_choice(strategy, STRATEGIES, name="strategy")
        if strategy == "mixhard" and k < 2:
            raise ValueRangeError(f"k: mixhard mixes pairs of the K hardest, expected k >= 2,"
                                  f" got {k}")
        self.alpha = None if alpha is None else check_probability(alpha, name="alpha")

    def indices(self, v: Tensor, *,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Only the choice, ``(index, weight)`` (:func:`backdoor_indices`): for
        :func:`backdoor_linear`, which needs no pairs. Same draws as :meth:`forward`."""
        return backdoor_indices(v, k=self.k, strategy=self.strategy, alpha=self.alpha,
                                generator=generator)

    def forward(self, s: Tensor, v: Tensor, *,
                generator: torch.Generator | None = None) -> BackdoorResult:
        """Choose K domain factors per sample and build the pairs
        (:func:`backdoor_adjustment`).

        Args:
            s: identity factors, (B, ds).
            v: domain factors of the same samples, (B, dv); B - 1 >= k.
            generator: source of randomness of the choice (None: the global RNG).

        Returns:
            :class:`BackdoorResult` ``(pairs, index, weight)``: pairs (B, K, ds+dv)
            (differentiable in ``s`` and ``v``), index (B, K, 2) int64, weight (B, K); the
            same in training and eval mode.
        """
        return backdoor_adjustment(s, v, k=self.k, strategy=self.strategy, alpha=self.alpha,
                                   generator=generator)

    def extra_repr(self) -> str:
        return f"k={self.k}, strategy={self.strategy!r}, alpha={self.alpha}"
