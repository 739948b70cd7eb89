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
with a threshold are placed exactly, by a binary search on their original values.

On the CPU the per-item work runs in NumPy (``_counts_numpy``): its ``flatnonzero`` compacts
the sparse compare mask faster than ``torch.nonzero``, and it runs no OpenMP team, whose
spinning workers stall each parallel op on a shared, busy machine. The remaining torch ops
act on ``(Qc, S)`` tensors, below ATen's parallel grain. Other devices use ``_counts_torch``,
the same algorithm in torch (the tests check that both give the same counts).

Exactness does not depend on the rounding of the cell map: ``cell(x)`` is computed by the same
IEEE operations for items and thresholds and is non-decreasing in ``x``, so ``cell(x) <
cell(t)`` implies ``x < t`` and ``cell(x) > cell(t)`` implies ``x > t``; items in a
threshold's cell are compared with the original values.

``masked_ranks`` works from explicit (Qc, G) masks; it serves the single-gallery-shot draw.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import Tensor

from dgblocks._checks import ValueRangeError

Array = np.ndarray | Tensor

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
        # a binary search by gathers: torch.searchsorted opens a parallel region for any
        # input above 200 elements (pids are exact in float64 up to 2**53)
        pos = _lower_bound(self.uniq.unsqueeze(0).double(), torch.zeros_like(q_pids),
                           q_pids.double()).clamp(max=self.uniq.numel() - 1)
        present = self.uniq.index_select(0, pos) == q_pids
        j = torch.arange(self.width, device=q_pids.device)
        ok = present.unsqueeze(1) & (j.unsqueeze(0) < self.counts.index_select(0, pos)[:, None])
        flat = (self.starts.index_select(0, pos)[:, None] + j).clamp(max=self.perm.numel() - 1)
        return self.perm.index_select(0, flat.view(-1)).view_as(flat), ok


def _ranks_from_counts(counts: Tensor, width: int, n_match: Tensor) -> tuple[Tensor, Tensor]:
    before = counts.cumsum(1)[:, :width]  # non-matches ranked before match m
    m = torch.arange(width, device=counts.device, dtype=torch.float64)
    ranks = m + 1 + before.to(torch.float64)
    present = m.unsqueeze(0) < n_match.unsqueeze(1)
    return ranks, present


def _lower_bound(md: Array, rows: Array, vals: Array) -> Array:
    """Per element, the number of entries of the sorted row ``md[rows]`` that are < ``vals``.

    A branch-free binary search on flat gathers over rows padded with ``+inf`` to a power of
    two, so no bounds check is needed: ``log2(width)`` steps of gather, compare, add. NumPy
    arrays or torch tensors (all of one kind).
    """
    n, S = md.shape
    width = 1 << S.bit_length()  # > S: at least one +inf pad column
    if isinstance(md, np.ndarray):
        flat = np.concatenate([md, np.full((n, width - S), np.inf, md.dtype)], 1).reshape(-1)
    else:
        pad = torch.full((n, width - S), float("inf"), dtype=md.dtype, device=md.device)
        flat = torch.cat([md, pad], 1).reshape(-1)
    base = rows * width
    ptr = base.copy() if isinstance(base, np.ndarray) else base.clone()
    step = width >> 1
    take = flat.take if isinstance(flat, np.ndarray) else partial(flat.index_select, 0)
    while step >= 1:
        ptr += (take(ptr + (step - 1)) < vals) * step
        step >>= 1
    return ptr - base


def _counts_numpy(d: np.ndarray, md: np.ndarray, t_valid: np.ndarray, last: np.ndarray,
                  gidx: np.ndarray, same_pid: np.ndarray, cells: int) -> np.ndarray:
    """:func:`_counts_torch` in NumPy: the CPU path.

    NumPy's ``flatnonzero`` compacts a sparse mask faster than ``torch.nonzero``, and NumPy
    runs no OpenMP team, whose spinning workers stall every parallel op on a busy machine.
    """
    qc, g = d.shape
    counts = np.zeros((qc, md.shape[1] + 1), dtype=np.int64)
    keep = np.greater(d, last)
    np.logical_not(keep, out=keep)  # d <= last, and NaN (caught below)
    keep[np.nonzero(same_pid)[0], gidx[same_pid]] = False  # matches and junk: not counted
    flat = np.flatnonzero(keep)  # row-major: the candidates of a row are adjacent
    if flat.size == 0:
        return counts
    vals = d.reshape(-1).take(flat)
    rows = flat // g
    lo = min(vals.min(), md[:, 0].min())  # md[:, 0] is +inf for rows without a match
    if np.isnan(lo):
        raise ValueRangeError(_NAN_MESSAGE)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # infinities
        span = last[:, 0] - lo  # -inf for rows without a match (they have no candidates)
        exact = cells < 1 or not (np.isfinite(lo) and np.isfinite(span[t_valid[:, 0]]).all())
        scale = np.where(span > 0, cells / span, 0.0)
    if not exact:
        scale[~np.isfinite(scale)] = 0.0
        stride = cells + 1  # (x - lo) * scale lies in [0, cells (1 + 2 eps)]: cells 0..cells
        x = vals - lo
        x *= scale.take(rows)
        cell = x.astype(np.int64)
        cell += rows * stride
        hist = np.bincount(cell, minlength=qc * stride).reshape(qc, stride).cumsum(1)
        # the thresholds' cells by the very same operations, so with the same rounding
        with np.errstate(invalid="ignore"):
            t_cell = np.where(t_valid, (md - lo) * scale[:, None], 0.0).astype(np.int64)
        shared = np.flatnonzero(_threshold_cells(counts, hist, t_cell, t_valid).take(cell))
        rows, vals = rows.take(shared), vals.take(shared)
    pos = rows * counts.shape[1] + _lower_bound(md, rows, vals)
    counts += np.bincount(pos, minlength=counts.size).reshape(counts.shape)
    return counts


def _counts_torch(d: Tensor, md: Tensor, t_valid: Tensor, last: Tensor, gidx: Tensor,
                  same_pid: Tensor, cells: int) -> Tensor:
    """Bucket counts of one chunk ``d (Qc, G)`` from a per-row cell histogram.

    ``counts[i, k]`` is the number of gallery items of row ``i`` of another identity than the
    query, at most as far as the row's last threshold, with exactly ``k`` thresholds below.
    Items of cells without a threshold are counted by cell; the others are placed exactly.
    """
    qc, g = d.shape
    counts = torch.zeros(qc, md.shape[1] + 1, dtype=torch.int64, device=d.device)
    keep = torch.gt(d, last).logical_not_()
    keep[same_pid.nonzero(as_tuple=True)[0], gidx[same_pid]] = False
    flat = keep.view(-1).nonzero().squeeze(1)
    if flat.numel() == 0:
        return counts
    vals = d.view(-1).index_select(0, flat)
    rows = torch.div(flat, g, rounding_mode="floor")
    lo = torch.minimum(vals.min(), md[:, 0].min())
    if bool(torch.isnan(lo)):
        raise ValueRangeError(_NAN_MESSAGE)
    span = last.squeeze(1) - lo
    if cells >= 1 and bool(torch.isfinite(lo) & torch.isfinite(span[t_valid[:, 0]]).all()):
        scale = torch.where(span > 0, cells / span, 0.0)
        scale = torch.where(torch.isfinite(scale), scale, 0.0)
        stride = cells + 1
        cell = (vals - lo).mul_(scale.index_select(0, rows)).long()
        cell += rows * stride
        hist = torch.bincount(cell, minlength=qc * stride).view(qc, stride).cumsum_(1)
        t_cell = torch.where(t_valid, (md - lo).mul_(scale.unsqueeze(1)), 0.0).long()
        marked = _threshold_cells(counts, hist, t_cell, t_valid)
        shared = marked.index_select(0, cell).nonzero().squeeze(1)
        rows, vals = rows.index_select(0, shared), vals.index_select(0, shared)
    pos = rows * counts.shape[1] + _lower_bound(md, rows, vals)
    counts.view(-1).index_add_(0, pos, torch.ones_like(pos))
    return counts


def _threshold_cells(counts: Array, hist: Array, t_cell: Array, t_valid: Array) -> Array:
    """Add the items of threshold-free cells to ``counts``; mark the thresholds' cells.

    ``hist (Qc, stride)`` is the cumulative cell histogram of each row and ``t_cell (Qc, S)``
    the cells of its thresholds (sorted, as the map is non-decreasing). The arrays are all
    NumPy or all torch; the few small operations read the same in both. Returns the flat
    ``(Qc * stride + 1,)`` bool table of the cells that hold a threshold.
    """
    qc, stride = hist.shape
    if isinstance(hist, np.ndarray):
        xp, take, rows = np, np.take_along_axis, np.arange(qc).reshape(qc, 1)
        marked = np.zeros(qc * stride + 1, dtype=bool)
    else:
        xp, rows = torch, torch.arange(qc, device=hist.device).unsqueeze(1)

        def take(x: Tensor, index: Tensor, dim: int) -> Tensor:
            return torch.gather(x, dim, index)

        marked = torch.zeros(qc * stride + 1, dtype=torch.bool, device=hist.device)
    zero = 0 * t_cell
    upto = take(hist, t_cell, 1)  # items in cells <= the threshold's cell
    below = xp.where(t_cell > 0, take(hist, xp.maximum(t_cell - 1, zero), 1), zero)
    # items strictly between the cells of thresholds m - 1 and m have m thresholds below;
    # the difference is negative when the two cells coincide
    between = xp.maximum(below[:, 1:] - upto[:, :-1], zero[:, 1:])
    counts[:, :1] += xp.where(t_valid[:, :1], below[:, :1], zero[:, :1])
    counts[:, 1:-1] += xp.where(t_valid[:, 1:], between, zero[:, 1:])
    marked[xp.where(t_valid, t_cell + rows * stride, qc * stride).reshape(-1)] = True
    return marked


def grouped_ranks(d: Tensor, gidx: Tensor, same_pid: Tensor, q_cams: Tensor, g_cams: Tensor,
                  cells: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Match ranks of a chunk ``d (Qc, G)`` using the identity-grouped gallery.

    ``gidx, same_pid = GalleryIndex(g_pids).slots(q_pids)`` are the chunk's same-identity
    slots. ``cells`` is the number of histogram cells per row (default ``DEFAULT_CELLS``);
    ``0`` places every candidate by binary search (slower, same numbers). Raises
    ``ValueRangeError`` naming ``distmat`` on NaN. The torch operations here act on
    ``(Qc, S)`` tensors, small enough to run without a parallel region; gathers use
    ``index_select``/``gather``, as advanced indexing and ``take`` open one even for a few
    elements.
    """
    cells = DEFAULT_CELLS if cells is None else cells
    d = d.contiguous()
    width = gidx.shape[1]
    is_match = same_pid & (g_cams.index_select(0, gidx.view(-1)).view_as(gidx)
                           != q_cams.unsqueeze(1))
    n_match = is_match.sum(1)
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    dsp = d.gather(1, gidx)
    if bool(torch.isnan(dsp).any()):  # the kernels see NaN elsewhere, not in these slots
        raise ValueRangeError(_NAN_MESSAGE)
    md = torch.where(is_match, dsp, inf)  # (Qc, S), sorted below
    if d.device.type == "cpu":  # NumPy: no parallel region for a small sort
        md = torch.from_numpy(np.sort(md.numpy(), axis=1))
    else:
        md = md.sort(dim=1).values.contiguous()
    last = md.gather(1, (n_match - 1).clamp_min(0).unsqueeze(1))
    last = torch.where(n_match.unsqueeze(1) > 0, last, -inf)  # no match: nothing counts
    t_valid = torch.arange(width, device=d.device).unsqueeze(0) < n_match.unsqueeze(1)
    if d.device.type == "cpu":
        counts = torch.from_numpy(_counts_numpy(
            d.detach().numpy(), md.numpy(), t_valid.numpy(), last.numpy(), gidx.numpy(),
            same_pid.numpy(), cells))
    else:
        counts = _counts_torch(d, md, t_valid, last, gidx, same_pid, cells)
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
