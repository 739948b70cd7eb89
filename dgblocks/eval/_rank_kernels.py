"""Vectorised kernels of :func:`dgblocks.eval.evaluate_ranking` (no loop over queries).

Both return, for a chunk of queries, the ranks (1-based, junk removed) of each query's true
matches sorted by distance, a mask of the present ones and the match counts. Ties between a
match and a non-match count against the query (the non-match ranks first).

``grouped_ranks`` (the default path) never builds a (Q, G) mask: the gallery is grouped by
identity once, so each query's same-identity items are a small padded gather ``(Q, S)``
(``S`` = most images of one identity). Every gallery item is then placed among the sorted match
distances with one ``searchsorted`` and counted with one ``scatter_add``; the same-identity
items (matches and junk) are subtracted using the small gather. Two passes over the matrix.

``masked_ranks`` works from explicit (Q, G) masks; it serves the single-gallery-shot draw.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["GalleryIndex", "grouped_ranks", "masked_ranks", "single_shot_mask"]


class GalleryIndex:
    """The gallery grouped by identity: for each query the padded slots of its identity."""

    def __init__(self, g_pids: Tensor) -> None:
        perm = torch.argsort(g_pids, stable=True)
        self.uniq, counts = torch.unique_consecutive(g_pids[perm], return_counts=True)
        self.perm, self.counts = perm, counts
        self.starts = torch.cumsum(counts, 0) - counts
        self.width = int(counts.max())

    def slots(self, q_pids: Tensor) -> tuple[Tensor, Tensor]:
        """Gallery indices ``(Q, S)`` of each query's identity and their validity mask."""
        pos = torch.searchsorted(self.uniq, q_pids).clamp(max=self.uniq.numel() - 1)
        present = self.uniq[pos] == q_pids
        j = torch.arange(self.width, device=q_pids.device)
        ok = present.unsqueeze(1) & (j.unsqueeze(0) < self.counts[pos].unsqueeze(1))
        flat = (self.starts[pos].unsqueeze(1) + j).clamp(max=self.perm.numel() - 1)
        return self.perm[flat], ok


def _ranks_from_counts(counts: Tensor, width: int, n_match: Tensor) -> tuple[Tensor, Tensor]:
    before = counts.cumsum(1)[:, :width]  # non-matches ranked before match m
    m = torch.arange(width, device=counts.device, dtype=torch.float64)
    ranks = m + 1 + before.to(torch.float64)
    present = m.unsqueeze(0) < n_match.unsqueeze(1)
    return ranks, present


def _lower_bound(md: Tensor, rows: Tensor, vals: Tensor) -> Tensor:
    """Per element, the number of entries of the sorted row ``md[rows]`` that are < ``vals``.

    A branch-free binary search on flat gathers over rows padded with ``+inf`` to a power of
    two, so no bounds check is needed: ``log2(width)`` steps of gather, compare, add.
    """
    S = md.shape[1]
    width = 1 << S.bit_length()  # > S: at least one +inf pad column
    pad = torch.full((md.shape[0], width - S), float("inf"), dtype=md.dtype, device=md.device)
    flat = torch.cat([md, pad], 1).reshape(-1)
    base = rows * width
    ptr = base.clone()
    step = width >> 1
    while step >= 1:
        go = flat[ptr + (step - 1)] < vals
        ptr += go * step
        step >>= 1
    return ptr - base


def grouped_ranks(d: Tensor, q_pids: Tensor, q_cams: Tensor, g_cams: Tensor,
                  index: GalleryIndex, dense_fraction: float = 0.05
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """Match ranks of a chunk ``d (Qc, G)`` using the identity-grouped gallery.

    Only gallery items at most as far as a query's last match can change its metrics. One
    compare pass finds them; when they are few (under ``dense_fraction`` of the chunk) they
    are bucketed among the match distances by a binary search on the compacted list,
    otherwise every item is bucketed with ``searchsorted``.
    """
    gidx, same_pid = index.slots(q_pids)  # (Qc, S)
    is_match = same_pid & (g_cams[gidx] != q_cams.unsqueeze(1))
    n_match = is_match.sum(1)
    dsp = d.gather(1, gidx)
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    md = torch.where(is_match, dsp, inf).sort(dim=1).values.contiguous()  # (Qc, S)
    last = md.gather(1, (n_match - 1).clamp_min(0).unsqueeze(1))
    last = torch.where(n_match.unsqueeze(1) > 0, last, -inf)  # no match: nothing counts
    qc, width = d.shape[0], index.width
    cand = d <= last  # (Qc, G): the only items that can rank before a match (ties count)
    nnz = int(cand.sum())
    counts = torch.zeros(qc * (width + 1), dtype=torch.int64, device=d.device)
    if nnz <= dense_fraction * cand.numel():
        rows, cols = cand.nonzero(as_tuple=True)
        pos = _lower_bound(md, rows, d[rows, cols])
        counts.index_add_(0, rows * (width + 1) + pos, torch.ones_like(pos))
    else:
        pos = torch.searchsorted(md, d, side="left")
        pos = torch.where(cand, pos, width)  # items beyond the last match: overflow bucket
        counts.view(qc, width + 1).scatter_add_(1, pos, torch.ones_like(pos))
    counts = counts.view(qc, width + 1)
    pos_sp = torch.searchsorted(md, dsp.contiguous(), side="left")
    included = same_pid & (dsp <= last)  # same-identity items counted above: remove them
    counts.scatter_add_(1, pos_sp, -included.long())
    ranks, present = _ranks_from_counts(counts, width, n_match)
    return ranks, present, n_match


def masked_ranks(d: Tensor, match: Tensor, nonmatch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Match ranks of a chunk from explicit (Qc, G) match / valid-non-match masks."""
    n_match = match.sum(1)
    width = max(int(n_match.max()), 1)
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    md = torch.topk(torch.where(match, d, inf), width, dim=1, largest=False,
                    sorted=True).values.contiguous()
    pos = torch.searchsorted(md, d.contiguous(), side="left")
    counts = torch.zeros(d.shape[0], width + 1, dtype=torch.int32, device=d.device)
    counts.scatter_add_(1, pos, nonmatch.to(torch.int32))
    ranks, present = _ranks_from_counts(counts, width, n_match)
    return ranks, present, n_match


def single_shot_mask(valid: Tensor, g_pids: Tensor, gen: torch.Generator) -> Tensor:
    """Keep, per query and gallery identity, one random valid item (open-reid's draw)."""
    _, inverse = torch.unique(g_pids, return_inverse=True)
    num = int(inverse.max()) + 1
    keys = torch.rand(valid.shape, generator=gen, dtype=torch.float64).to(valid.device)
    keys = keys.masked_fill(~valid, 2.0)
    best = torch.full((valid.shape[0], num), 2.0, dtype=keys.dtype, device=keys.device)
    best = best.scatter_reduce(1, inverse.expand_as(keys), keys, reduce="amin")
    return valid & (keys == best.gather(1, inverse.expand_as(keys)))
