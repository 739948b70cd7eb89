"""Vectorised kernels of :func:`dgblocks.eval.evaluate_ranking` (no loop over queries).

Both kernels return, for a chunk of queries, the ranks (1-based, junk removed) of each query's
true matches sorted by distance, a mask of the present ones and the match counts. Ties between
a match and a non-match count against the query (the non-match ranks first).

``grouped_ranks`` (the default path) never builds a (Q, G) float or index tensor. The gallery is
grouped by identity once, so each query's same-identity items are a small padded gather
``(Q, S)`` (``S`` = most images of one identity), which gives the sorted match distances
``t_1 <= ... <= t_n``. Only gallery items at most as far as the last match ``t_n`` can rank
before a match; one compare pass over the chunk finds them (about 9% of a Market-sized matrix
for a mediocre embedding), and only they are read again. Each one has to be placed among the
thresholds (how many ``t_m`` are below it). Instead of a binary search per item, the range
``[min, t_n]`` of each row is cut into ``cells`` equal cells by one multiply; a cell without a
threshold puts all its items into the same bucket, so a per-(row, cell) histogram (one
``bincount``) is redistributed to buckets at table size. Only the few items that share a cell
with a threshold are placed exactly, by a binary search on their float64 values.

Exactness does not depend on the rounding of the cell map: ``cell(x)`` is computed by the same
IEEE operations for items and thresholds and is non-decreasing in ``x``, so ``cell(x) <
cell(t)`` implies ``x < t`` and ``cell(x) > cell(t)`` implies ``x > t``; items in a
threshold's cell are compared with the original values.

``masked_ranks`` works from explicit (Qc, G) masks; it serves the single-gallery-shot draw.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dgblocks._checks import ValueRangeError

__all__ = ["GalleryIndex", "grouped_ranks", "masked_ranks", "single_shot_mask"]

DEFAULT_CELLS = 512  # cells per query row
_NAN_MESSAGE = "distmat: expected no NaN distances, got NaN"


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
        go = flat.index_select(0, ptr + (step - 1)) < vals
        ptr += go * step
        step >>= 1
    return ptr - base


def _place(counts: Tensor, md: Tensor, rows: Tensor, vals: Tensor) -> None:
    """Add one to ``counts[row, #thresholds < val]`` for each item, by binary search."""
    pos = _lower_bound(md, rows, vals)
    counts.view(-1).index_add_(0, rows * counts.shape[1] + pos, torch.ones_like(pos))


def _candidates(d: Tensor, last: Tensor) -> Tensor:
    """Flat indices (row-major) of the entries ``d[i, j] <= last[i]``, and of NaN entries.

    On the CPU the compare and the compaction run in NumPy, whose ``flatnonzero`` is faster
    than ``torch.nonzero`` on sparse masks; elsewhere in torch.
    """
    if d.device.type == "cpu":
        keep = np.greater(d.detach().numpy(), last.detach().numpy())
        np.logical_not(keep, out=keep)
        return torch.from_numpy(np.flatnonzero(keep))
    keep = torch.gt(d, last).logical_not_()
    return keep.view(-1).nonzero().squeeze(1)


def _chunk_counts(d: Tensor, md: Tensor, t_valid: Tensor, last: Tensor, counts: Tensor,
                  cells: int) -> tuple[Tensor, Tensor] | None:
    """Fill ``counts (Qc, S + 1)`` of one chunk ``d (Qc, G)`` from the cell histogram.

    ``counts[i, k]`` is the number of gallery items of row ``i`` at most as far as the row's
    last threshold with exactly ``k`` thresholds below them, for the items that do not share
    a cell with a threshold; those are returned as ``(rows, vals)`` to be placed exactly.
    Items of the query's own identity are included; the caller removes them.
    """
    qc, g = d.shape
    flat = _candidates(d, last)
    if flat.numel() == 0:
        return None
    vals = d.view(-1).index_select(0, flat)
    rows = torch.div(flat, g, rounding_mode="floor")
    lo = vals.min()
    if bool(torch.isnan(lo)):
        raise ValueRangeError(_NAN_MESSAGE)
    n_match = t_valid.sum(1)
    span = last.squeeze(1) - lo  # -inf for rows without a match (they have no candidates)
    if cells < 1 or not bool(torch.isfinite(lo) & torch.isfinite(span[n_match > 0]).all()):
        return rows, vals  # infinite distances: exact search for every item
    scale = cells / span
    scale = torch.where((span > 0) & torch.isfinite(scale), scale, torch.zeros_like(scale))
    stride = cells + 1  # (x - lo) * scale lies in [0, cells (1 + 2 eps)]: cells 0..cells
    cell = (vals - lo).mul_(scale.index_select(0, rows)).long()
    cell += rows * stride
    hist = torch.bincount(cell, minlength=qc * stride).view(qc, stride).cumsum_(1)
    # the thresholds' cells by the very same operations, so with the same rounding; the map
    # is non-decreasing, so a row's threshold cells are sorted like its thresholds
    t_cell = torch.where(t_valid, (md - lo).mul_(scale.unsqueeze(1)), 0).long()
    upto = hist.gather(1, t_cell)  # items in cells <= the threshold's cell
    below = torch.where(t_cell > 0, hist.gather(1, (t_cell - 1).clamp_min(0)), 0)
    # items strictly between the cells of thresholds m - 1 and m have m thresholds below
    between = (below[:, 1:] - upto[:, :-1]).clamp_min_(0)  # 0 when the cells coincide
    counts[:, :1] += torch.where(t_valid[:, :1], below[:, :1], 0)
    counts[:, 1:-1] += torch.where(t_valid[:, 1:], between, 0)
    t_key = torch.where(t_valid, t_cell + torch.arange(qc, device=d.device).unsqueeze(1) * stride,
                        qc * stride)
    marked = torch.zeros(qc * stride + 1, dtype=torch.bool, device=d.device)
    marked[t_key.view(-1)] = True
    shared = marked.index_select(0, cell).nonzero().squeeze(1)  # items in a threshold's cell
    return rows.index_select(0, shared), vals.index_select(0, shared)


def grouped_ranks(d: Tensor, q_pids: Tensor, q_cams: Tensor, g_cams: Tensor,
                  index: GalleryIndex, *, chunk_size: int | None = None,
                  cells: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Match ranks ``(Q, S)`` of all queries of ``d (Q, G)`` using the identity-grouped gallery.

    The gallery is read in chunks of ``chunk_size`` queries (default: about 1M distances).
    ``cells`` is the number of histogram cells per row; ``0`` places every candidate by binary
    search (slower, same numbers). Raises ``ValueRangeError`` naming ``distmat`` on NaN.
    """
    num_q, num_g = d.shape
    cells = DEFAULT_CELLS if cells is None else cells
    if chunk_size is None:
        chunk_size = max(1, (1 << 20) // num_g)
    gidx, same_pid = index.slots(q_pids)  # (Q, S)
    is_match = same_pid & (g_cams[gidx] != q_cams.unsqueeze(1))
    n_match = is_match.sum(1)
    dsp = d.gather(1, gidx)
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    md = torch.where(is_match, dsp, inf).sort(dim=1).values.contiguous()  # (Q, S)
    last = md.gather(1, (n_match - 1).clamp_min(0).unsqueeze(1))
    last = torch.where(n_match.unsqueeze(1) > 0, last, -inf)  # no match: nothing counts
    t_valid = torch.arange(md.shape[1], device=d.device).unsqueeze(0) < n_match.unsqueeze(1)
    counts = torch.zeros(num_q, md.shape[1] + 1, dtype=torch.int64, device=d.device)
    pending: list[tuple[Tensor, Tensor]] = []
    for s in range(0, num_q, chunk_size):
        e = min(s + chunk_size, num_q)
        left = _chunk_counts(d[s:e].contiguous(), md[s:e], t_valid[s:e], last[s:e], counts[s:e],
                             cells)
        if left is not None:
            pending.append((left[0] + s, left[1]))
    if pending:
        rows, vals = (torch.cat(x) for x in zip(*pending))
        _place(counts, md, rows, vals)
    pos_sp = torch.searchsorted(md, dsp.contiguous(), side="left")
    included = same_pid & (dsp <= last)  # same-identity items counted above: remove them
    counts.scatter_add_(1, pos_sp, -included.long())
    ranks, present = _ranks_from_counts(counts, index.width, n_match)
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
