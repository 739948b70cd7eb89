r"""The ID pool of DDAN (section 3.3, eq 6-7): one running representation per identity.

Within an epoch, each identity's representation is the running mean of its features (eq 6)

$$ \bar r^{(e, t+1)}_\mu = \tfrac{1}{t+1}\big(t\, \bar r^{(e, t)}_\mu + F(x)\big), $$

and across epochs it is blended with the value the previous epoch ended with (eq 7)

$$ \hat r^{(e+1, t)}_\mu = \alpha\, \hat r^{(e, \backslash)}_\mu
   + (1 - \alpha)\, \bar r^{(e+1, t)}_\mu . $$

Every variable starts at zero, as in the paper. An identity that receives no feature during an
epoch keeps its previous value (eq 7 with an empty running mean would shrink it towards zero,
which the paper cannot have meant). :meth:`IDPool.end_epoch` marks the boundary.

:meth:`IDPool.topk` searches the pool by cosine similarity with DDAN's asymmetric rule: a sample
of a *peripheral* domain looks among the identities of the *other* domains; a sample of the
*central* domain looks among the identities of its *own* domain, excluding its own identity.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_async,
    check_device,
    check_features,
    check_int,
    check_labels,
    check_probability,
    values_checked,
    values_on_host,
)
from dgblocks._dist import all_gather_cat
from dgblocks._module_checks import check_state_entry

__all__ = ["IDPool", "PoolNeighbours"]


class PoolNeighbours(NamedTuple):
    """The result of :meth:`IDPool.topk`.

    Attributes:
        values: the pool representations $\\hat r$ of the neighbours, (B, k, D), no gradient.
        index: their identity labels, (B, k) long.
        similarity: cosine similarities, (B, k); ``-inf`` where ``valid`` is false.
        valid: (B, k) bool; false where the pool holds fewer than k admissible identities yet.
    """

    values: Tensor
    index: Tensor
    similarity: Tensor
    valid: Tensor


class IDPool(nn.Module):
    r"""Per-identity memory with epoch blending and central/peripheral top-k search (DDAN 3.3).

    State (all buffers, so in the ``state_dict`` and moved by ``.to()``): ``bank`` ($\hat r$,
    what :meth:`topk` searches), ``running`` ($\bar r$, this epoch's means), ``prev`` (the value
    the last epoch ended with), ``bank_norm`` (row norms of ``bank``), ``counts`` (updates
    this epoch), ``seen``, ``id_domain`` (the domain each identity was seen in), ``central``
    (-1 until set) and ``epoch``. Memory is
    $3 N D$ values plus $O(N)$: 470 MiB for 20,000 identities x 2048-D in float32.

    Under ``torch.distributed`` :meth:`update` gathers the batch from every rank first, so every
    rank holds the pool that one rank would hold on the concatenated batch. Pool entries never
    carry gradient.

    Args:
        num_ids: number of identities $N$ (global labels, disjoint across domains).
        dim: feature dimension $D$.
        num_domains: number of source domains.
        k: default number of neighbours for :meth:`topk` and ``forward`` (8 in DDAN).
        alpha: epoch blending rate $\alpha$ of eq 7 (0.05 in DDAN).
        central: index of the central domain; may be set later with :meth:`set_central`.
        dtype: floating storage dtype (float32; bfloat16 halves the memory).

    Shape:
        features: (B, D); labels: (B,); domains: (B,); output: :class:`PoolNeighbours` with
        values (B, k, D).

    Example:
        >>> pool = IDPool(num_ids=4, dim=2, num_domains=2, k=1, central=0)
        >>> pool.update(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        ...             labels=torch.tensor([0, 2, 3]), domains=torch.tensor([0, 1, 1]))
        >>> pool.topk(torch.tensor([[1.0, 0.1]]), torch.tensor([1]), labels=torch.tensor([2])).index
        tensor([[0]])
    """

    functional_name: ClassVar[str | None] = None
    bank: Tensor
    running: Tensor
    prev: Tensor
    bank_norm: Tensor
    counts: Tensor
    seen: Tensor
    id_domain: Tensor
    central: Tensor
    epoch: Tensor

    def __init__(self, *, num_ids: int, dim: int, num_domains: int, k: int = 8,
                 alpha: float = 0.05, central: int | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.num_ids = check_int(num_ids, name="num_ids", minimum=2)
        self.dim = check_int(dim, name="dim", minimum=1)
        self.num_domains = check_int(num_domains, name="num_domains", minimum=1)
        self.k = check_int(k, name="k", minimum=1, maximum=num_ids - 1)
        self.alpha = float(check_probability(alpha, name="alpha"))
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueRangeError(f"dtype: expected a floating torch.dtype for the"
                                  f" representations, got {dtype!r}")
        for name in ("bank", "running", "prev"):
            self.register_buffer(name, torch.zeros(num_ids, dim, dtype=dtype))
        self.register_buffer("bank_norm", torch.zeros(num_ids, dtype=torch.float32))
        self.register_buffer("counts", torch.zeros(num_ids, dtype=torch.long))
        self.register_buffer("seen", torch.zeros(num_ids, dtype=torch.bool))
        self.register_buffer("id_domain", torch.full((num_ids,), -1, dtype=torch.long))
        self.register_buffer("central", torch.tensor(-1, dtype=torch.long))
        self.register_buffer("epoch", torch.tensor(0, dtype=torch.long))
        if central is not None:
            self.set_central(central)

    def set_central(self, central: int) -> None:
        """Set the central domain (e.g. from :func:`dgblocks.domains.central_domain`)."""
        check_int(central, name="central", minimum=0, maximum=self.num_domains - 1)
        self.central.fill_(central)

    def _check(self, features: Tensor, labels: Tensor, domains: Tensor) -> None:
        n = check_features(features, "B D", name="features", D=self.dim)["B"]
        check_device(features, self.bank.device, name="features", origin="the pool's buffers")
        check_labels(domains, self.num_domains, name="domains", n=n, length_from="features")
        check_labels(labels, self.num_ids, name="labels", n=n, length_from="features")
        check_device(domains, self.bank.device, name="domains", origin="the pool's buffers")
        check_device(labels, self.bank.device, name="labels", origin="the pool's buffers")

    def _check_domains(self, labels: Tensor, domains: Tensor) -> None:
        # identities are disjoint across domains (global labels): an identity seen in another
        # domain than the one recorded would silently move to it, in topk's search as well
        if not values_checked() or labels.numel() == 0:
            return
        big = torch.full_like(self.id_domain, self.num_domains)
        lo = big.scatter_reduce(0, labels, domains, "amin")[labels]  # per identity in batch
        hi = (-big).scatter_reduce(0, labels, domains, "amax")[labels]
        known = self.id_domain[labels]
        ok = (lo == hi) & ((known < 0) | (known == domains))
        msg = ("domains: expected each identity in one domain (identities are disjoint across"
               " domains)")
        if not values_on_host(ok):  # CUDA: a device assertion, no host sync
            check_async(ok, msg)
        elif not bool(ok.all()):
            i = int((~ok).nonzero()[0, 0])
            pid, was, now = int(labels[i]), int(known[i]), int(domains[i])
            got = (f"identity {pid} in domain {now}, recorded in domain {was}"
                   if 0 <= was != now else
                   f"identity {pid} in domains {int(lo[i])} and {int(hi[i])} of one batch")
            raise ValueRangeError(f"{msg}, got {got} (pool unchanged)")

    @torch.no_grad()
    def update(self, features: Tensor, *, labels: Tensor, domains: Tensor) -> None:
        """Add a batch to this epoch's running means (eq 6) and refresh $\\hat r$ (eq 7).

        Exact for repeated identities inside a batch. Checks (value checks, see
        :func:`dgblocks.checks`): finite features, and each identity in one domain (the one
        it was first seen in); a refused batch leaves the pool unchanged.
        """
        self._check(features, labels, domains)
        if values_checked():  # a NaN row would stay in the bank through every end_epoch
            if not values_on_host(features):  # CUDA: a device assertion, no host sync
                check_async(torch.isfinite(features), "features: expected finite values to"
                            " update the pool")
            elif not bool(torch.isfinite(features).all()):
                raise ValueRangeError("features: expected finite values to update the pool,"
                                      " got NaN or Inf (pool unchanged)")
        f = all_gather_cat(features.detach()).to(self.bank.dtype)
        labels, domains = all_gather_cat(labels.long()), all_gather_cat(domains.long())
        self._check_domains(labels, domains)
        ones = torch.ones_like(labels)
        n_new = torch.zeros_like(self.counts).index_add_(0, labels, ones)
        t = self.counts[labels]
        total = (t + n_new[labels]).unsqueeze(1).to(f.dtype)
        # (t*old + sum f)/(t+n) - old == sum over the batch of (f - old)/(t+n)
        # index_put_(accumulate=True): same sums as index_add_, ~20x faster on CPU for a batch
        self.running.index_put_((labels,), (f - self.running[labels]) / total, accumulate=True)
        self.counts.add_(n_new)
        rows = self.alpha * self.prev[labels] + (1 - self.alpha) * self.running[labels]
        self.bank[labels] = rows
        wide = rows.to(torch.promote_types(rows.dtype, torch.float32))
        self.bank_norm[labels] = wide.norm(dim=1).to(self.bank_norm.dtype)  # cached for topk
        self.seen[labels] = True
        self.id_domain[labels] = domains

    @torch.no_grad()
    def end_epoch(self) -> None:
        """Epoch boundary: $\\hat r^{(e,\\backslash)}$ becomes the value later epochs blend with."""
        self.prev.copy_(self.bank)
        self.running.zero_()
        self.counts.zero_()
        self.epoch.add_(1)

    @torch.no_grad()
    def topk(self, features: Tensor, domains: Tensor, k: int | None = None, *,
             labels: Tensor) -> PoolNeighbours:
        """The k most cosine-similar admissible identities of each sample (DDAN 3.3).

        Peripheral sample: identities of the other domains. Central sample: identities of its
        own domain other than its own (``labels``). Identities never updated are not admissible.

        Shape:
            features: (B, D); domains: (B,); labels: (B,); output values (B, k, D).
        """
        k = self.k if k is None else check_int(k, name="k", minimum=1, maximum=self.num_ids - 1)
        if labels is None:
            raise ShapeError("labels: required (a central sample excludes its own identity),"
                             " got None")
        self._check(features, labels, domains)
        msg = "central: expected the central domain to be set (IDPool(central=...) or set_central)"
        if not values_on_host(self.central):  # CUDA: a device assertion, no host sync
            check_async(self.central >= 0, msg)
        elif int(self.central) < 0:  # a check: reads a CPU buffer, no device sync
            raise ValueRangeError(msg + ", got none")
        q = nn.functional.normalize(features.detach().float(), dim=1)
        sim = (q @ self.bank.float().t()) / self.bank_norm.float().clamp_min(1e-12)  # cosine
        pid_dom = self.id_domain.unsqueeze(0)  # (1, N)
        dom = domains.unsqueeze(1)  # (B, 1)
        is_central = dom == self.central
        own = torch.arange(self.num_ids, device=sim.device).unsqueeze(0) == labels.unsqueeze(1)
        allowed = torch.where(is_central, (pid_dom == dom) & ~own, pid_dom != dom)
        allowed &= self.seen.unsqueeze(0)
        sim = sim.masked_fill(~allowed, float("-inf"))
        top = sim.topk(k, dim=1)
        return PoolNeighbours(self.bank[top.indices], top.indices, top.values,
                              torch.isfinite(top.values))

    def forward(self, features: Tensor, *, labels: Tensor, domains: Tensor) -> PoolNeighbours:
        """Query the pool (:meth:`topk`), then, in training mode, add the batch (:meth:`update`).

        Args:
            features: the batch's features $F(x)$, (B, D), on the pool's device.
            labels: global identity labels in ``[0, num_ids)``, (B,).
            domains: domain of each sample in ``[0, num_domains)``, (B,); each identity stays
                in one domain.

        Returns:
            :class:`PoolNeighbours` of the ``k`` most similar admissible identities, found
            *before* this batch is added; no gradient. Training mode then updates the pool
            with the batch (eq 6-7); eval mode leaves it unchanged.
        """
        out = self.topk(features, domains, labels=labels)
        if self.training:
            self.update(features, labels=labels, domains=domains)
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        g = self.num_domains - 1
        for name, lo, hi in (("bank", None, None), ("running", None, None), ("prev", None, None),
                             ("bank_norm", 0, None), ("counts", 0, None), ("seen", None, None),
                             ("id_domain", -1, g), ("central", -1, g), ("epoch", 0, None)):
            check_state_entry(state_dict, prefix + name, getattr(self, name), minimum=lo,
                              maximum=hi)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"num_ids={self.num_ids}, dim={self.dim}, num_domains={self.num_domains},"
                f" k={self.k}, alpha={self.alpha}")
