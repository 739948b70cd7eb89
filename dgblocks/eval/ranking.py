r"""Ranking metrics of the Market-1501 protocol: CMC, mAP and mINP, vectorised over queries.

For a query $q$ the gallery items with the query's identity *and* camera are junk (ignored);
the true matches are the remaining items of the same identity. With the matches ranked
$r_1 < \dots < r_n$ (1-based, junk removed) the metrics are

$$ \mathrm{CMC}_q(k) = [r_1 \le k], \qquad
   \mathrm{AP}^{\text{step}}_q = \frac1n \sum_{m=1}^n \frac{m}{r_m}, \qquad
   \mathrm{INP}_q = \frac{n}{r_n} $$

and the trapezoid rule of the Market-1501 MATLAB code averages the precision just before and
at each match,

$$ \mathrm{AP}^{\text{trap}}_q = \frac1n \sum_{m=1}^n \frac12\Big(p^-_m + \frac{m}{r_m}\Big),
   \qquad p^-_m = \frac{m-1}{r_m - 1}\ (r_m > 1), \quad p^-_m = 1\ (r_m = 1). $$

A single match at rank $r$ gives $1/r$ (step) and $1/(2r)$ for $r > 1$ (trapezoid).

No per-query loop and no sort of the gallery: the $n$ match distances of each query come from
a small gather of its identity's gallery items; one compare pass keeps the items at most as far
as the last match (the only ones that can rank before a match), and those are counted between
the match distances with a per-row histogram (``dgblocks.eval._ranking_impl``). A cumulative
count gives each match's rank. Ties between a match and a non-match count against the query
(the non-match is ranked first), so the numbers never flatter a degenerate embedding.

Single-gallery-shot (CUHK03's old protocol, as torchreid's ``eval_cuhk03``, fast-reid and
open-reid compute it): AP and INP on the full gallery, and the CMC averaged over $T$ draws,
each keeping one random valid gallery item per identity and query,
$\mathrm{CMC}(k) = \frac1T \sum_{t=1}^T \mathrm{CMC}^{(t)}(k)$.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from dgblocks._checks import ShapeError, ValueRangeError, check_int, check_shape
from dgblocks.eval._metrics import (
    as_tensor,
    check_options,
    first_rank_hist,
    labels,
    match_metrics,
    single_shot_counts,
)
from dgblocks.eval._ranking_impl import GalleryIndex, grouped_ranks

__all__ = ["RankingResult", "evaluate_ranking", "cmc_curve"]

APMode = Literal["step", "trapezoid"]
RANK_ELEMENTS = 1 << 21  # distances per ranking chunk (about 2M: it stays in cache)


@dataclass
class RankingResult:
    """Result of :func:`evaluate_ranking`; all metrics are fractions in ``[0, 1]``.

    Attributes:
        cmc: (max_rank,) float64 array, ``cmc[k]`` = fraction of queries whose first true
            match is within the top ``k + 1``.
        mAP: mean average precision.
        mINP: mean inverse negative penalty (Ye et al. 2021).
        num_valid_queries: queries with at least one true match in the gallery.
        num_queries: all queries.
        ap: (Q,) per-query AP (0 for invalid queries); valid: (Q,) bool mask.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int
    ap: np.ndarray = field(repr=False)
    valid: np.ndarray = field(repr=False)

    def rank(self, k: int) -> float:
        """CMC at rank ``k`` (1-based), e.g. ``result.rank(1)`` for R-1."""
        check_int(k, name="k", minimum=1, maximum=len(self.cmc))  # 0 and -1 index from the end
        return float(self.cmc[k - 1])

    def as_dict(self, ranks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
        """``{"R1": .., "R5": .., "R10": .., "mAP": .., "mINP": ..}`` in percent."""
        if isinstance(ranks, (str, bytes)) or not isinstance(ranks, (tuple, list)):
            raise ValueRangeError(f"ranks: expected a tuple of ints, got {ranks!r}")
        for k in ranks:
            check_int(k, name="ranks", minimum=1)
        out = {f"R{k}": 100.0 * self.rank(min(k, len(self.cmc))) for k in ranks}
        out["mAP"] = 100.0 * self.mAP
        out["mINP"] = 100.0 * self.mINP
        return out


def evaluate_ranking(distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, *,
                     max_rank: int = 50, ap_mode: APMode = "step",
                     invalid_query: Literal["skip", "zero"] = "skip",
                     single_gallery_shot: bool = False, num_draws: int = 10,
                     generator: torch.Generator | None = None, seed: int | None = None,
                     chunk_size: int | None = None) -> RankingResult:
    r"""CMC, mAP and mINP of a query x gallery distance matrix (Market-1501 protocol).

    See the module docstring for the equations. Gallery items sharing the query's identity
    and camera are ignored; queries without a valid match are skipped (``"skip"``) or count
    as zero in every metric (``"zero"``).

    Args:
        distmat: distances (smaller = more similar), NumPy or torch, CPU or CUDA.
        q_pids: identity labels of the queries (integers).
        g_pids: identity labels of the gallery items.
        q_camids: camera labels of the queries.
        g_camids: camera labels of the gallery items.
        max_rank: length of the CMC curve.
        ap_mode: ``"step"`` (mean precision at each match) or ``"trapezoid"`` (Market MATLAB).
        invalid_query: ``"skip"`` or ``"zero"``.
        single_gallery_shot: the CUHK03 old protocol (as torchreid, fast-reid and
            open-reid): mAP and mINP on the full gallery; the CMC averaged over
            ``num_draws`` draws that keep one random valid gallery item per identity and
            query.
        num_draws: number of single-gallery-shot draws the CMC is averaged over (the
            peers use 10; one draw is about sqrt(10) times noisier).
        generator: CPU ``torch.Generator`` of the draws (advanced by them); ``None`` seeds
            a new one from ``seed``.
        seed: seed of the single-gallery-shot draws when ``generator`` is ``None``
            (``None`` means 0).
        chunk_size: queries per vectorised chunk (memory bound); default keeps a chunk
            under about 2M distances.

    Shape:
        distmat: (Q, G); q_pids, q_camids: (Q,); g_pids, g_camids: (G,); cmc: (max_rank,).

    Invariants:
        - cmc is non-decreasing and in [0, 1]; mAP and mINP are in [0, 1]
        - a single true match at rank r gives AP = 1/r (step), 1/(2r) for r > 1 (trapezoid)
        - unchanged by permuting the gallery (up to ties) or by a monotone map of distances

    Example:
        >>> d = torch.tensor([[0.3, 0.1, 0.2]])
        >>> r = evaluate_ranking(d, [0], [0, 1, 2], [0], [1, 1, 1], max_rank=3)
        >>> r.cmc.tolist(), round(r.mAP, 4)
        ([0.0, 0.0, 1.0], 0.3333)
    """
    generator = check_options(max_rank, ap_mode, invalid_query, num_draws, generator, seed,
                              single_gallery_shot)
    dist = as_tensor(distmat, "distmat", None, integer=False)
    sizes = check_shape(dist, "Q G", name="distmat")
    num_q, num_g = sizes["Q"], sizes["G"]
    qp, gp, qc, gc = labels(q_pids, g_pids, q_camids, g_camids, num_q, num_g, dist.device)
    if num_g == 0 or num_q == 0:
        raise ShapeError(f"distmat: expected a non-empty (Q, G) matrix, got {tuple(dist.shape)}")
    if single_gallery_shot and bool(torch.isnan(dist).any()):  # grouped_ranks checks its own
        raise ValueRangeError("distmat: expected no NaN distances, got NaN")
    if chunk_size is None:  # about 2M distances per chunk: it stays in cache while read
        chunk_size = max(1, RANK_ELEMENTS // num_g)
    check_int(chunk_size, name="chunk_size", minimum=1)

    index = GalleryIndex(gp)
    parts = []
    for s in range(0, num_q, chunk_size):
        sl = slice(s, min(s + chunk_size, num_q))
        # per chunk: small tensors, no parallel region on the CPU
        ranks = grouped_ranks(dist[sl], *index.slots(qp[sl]), qc[sl], gc)
        parts.append(match_metrics(*ranks, ap_mode))
    cmc_draws = None
    if single_gallery_shot:  # draw by draw, then chunk by chunk
        cmc_draws = torch.zeros(max_rank, dtype=torch.float64, device=dist.device)
        for _ in range(num_draws):
            for s in range(0, num_q, chunk_size):
                sl = slice(s, min(s + chunk_size, num_q))
                cmc_draws += single_shot_counts(dist[sl], qp[sl], gp, qc[sl], gc, max_rank,
                                                generator)
        cmc_draws /= num_draws
    return ranking_result(parts, cmc_draws, max_rank, invalid_query)


def ranking_result(parts: list[tuple[Tensor, Tensor, Tensor, Tensor]],
                   cmc_draws: Tensor | None, max_rank: int, invalid_query: str
                   ) -> RankingResult:
    """The :class:`RankingResult` of the per-chunk ``match_metrics`` (in query order) and,
    for single-gallery-shot, the CMC counts averaged over the draws."""
    first, ap, inp, nvalid = (torch.cat(x) for x in zip(*parts))
    num_q = first.numel()
    valid_q = nvalid > 0
    num_valid = int(valid_q.sum())
    if num_valid == 0:
        raise ValueRangeError("g_pids: expected at least one query with a valid match in the"
                              " gallery (same identity, other camera), got none")
    ap = torch.where(valid_q, ap, torch.zeros_like(ap))
    inp = torch.where(valid_q, inp, torch.zeros_like(inp))
    if cmc_draws is None:
        cmc = first_rank_hist(first, valid_q, max_rank).to(torch.float64)
    else:
        cmc = cmc_draws
    denom = num_valid if invalid_query == "skip" else num_q
    return RankingResult(
        cmc=(cmc / denom).cpu().numpy(),
        mAP=float(ap.sum()) / denom,
        mINP=float(inp.sum()) / denom,
        num_valid_queries=num_valid,
        num_queries=num_q,
        ap=ap.cpu().numpy(),
        valid=valid_q.cpu().numpy(),
    )


def cmc_curve(result: RankingResult) -> tuple[np.ndarray, np.ndarray]:
    """Plotting data of the CMC curve: ranks ``1..max_rank`` and matching rate in percent.

    Example:
        >>> r = evaluate_ranking(torch.tensor([[0.1, 0.2]]), [0], [0, 1], [0], [1, 1], max_rank=2)
        >>> cmc_curve(r)
        (array([1, 2]), array([100., 100.]))
    """
    if not isinstance(result, RankingResult):
        raise ValueRangeError(f"result: expected a RankingResult, got {type(result).__name__}")
    ranks = np.arange(1, len(result.cmc) + 1)
    return ranks, 100.0 * result.cmc
