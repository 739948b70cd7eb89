r"""Cosine similarity between the parameters of paired modules (CDVM eq 2, $\mathcal{L}_{ws}$).

CDVM keeps a global encoder and K domain-local encoders of the same structure apart by
minimising the cosine similarity of their flattened parameters, averaged over the K local
branches and the S stages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    ShapeError,
    check_device,
    check_finite,
    check_nonnegative,
    check_reduction,
)
from dgblocks.distances import grad_safe_eps
from dgblocks.losses._reduction import reduce

__all__ = ["parameter_cosine", "ParameterCosine"]

ParamSet = nn.Module | Tensor | Iterable[Tensor]


def _as_items(x: object, name: str) -> list[object]:
    # One module (other than a ModuleList) or one tensor is one item; otherwise a sequence.
    if isinstance(x, Tensor) or (isinstance(x, nn.Module) and not isinstance(x, nn.ModuleList)):
        return [x]
    if not isinstance(x, Iterable):
        raise ShapeError(f"{name}: expected a module, a tensor or a sequence of them,"
                         f" got {type(x).__name__}")
    items = list(x)
    if not items:
        raise ShapeError(f"{name}: expected at least one module, got an empty sequence")
    return items


def _params(item: object, name: str) -> list[Tensor]:
    if isinstance(item, nn.Module):
        params = list(item.parameters())
    elif isinstance(item, Tensor):
        params = [item]
    elif isinstance(item, Iterable):
        params = list(item)
    else:
        raise ShapeError(f"{name}: expected a module or tensors, got {type(item).__name__}")
    if not params:
        raise ShapeError(f"{name}: expected at least one parameter, got none")
    for p in params:
        if not isinstance(p, Tensor) or not p.is_floating_point():
            raise ShapeError(f"{name}: expected floating tensors, got {type(p).__name__}"
                             f" {getattr(p, 'dtype', '')}".rstrip())
        check_device(p, params[0].device, name=name, origin=f"the first tensor of {name}")
    return params


def _shapes(params: Sequence[Tensor]) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in params]


def _flatten(params: list[Tensor], cache: dict[tuple[int, ...], tuple[Tensor, Tensor]]
             ) -> tuple[Tensor, Tensor]:
    # One flat vector and its squared norm per distinct parameter set: a set broadcast over
    # K pairs (CDVM's global branch) is concatenated once, and a pair costs one dot product
    # instead of three reductions per parameter tensor (~45 small ops per ResNet block).
    key = tuple(id(p) for p in params)
    if key not in cache:
        ct = torch.float64 if params[0].dtype == torch.float64 else torch.float32
        flat = torch.cat([p.reshape(-1).to(ct) for p in params])
        cache[key] = flat, torch.dot(flat, flat)
    return cache[key]


def _cosine(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor], eps: float) -> Tensor:
    (va, na), (vb, nb) = a, b
    if va.dtype != vb.dtype:  # float64 on one side only: compare in float64
        va, na, vb, nb = (t.double() for t in (va, na, vb, nb))
    # clamp before sqrt: a finite gradient even for all-zero parameters
    norm = na.clamp_min(eps * eps).sqrt() * nb.clamp_min(eps * eps).sqrt()
    return (torch.dot(va, vb) / norm).clamp(-1.0, 1.0)


def parameter_cosine(params_a: ParamSet | Sequence[ParamSet],
                     params_b: ParamSet | Sequence[ParamSet], *,
                     reduction: Reduction = "mean", eps: float = 1e-8) -> Tensor:
    r"""Mean cosine similarity between the flattened parameters of paired modules.

    $$ L_{ws} = \frac{1}{P} \sum_{p=1}^{P} \cos(\theta^a_p, \theta^b_p), \qquad
       \cos(u, v) = \frac{u^\top v}{\max(\|u\|, \epsilon)\,\max(\|v\|, \epsilon)} $$

    where $\theta_p$ concatenates all parameters of the $p$-th module. For CDVM eq 2 pair the
    global branch of every stage with each of its K local branches (``P = K S``); a side of
    length 1 is broadcast against the other, so ``parameter_cosine([g], locals)`` averages
    $\cos(\theta_g, \theta_{l_k})$ over k.

    Args:
        params_a: a module, a tensor, or a sequence of modules / tensors / lists of tensors
            (a lone ``nn.Module`` other than ``nn.ModuleList`` counts as one item). A flat
            sequence of tensors (``m.parameters()``) pairs tensor by tensor; pass the module,
            or ``[list(m.parameters())]``, to compare all its parameters as one vector.
        params_b: the same for the second side; item ``p`` must hold parameters of the same
            shapes, in the same order, as item ``p`` of ``params_a``.
        reduction: ``"mean" | "sum" | "none"`` over the pairs.
        eps: floor under each norm.

    Shape:
        every pair: parameters of identical shapes; output: () or (P,) for "none", float32
        (float64 when the parameters are float64).

    Invariants:
        - in [-1, 1]
        - 1 for identical (non-zero) modules
        - unchanged by scaling all parameters of either module by a positive constant

    Example:
        >>> a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
        >>> with torch.no_grad():
        ...     _ = b.weight.copy_(-a.weight), b.bias.copy_(-a.bias)
        >>> parameter_cosine([a, a], [a, b], reduction="none").detach().round(decimals=4)
        tensor([ 1., -1.])
    """
    check_reduction(reduction)
    check_nonnegative(eps, name="eps")
    items_a, items_b = _as_items(params_a, "params_a"), _as_items(params_b, "params_b")
    if len(items_a) != len(items_b) and 1 not in (len(items_a), len(items_b)):
        raise ShapeError(f"params_b: expected {len(items_a)} items (from params_a) or 1,"
                         f" got {len(items_b)}")
    pa = [_params(x, f"params_a[{i}]") for i, x in enumerate(items_a)]
    pb = [_params(x, f"params_b[{i}]") for i, x in enumerate(items_b)]
    count = max(len(pa), len(pb))
    pa, pb = pa * (count if len(pa) == 1 else 1), pb * (count if len(pb) == 1 else 1)
    cosines, cache = [], {}
    for i, (a, b) in enumerate(zip(pa, pb)):
        if _shapes(a) != _shapes(b):
            ia, ib = (0 if len(items_a) == 1 else i), (0 if len(items_b) == 1 else i)
            raise ShapeError(f"params_b[{ib}]: expected parameter shapes {_shapes(a)} (from"
                             f" params_a[{ia}]), got {_shapes(b)}")
        ib = 0 if len(items_b) == 1 else i
        check_device(b[0], pa[0][0].device, name=f"params_b[{ib}]", origin="params_a")
        fa, fb = _flatten(a, cache), _flatten(b, cache)
        check_finite(fa[0], name=f"params_a[{0 if len(items_a) == 1 else i}]")
        check_finite(fb[0], name=f"params_b[{ib}]")
        # the floor under the norms keeps the gradient finite in the parameters' own dtype
        narrow = min((a[0].dtype, b[0].dtype), key=lambda t: torch.finfo(t).max)
        cosines.append(_cosine(fa, fb, grad_safe_eps(eps, narrow)))
    return reduce(torch.stack(cosines), reduction)


class ParameterCosine(nn.Module):
    """Parameter cosine similarity ($L_{ws}$); see :func:`dgblocks.functional.parameter_cosine`.

    ``forward(modules_a, modules_b)`` pairs two sequences item by item (a side of length 1 is
    broadcast); ``forward(pairs)`` takes a sequence of ``(module_a, module_b)`` pairs.

    Args:
        reduction: ``"mean" | "sum" | "none"`` over the pairs.

    Shape:
        every pair: parameters of identical shapes; output: () or (P,).

    Example:
        >>> g, l1, l2 = (torch.nn.Linear(4, 4) for _ in range(3))
        >>> loss = ParameterCosine()
        >>> bool(loss([(g, l1), (g, l2)]) == loss([g], [l1, l2]))
        True
        >>> round(loss([(g, g)]).item(), 4)
        1.0
    """

    functional_name: ClassVar[str | None] = "parameter_cosine"

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, modules_a: ParamSet | Sequence[ParamSet],
                modules_b: ParamSet | Sequence[ParamSet] | None = None) -> Tensor:
        """Mean cosine between paired parameter sets (:func:`parameter_cosine`); errors
        name the sides ``params_a`` / ``params_b`` as the function does.

        Args:
            modules_a: modules (or tensors) paired item by item with ``modules_b``; or, when
                ``modules_b`` is None, a sequence of ``(module_a, module_b)`` pairs.
            modules_b: the other side; a side of length 1 is broadcast.

        Returns:
            () or (P,) for ``reduction="none"``, float32 (float64 for float64 parameters).
        """
        if modules_b is None:
            pairs = _as_items(modules_a, "modules_a")
            for i, pair in enumerate(pairs):
                if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                    raise ShapeError(f"modules_a[{i}]: expected a (module_a, module_b) pair when"
                                     f" modules_b is None, got {type(pair).__name__}")
            modules_a, modules_b = [p[0] for p in pairs], [p[1] for p in pairs]
        return parameter_cosine(modules_a, modules_b, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
