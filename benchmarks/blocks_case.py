"""What one microbenchmark case is, and how it is run and checked (see benchmarks/blocks.py).

A :class:`Case` holds two zero-argument callables, ours and an optional reference, that compute
the same thing on the same tensors. :func:`step` runs one forward pass and, where the case has
inputs or parameters requiring grad (``leaves``), one backward pass of a fixed random
projection of every differentiable output, then clears the leaves' gradients, so that repeated
calls do the same work. :func:`agreement` runs both once and returns the largest
scale-relative difference between their outputs and their gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["Case", "Spec", "flatten", "step", "agreement", "gen"]


@dataclass
class Case:
    """One block at one size: ours, the reference (or ``None``), and the leaves to clear.

    Attributes:
        ours: runs our block's forward pass, returns its output(s).
        reference: runs the reference forward pass on the same tensors, returns the output(s)
            in the order :func:`flatten` gives ours; ``None`` where no reference exists.
        leaves: tensors whose ``.grad`` the backward pass fills (inputs and parameters).
        check: overrides :func:`agreement` (stateful blocks): returns the relative difference.
        exact: outputs to compare for equality only (e.g. chosen indices), by position.
    """

    ours: Callable[[], Any]
    reference: Callable[[], Any] | None = None
    leaves: Sequence[Tensor] = ()
    check: Callable[[], float] | None = None
    exact: Sequence[int] = ()


@dataclass
class Spec:
    """A block, the builder of its cases, and its sizes.

    Attributes:
        block: the public name (``dgblocks.losses.TripletLoss``).
        build: ``build(**size) -> Case``.
        sizes: the ReID sizes of the full run; ``--quick`` runs only the first.
        tiny: a size for the unit test (``tests/test_benchmarks_blocks.py``).
        reference: what the reference is, in words (``None``: no reference).
        tol: the largest relative difference the unit test accepts.
    """

    block: str
    build: Callable[..., Case]
    sizes: Sequence[dict[str, int]]
    tiny: dict[str, int]
    reference: str | None
    tol: float = 1e-5


def gen(seed: int = 0) -> torch.Generator:
    """A seeded CPU generator: every benchmark input is reproducible."""
    return torch.Generator().manual_seed(seed)


def flatten(out: Any) -> list[Tensor]:
    """The tensors of an output: a tensor, a (named) tuple, a list or a dict of them."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in flatten(item)]
    return []


_PROBES: dict[tuple[tuple[int, ...], torch.dtype], Tensor] = {}


def _probe(t: Tensor) -> Tensor:
    # A fixed random upstream gradient per shape: a plain sum would cancel (e.g. through a
    # normalisation) and leave nothing to compare.
    key = (tuple(t.shape), t.dtype)
    if key not in _PROBES:
        _PROBES[key] = torch.randn(t.shape, generator=gen(1)).to(t.dtype)
    return _PROBES[key]


def _loss(outs: list[Tensor]) -> Tensor | None:
    total = None
    for t in outs:
        if t.requires_grad:
            term = t if t.dim() == 0 else (t * _probe(t)).sum()
            total = term if total is None else total + term
    return total


def step(fn: Callable[[], Any], leaves: Sequence[Tensor]) -> list[Tensor]:
    """Forward ``fn``, backward through its differentiable outputs, clear the leaves' grads."""
    outs = flatten(fn())
    loss = _loss(outs)
    if loss is not None:
        loss.backward()
    for leaf in leaves:
        leaf.grad = None
    return outs


def _run(fn: Callable[[], Any], leaves: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    outs = flatten(fn())
    loss = _loss(outs)
    grads = []
    if loss is not None:
        loss.backward()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in leaves]
    for leaf in leaves:
        leaf.grad = None
    return [o.detach() for o in outs], grads


def _rel(a: Tensor, b: Tensor) -> float:
    if a.shape != b.shape:
        raise ValueError(f"reference: expected an output of shape {tuple(a.shape)}, got"
                         f" {tuple(b.shape)}")
    a, b = a.double(), b.double()
    scale = b.abs().max().clamp_min(1e-12) if b.numel() else torch.tensor(1.0)
    return float((a - b).abs().max() / scale) if b.numel() else 0.0


def agreement(case: Case) -> float | None:
    """Largest relative difference ``max|ours - ref| / max|ref|`` over outputs and gradients.

    ``None`` without a reference. Outputs listed in ``case.exact`` count 0 when equal, inf
    otherwise.
    """
    if case.check is not None:
        return case.check()
    if case.reference is None:
        return None
    ours, g_ours = _run(case.ours, case.leaves)
    ref, g_ref = _run(case.reference, case.leaves)
    if len(ours) != len(ref) or len(g_ours) != len(g_ref):
        raise ValueError(f"reference: expected {len(ours)} outputs and {len(g_ours)} gradients,"
                         f" got {len(ref)} and {len(g_ref)}")
    worst = 0.0
    for i, (a, b) in enumerate(zip(ours, ref)):
        if i in case.exact:
            worst = max(worst, 0.0 if torch.equal(a, b) else float("inf"))
        else:
            worst = max(worst, _rel(a, b))
    for a, b in zip(g_ours, g_ref):
        worst = max(worst, _rel(a, b))
    return worst
