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

from dgblocks._checks import ShapeError, ValueRangeError, check_choice, check_int, check_shape
from dgblocks.eval._ranking_impl import (
    GalleryIndex,
    grouped_ranks,
    masked_ranks,
    single_shot_mask,
)

__all__ = ["RankingResult", "evaluate_ranking", "cmc_curve"]

APMode = Literal["step", "trapezoid"]


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
        out = {f"R{k}": 100.0 * self.rank(min(k, len(self.cmc))) for k in ranks}
        out["mAP"] = 100.0 * self.mAP
        out["mINP"] = 100.0 * self.mINP
        return out


def _as_tensor(x: Any, name: str, device: torch.device | None, integer: bool) -> Tensor:
    if isinstance(x, np.ndarray) or isinstance(x, (list, tuple)):
        x = torch.as_tensor(np.asarray(x))
    if not isinstance(x, Tensor):
        raise ShapeError(f"{name}: expected a numpy array or torch.Tensor, got {type(x).__name__}")
    if device is not None:
        x = x.to(device)
    if integer:
        if x.dtype.is_floating_point or x.dtype == torch.bool:
            raise ValueRangeError(f"{name}: expected an integer dtype, got {x.dtype}")
        return x.long()
    if x.dtype in (torch.float16, torch.bfloat16) or not x.dtype.is_floating_point:
        return x.float()  # compare in float32; float32/float64 inputs stay exact
    return x


def _match_metrics(ranks: Tensor, present: Tensor, n_match: Tensor, ap_mode: APMode
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """First-match rank, AP and INP per query from the (Q, S) match ranks."""
    m = torch.arange(ranks.shape[1], device=ranks.device, dtype=torch.float64)
    prec = (m + 1) / ranks
    if ap_mode == "trapezoid":
        prev = torch.where(ranks > 1, m / (ranks - 1).clamp_min(1), torch.ones_like(ranks))
        prec = (prec + prev) / 2
    n = n_match.clamp_min(1).to(torch.float64)
    ap = (prec * present).sum(1) / n
    last = ranks.gather(1, (n_match - 1).clamp_min(0).unsqueeze(1)).squeeze(1)
    return ranks[:, 0], ap, n / last, n_match


def _first_rank_hist(first: Tensor, valid_q: Tensor, max_rank: int) -> Tensor:
    """Cumulative count of the valid queries whose first match is within rank k."""
    first_rank = torch.where(valid_q, first, torch.full_like(first, float(max_rank + 1)))
    hist = torch.bincount(first_rank.clamp(max=max_rank + 1).long() - 1, minlength=max_rank + 1)
    return hist[:max_rank].cumsum(0)


def _single_shot_cmc(dist: Tensor, qp: Tensor, gp: Tensor, qc: Tensor, gc: Tensor,
                     max_rank: int, num_draws: int, gen: torch.Generator,
                     chunk_size: int) -> Tensor:
    """Cumulative first-match counts averaged over ``num_draws`` single-shot galleries.

    Draw by draw, then chunk by chunk: each chunk's draw is one (Qc, G) uniform tensor from
    ``gen`` (see ``single_shot_mask``). Junk is removed before the draw, so a query with a
    valid match has exactly one match in every drawn gallery.
    """
    total = torch.zeros(max_rank, dtype=torch.float64, device=dist.device)
    for _ in range(num_draws):
        for s in range(0, qp.shape[0], chunk_size):
            sl = slice(s, min(s + chunk_size, qp.shape[0]))
            same_pid = qp[sl, None] == gp[None, :]
            valid = single_shot_mask(~(same_pid & (qc[sl, None] == gc[None, :])), gp, gen)
            ranks, present, n_match = masked_ranks(dist[sl], same_pid & valid,
                                                   valid & ~same_pid)
            total += _first_rank_hist(ranks[:, 0], n_match > 0, max_rank)
    return total / num_draws


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
    check_int(max_rank, name="max_rank", minimum=1)
    check_choice(ap_mode, ("step", "trapezoid"), name="ap_mode")
    check_choice(invalid_query, ("skip", "zero"), name="invalid_query")
    dist = _as_tensor(distmat, "distmat", None, integer=False)
    sizes = check_shape(dist, "Q G", name="distmat")
    dev = dist.device
    qp = _as_tensor(q_pids, "q_pids", dev, True)
    gp = _as_tensor(g_pids, "g_pids", dev, True)
    qc = _as_tensor(q_camids, "q_camids", dev, True)
    gc = _as_tensor(g_camids, "g_camids", dev, True)
    check_shape(qp, "Q", name="q_pids", Q=sizes["Q"])
    check_shape(qc, "Q", name="q_camids", Q=sizes["Q"])
    check_shape(gp, "G", name="g_pids", G=sizes["G"])
    check_shape(gc, "G", name="g_camids", G=sizes["G"])
    if sizes["G"] == 0 or sizes["Q"] == 0:
        raise ShapeError(f"distmat: expected a non-empty (Q, G) matrix, got {tuple(dist.shape)}")
    num_q, num_g = sizes["Q"], sizes["G"]
    if single_gallery_shot and bool(torch.isnan(dist).any()):  # grouped_ranks checks its own
        raise ValueRangeError("distmat: expected no NaN distances, got NaN")
    if chunk_size is None:  # about 2M distances per chunk: it stays in cache while read
        chunk_size = max(1, (1 << 21) // num_g)
    check_int(chunk_size, name="chunk_size", minimum=1)
    check_int(num_draws, name="num_draws", minimum=1)
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    elif not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueRangeError(f"generator: expected a CPU torch.Generator, got {generator!r}")

    index = GalleryIndex(gp)
    parts = []
    for s in range(0, num_q, chunk_size):
        sl = slice(s, min(s + chunk_size, num_q))
        # per chunk: small tensors, no parallel region on the CPU
        ranks = grouped_ranks(dist[sl], *index.slots(qp[sl]), qc[sl], gc)
        parts.append(_match_metrics(*ranks, ap_mode))
    first, ap, inp, nvalid = (torch.cat(x) for x in zip(*parts))
    valid_q = nvalid > 0
    num_valid = int(valid_q.sum())
    if num_valid == 0:
        raise ValueRangeError("g_pids: expected at least one query with a valid match in the"
                              " gallery (same identity, other camera), got none")
    ap = torch.where(valid_q, ap, torch.zeros_like(ap))
    inp = torch.where(valid_q, inp, torch.zeros_like(inp))
    if single_gallery_shot:
        cmc = _single_shot_cmc(dist, qp, gp, qc, gc, max_rank, num_draws, generator, chunk_size)
    else:
        cmc = _first_rank_hist(first, valid_q, max_rank).to(torch.float64)
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
