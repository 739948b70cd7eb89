r"""Global-local block (CDVM eq 1): one shared branch and one branch per source domain.

$$ F_{inv} = f_g(F), \qquad F_{spe} = f_l^{k}(F) \quad (k = \text{domain of the sample}) $$

The block wraps any factory of backbone blocks: it builds the global branch and the
``num_domains`` local branches with the same structure and different (independent) random
initialisations, routes each sample through the global branch and the local branch of its
domain, and at inference (no domain labels) uses the mean of the local branches
(docs/decisions.md, "GlobalLocalBlock").
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_device,
    check_finite,
    check_int,
    check_labels,
    values_on_host,
)
from dgblocks._module_checks import check_module_input

__all__ = ["GlobalLocalBlock", "GlobalLocalOutput"]


class GlobalLocalOutput(NamedTuple):
    """The two outputs of :class:`GlobalLocalBlock`: ``inv`` (global) and ``spe`` (local)."""

    inv: Tensor
    spe: Tensor


class GlobalLocalBlock(nn.Module):
    """A global branch plus one local branch per domain, routed by domain label (CDVM eq 1).

    A batch grouped by domain (as the domain samplers draw it) is cut into slices; any other
    order is gathered per domain and scattered back (same values, two more copies of ``x``).
    Local branches of domains absent from the batch are attached to the graph with a zero, so
    DDP sees every parameter used. :meth:`branch_pairs` yields ``(global, local_k)`` for the
    parameter-cosine loss $L_{ws}$ (CDVM eq 2).

    Without ``domains`` (an unseen domain: inference, or CDVM's meta-test) the local output is
    the mean of the local branches, all of them or those listed in ``branches`` (the meta-test
    domain's own branch left out, so that it imitates a domain no branch has seen). A caller
    that knows the batch is grouped by domain in domain order passes ``counts`` (samples per
    domain) and the routing reads nothing from the device (no host sync on CUDA).

    Args:
        make_block: a callable returning a fresh ``nn.Module``; called ``num_domains + 1`` times.
        num_domains: number of source domains $K$.

    Shape:
        x: (B, *); domains: (B,) or None; output: :class:`GlobalLocalOutput` with inv and spe
        of the block's output shape.

    Example:
        >>> block = GlobalLocalBlock(make_block=lambda: nn.Linear(4, 3), num_domains=2)
        >>> out = block(torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1]))
        >>> out.inv.shape, out.spe.shape
        (torch.Size([5, 3]), torch.Size([5, 3]))
    """

    functional_name: ClassVar[str | None] = None

    def __init__(self, *, make_block: Callable[[], nn.Module], num_domains: int) -> None:
        super().__init__()
        if not callable(make_block):
            raise ValueRangeError(f"make_block: expected a callable returning an nn.Module,"
                                  f" got {type(make_block).__name__}")
        self.num_domains = check_int(num_domains, name="num_domains", minimum=1)
        blocks = [make_block() for _ in range(num_domains + 1)]
        for b in blocks:
            if not isinstance(b, nn.Module):
                raise ValueRangeError(f"make_block: expected it to return an nn.Module,"
                                      f" got {type(b).__name__}")
        if len({id(b) for b in blocks}) != len(blocks):
            raise ValueRangeError("make_block: expected a fresh module on every call,"
                                  " got the same instance twice")
        self.global_branch = blocks[0]
        self.local_branches = nn.ModuleList(blocks[1:])

    def forward(self, x: Tensor, domains: Tensor | None = None, *,
                branches: Sequence[int] | None = None,
                counts: Sequence[int] | None = None) -> GlobalLocalOutput:
        """Route ``x`` through the global branch and the local branch of each sample's domain.

        Args:
            x: the branches' input, (B, *), on the block's device and, if floating, in its
                dtype (or under ``torch.autocast``); checked for NaN/Inf under
                ``dgblocks.checks(nan=True)``.
            domains: domain of each sample in ``[0, num_domains)``, (B,); None for an unseen
                domain (inference, meta-test).
            branches: without ``domains``, the local branches to average (default: all).
            counts: with ``domains`` grouped in domain order, the samples per domain: routing
                without reading ``domains`` (no host sync).

        Returns:
            :class:`GlobalLocalOutput` ``(inv, spe)``: the global branch's output and the
            routed local outputs (in the input's order), or with ``domains=None`` the mean of
            the chosen local branches. The same in training and eval mode, except that in
            training (with grad enabled) the branches of absent domains are attached to the
            graph by a zero.
        """
        if not isinstance(x, Tensor) or x.dim() < 1:
            raise ShapeError(f"x: expected a tensor of shape (B, *), got {type(x).__name__}")
        check_finite(x, name="x")
        check_module_input(x, self, name="x")  # a floating x in the branches' dtype
        inv = self.global_branch(x)
        if domains is None:  # an unseen domain: the mean of the local branches
            ks = range(self.num_domains) if branches is None else list(branches)
            if not ks or any(not isinstance(k, int) or not 0 <= k < self.num_domains for k in ks):
                raise ValueRangeError(f"branches: expected a non-empty list of ints in [0, "
                                      f"{self.num_domains}), got {branches!r}")
            spe = torch.stack([self.local_branches[k](x) for k in ks]).mean(0)
            return GlobalLocalOutput(inv, spe)
        if branches is not None:
            raise ValueRangeError("branches: only used without domains (the unseen-domain "
                                  "path), got both")
        check_labels(domains, self.num_domains, name="domains", n=x.shape[0], length_from="x")
        if domains.device.type != "cpu":  # CPU domains index any x; others must match it
            check_device(domains, x.device, name="domains", origin="x")
        k_all = self.num_domains
        if counts is not None:  # the caller knows the grouping: no host sync
            counts, grouped = self._grouped_counts(counts, domains), True
        else:
            is_grouped = (domains[1:] >= domains[:-1]).all().reshape(1).long()
            found = (domains[:, None] == torch.arange(k_all, device=domains.device)).sum(0)
            stats = torch.cat([found, is_grouped]).tolist()  # routing: one host sync
            counts, grouped = stats[:k_all], bool(stats[k_all])
        unused = [k for k in range(k_all) if counts[k] == 0]
        if grouped:  # grouped by domain (domain samplers): slices, no gather / scatter
            parts = torch.split(x, counts)
            spe = torch.cat([self.local_branches[k](p) for k, p in enumerate(parts) if counts[k]])
        else:
            order = torch.argsort(domains, stable=True)
            routed = torch.cat([self.local_branches[k](x[part])
                                for k, part in enumerate(torch.split(order, counts)) if counts[k]])
            spe = torch.empty_like(routed)
            spe[order] = routed
        if unused and self.training and torch.is_grad_enabled():
            zero = sum((p.sum() * 0 for k in unused for p in self.local_branches[k].parameters()),
                       spe.new_zeros(()))
            spe = spe + zero
        return GlobalLocalOutput(inv, spe)

    @classmethod
    def from_block(cls, block: nn.Module, *, num_domains: int) -> GlobalLocalBlock:
        """``block`` itself as the global branch (pretrained weights survive) and ``num_domains``
        deep copies with every sub-layer re-initialised as the local branches: the same
        structure with different initialisations (CDVM eq 1).

        Example:
            >>> gl = GlobalLocalBlock.from_block(nn.Linear(4, 3), num_domains=2)
            >>> gl.local_branches[0].weight.shape, gl.local_branches[0] is gl.global_branch
            (torch.Size([3, 4]), False)
        """
        if not isinstance(block, nn.Module):
            raise ValueRangeError(f"block: expected an nn.Module, got {type(block).__name__}")
        copies = [copy.deepcopy(block) for _ in range(check_int(num_domains, name="num_domains",
                                                                minimum=1))]
        for m in (m for c in copies for m in c.modules()):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        return cls(make_block=iter([block, *copies]).__next__, num_domains=num_domains)

    def _grouped_counts(self, counts: Sequence[int], domains: Tensor) -> list[int]:
        """``counts`` checked: K ints >= 0 summing to the batch; on the CPU also that
        ``domains`` is grouped that way (elsewhere it is trusted: reading it would sync)."""
        c = list(counts)
        if (len(c) != self.num_domains or any(not isinstance(n, int) or n < 0 for n in c)
                or sum(c) != domains.shape[0]):
            raise ValueRangeError(f"counts: expected {self.num_domains} ints >= 0 summing to "
                                  f"the batch size {domains.shape[0]}, got {counts!r}")
        if values_on_host(domains):
            want = torch.repeat_interleave(torch.arange(self.num_domains), torch.tensor(c))
            if not torch.equal(domains.cpu(), want):
                raise ValueRangeError("counts: expected domains grouped in domain order with "
                                      f"these counts, got domains {domains.tolist()}")
        return c

    def branch_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(global_branch, local_branch_k)`` for every k, for $L_{ws}$ (CDVM eq 2)."""
        return [(self.global_branch, local) for local in self.local_branches]

    def extra_repr(self) -> str:
        return f"num_domains={self.num_domains}"
