r"""Streaming ranking: CMC, mAP and mINP from features, never holding the (Q, G) distances.

:func:`rank_features` computes the distances of one block of queries to the whole gallery as
:func:`dgblocks.distances.pairwise_distance` does (``dgblocks.distances.RowDistances``: the
same operations, the gallery's norms computed once, the block updated in place), ranks the
block with the kernels of :func:`~dgblocks.eval.evaluate_ranking` (the metrics are defined
there), keeps four numbers per query (first-match rank, AP, INP, number of matches) and drops
the block. Memory is the
features plus a block or two: at MSMT17's size (11,659 x 82,161) the full float32 matrix takes
3.8 GB (and about three times that while ``pairwise_distance`` builds it), the default block
256 MiB (816 queries).

The result equals ``evaluate_ranking(pairwise_distance(qf, gf, metric=metric), ...)`` field
for field, ties included. A query's metrics depend only on its row of distances (integer
counts of the items ranked before each match, then float64 arithmetic on the row), so the
blocks only need rows equal to the full matrix's, bit for bit. The distances are computed row
by row except for the matrix product, and BLAS libraries run products with a handful of rows
through other kernels that sum in another order (MKL: fewer than 12 rows, with 2 threads), so a
block always has at least ``MIN_BLOCK_ROWS`` = 64 rows: a short last block is widened to the
left (its first rows are computed twice and ranked once), and a problem with fewer queries is
one block. On CUDA, cuBLAS chooses its algorithm by shape (split-K for some) and may sum a
block in another order than the full product: the ranking is then exact for the block's
distances, which can differ from the full matrix's in the last bit.

Single-gallery-shot draws take the same random numbers as ``evaluate_ranking``'s, which draws
one (Q, G) tensor per draw, draw after draw: one generator per draw is started at its draw's
offset (the skipped numbers are drawn and dropped, ``num_draws x Q x G`` in all), and the
caller's generator ends where ``evaluate_ranking`` leaves it.
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
import torch
from torch import Tensor

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_choice,
    check_float,
    check_int,
    check_shape,
)
from dgblocks.distances import Metric, RowDistances
from dgblocks.eval._metrics import (
    as_tensor,
    check_options,
    labels,
    match_metrics,
    single_shot_counts,
)
from dgblocks.eval._ranking_impl import GalleryIndex, grouped_ranks
from dgblocks.eval.ranking import RANK_ELEMENTS, APMode, RankingResult, ranking_result

__all__ = ["rank_features"]

MIN_BLOCK_ROWS = 64  # BLAS kernels for fewer rows may sum in another order
BLOCK_BYTES = 256 << 20  # default size of one distance block (816 rows at G = 82,161)
_SKIP = 1 << 22  # random numbers per call while skipping to a draw's offset


def _features(x: Any, name: str, pattern: str, **known: int) -> tuple[Tensor, dict[str, int]]:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    sizes = check_shape(x, pattern, name=name, **known)
    check_float(x, name=name)
    if x.shape[0] == 0:
        raise ShapeError(f"{name}: expected at least one row, got shape {tuple(x.shape)}")
    # a finite sum means finite values (NaN and Inf propagate); only an overflowing or
    # non-finite sum needs the element-wise check (in slices: small temporaries)
    if not bool(torch.isfinite(x.sum())):
        finite = [torch.isfinite(x[i: i + 4096]).all() for i in range(0, len(x), 4096)]
        if not bool(torch.stack(finite).all()):
            raise ValueRangeError(f"{name}: expected finite values, got NaN or Inf")
    return x, sizes


def _draw_streams(gen: torch.Generator, num_draws: int, n: int) -> list[torch.Generator]:
    """One generator per draw, at the offset ``t * n`` where ``evaluate_ranking``'s draw
    ``t`` starts; ``gen`` is advanced by ``num_draws * n`` numbers, as there."""
    streams = []
    for _ in range(num_draws):
        streams.append(torch.Generator().set_state(gen.get_state()))
        for s in range(0, n, _SKIP):
            torch.rand(min(_SKIP, n - s), generator=gen, dtype=torch.float64)
    return streams


def _blocks(num_q: int, rows: int):
    """``(b, s, e)``: rows ``[b, e)`` are computed and ``[s, e)`` ranked, each row ranked
    once; ``e - b >= min(num_q, MIN_BLOCK_ROWS)``."""
    for s in range(0, num_q, rows):
        e = min(s + rows, num_q)
        yield min(s, max(0, e - MIN_BLOCK_ROWS)), s, e


def rank_features(query_features: Any, gallery_features: Any, q_pids: Any, g_pids: Any,
                  q_camids: Any, g_camids: Any, *, metric: Metric = "euclidean",
                  max_rank: int = 50, ap_mode: APMode = "step", invalid_query: str = "skip",
                  single_gallery_shot: bool = False, num_draws: int = 10,
                  generator: torch.Generator | None = None, seed: int | None = None,
                  chunk_size: int | None = None, block_bytes: int = BLOCK_BYTES
                  ) -> RankingResult:
    r"""CMC, mAP and mINP of query and gallery features, one block of queries at a time.

    The metrics of :func:`~dgblocks.eval.evaluate_ranking` (Market-1501 protocol) on the
    distances $d_{ij}$ of :func:`~dgblocks.distances.pairwise_distance`, computed for a block
    of queries against the whole gallery at a time; only per-query results are kept. See the
    module docstring for why the result equals the full-matrix one exactly.

    Args:
        query_features: query embeddings (float; NumPy or torch, CPU or CUDA).
        gallery_features: gallery embeddings, same dtype and device.
        q_pids, g_pids, q_camids, g_camids: identity and camera labels, as in
            :func:`~dgblocks.eval.evaluate_ranking` (moved to the features' device).
        metric: ``"euclidean"``, ``"sqeuclidean"`` or ``"cosine"``.
        max_rank, ap_mode, invalid_query, single_gallery_shot, num_draws, generator, seed:
            as in :func:`~dgblocks.eval.evaluate_ranking`.
        chunk_size: queries per distance block (default: as many as fit in ``block_bytes``);
            a block has at least 64 rows, or all queries when there are fewer.
        block_bytes: size of one distance block when ``chunk_size`` is ``None`` (about two
            are held while one is computed).

    Shape:
        query_features: (Q, D); gallery_features: (G, D); q_pids, q_camids: (Q,);
        g_pids, g_camids: (G,); cmc: (max_rank,).

    Invariants:
        - equal, field for field, to ``evaluate_ranking`` of the full distance matrix (CPU)
        - unchanged by ``chunk_size`` and ``block_bytes``
        - cmc is non-decreasing and in [0, 1]; mAP and mINP are in [0, 1]

    Example:
        >>> qf, gf = torch.tensor([[0.0]]), torch.tensor([[3.0], [1.0], [2.0]])
        >>> r = rank_features(qf, gf, [0], [0, 1, 2], [0], [1, 1, 1], max_rank=3)
        >>> r.cmc.tolist(), round(r.mAP, 4)
        ([0.0, 0.0, 1.0], 0.3333)
    """
    generator = check_options(max_rank, ap_mode, invalid_query, num_draws, generator, seed,
                              single_gallery_shot)
    check_choice(metric, get_args(Metric), name="metric")
    qf, sq = _features(query_features, "query_features", "Q D")
    gf, sg = _features(gallery_features, "gallery_features", "G D", D=sq["D"])
    if gf.device != qf.device or gf.dtype != qf.dtype:
        raise ShapeError(f"gallery_features: expected {qf.dtype} on {qf.device} (from"
                         f" query_features), got {gf.dtype} on {gf.device}")
    num_q, num_g = sq["Q"], sg["G"]
    qp, gp, qc, gc = labels(q_pids, g_pids, q_camids, g_camids, num_q, num_g, qf.device)
    check_int(block_bytes, name="block_bytes", minimum=1)
    if chunk_size is None:
        item = 8 if qf.dtype == torch.float64 else 4  # pairwise_distance's output dtype
        chunk_size = max(1, block_bytes // (num_g * item))
    check_int(chunk_size, name="chunk_size", minimum=1)
    rows = max(chunk_size, min(num_q, MIN_BLOCK_ROWS))  # queries per distance block
    # queries per ranking call: cache-sized slices on the CPU; on CUDA the whole block, as
    # each call syncs with the host a few times (its compactions have data-dependent sizes)
    step = chunk_size if qf.device.type == "cuda" else min(chunk_size,
                                                             max(1, RANK_ELEMENTS // num_g))
    streams = _draw_streams(generator, num_draws, num_q * num_g) if single_gallery_shot else []
    cmc_draws = torch.zeros(max_rank, dtype=torch.float64, device=qf.device)

    index, distances = GalleryIndex(gp), RowDistances(gf, metric=metric)
    parts = []
    for b, s, e in _blocks(num_q, rows):
        block = as_tensor(distances(qf[b:e]), "distmat", None, False)  # rows b:e of the matrix
        for c in range(s, e, step):
            sl = slice(c, min(c + step, e))
            d = block[c - b: sl.stop - b]
            try:
                ranks = grouped_ranks(d, *index.slots(qp[sl]), qc[sl], gc)
            except ValueRangeError:  # NaN from finite features: the distances overflowed
                raise ValueRangeError("query_features: expected features whose distances are"
                                      " finite, got NaN distances (values too large?)") from None
            parts.append(match_metrics(*ranks, ap_mode))
            for gen in streams:
                cmc_draws += single_shot_counts(d, qp[sl], gp, qc[sl], gc, max_rank, gen)
        del block
    if single_gallery_shot:
        cmc_draws /= num_draws
    return ranking_result(parts, cmc_draws if single_gallery_shot else None, max_rank,
                          invalid_query)
