"""Pieces shared by :func:`~dgblocks.eval.evaluate_ranking` and
:func:`~dgblocks.eval.rank_features`: argument checks, the per-query metrics from match ranks,
the CMC histogram and one single-gallery-shot draw of a chunk.

Every piece acts on one chunk of queries and its result for a query depends only on that
query's row of distances, so the two entry points agree for any chunking.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from dgblocks._checks import ShapeError, ValueRangeError, check_choice, check_int, check_shape
from dgblocks.eval._ranking_impl import masked_ranks, single_shot_mask

__all__: list[str] = []


def as_tensor(x: Any, name: str, device: torch.device | None, integer: bool) -> Tensor:
    """A label vector (``integer``) or a distance matrix as a tensor on ``device``."""
    if isinstance(x, np.ndarray) or isinstance(x, (list, tuple)):
        try:
            x = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as e:
            raise ShapeError(f"{name}: expected a numeric array, got {type(x).__name__}"
                             f" ({e})") from None
    if not isinstance(x, Tensor):
        raise ShapeError(f"{name}: expected a numpy array or torch.Tensor, got {type(x).__name__}")
    if device is not None:
        x = x.to(device)
    if integer:
        if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
            raise ValueRangeError(f"{name}: expected an integer dtype, got {x.dtype}")
        return x.long()
    if x.dtype.is_complex or x.dtype == torch.bool:
        raise ValueRangeError(f"{name}: expected real-valued distances, got {x.dtype}")
    if x.dtype in (torch.float16, torch.bfloat16) or not x.dtype.is_floating_point:
        return x.float()  # compare in float32; float32/float64 inputs stay exact
    return x


def labels(q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, num_q: int, num_g: int,
           device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four label vectors as int64 tensors on ``device``, their lengths checked."""
    qp = as_tensor(q_pids, "q_pids", device, True)
    gp = as_tensor(g_pids, "g_pids", device, True)
    qc = as_tensor(q_camids, "q_camids", device, True)
    gc = as_tensor(g_camids, "g_camids", device, True)
    check_shape(qp, "Q", name="q_pids", Q=num_q)
    check_shape(qc, "Q", name="q_camids", Q=num_q)
    check_shape(gp, "G", name="g_pids", G=num_g)
    check_shape(gc, "G", name="g_camids", G=num_g)
    return qp, gp, qc, gc


def check_options(max_rank: int, ap_mode: str, invalid_query: str, num_draws: int,
                  generator: torch.Generator | None, seed: int | None,
                  single_gallery_shot: bool) -> torch.Generator:
    """Check the metric options; return the generator of the single-gallery-shot draws."""
    check_int(max_rank, name="max_rank", minimum=1)
    check_choice(ap_mode, ("step", "trapezoid"), name="ap_mode")
    check_choice(invalid_query, ("skip", "zero"), name="invalid_query")
    check_int(num_draws, name="num_draws", minimum=1)
    if not isinstance(single_gallery_shot, (bool, np.bool_)):
        raise ValueRangeError(f"single_gallery_shot: expected a bool, got {single_gallery_shot!r}")
    if generator is None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueRangeError(f"seed: expected an int or None, got {seed!r}")
        return torch.Generator().manual_seed(0 if seed is None else int(seed))
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueRangeError(f"generator: expected a CPU torch.Generator, got {generator!r}")
    return generator


def match_metrics(ranks: Tensor, present: Tensor, n_match: Tensor, ap_mode: str
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


def first_rank_hist(first: Tensor, valid_q: Tensor, max_rank: int) -> Tensor:
    """Cumulative count of the valid queries whose first match is within rank k."""
    first_rank = torch.where(valid_q, first, torch.full_like(first, float(max_rank + 1)))
    hist = torch.bincount(first_rank.clamp(max=max_rank + 1).long() - 1, minlength=max_rank + 1)
    return hist[:max_rank].cumsum(0)


def single_shot_counts(d: Tensor, qp: Tensor, gp: Tensor, qc: Tensor, gc: Tensor,
                       max_rank: int, gen: torch.Generator) -> Tensor:
    """Cumulative first-match counts of one chunk ``d (Qc, G)`` in one single-shot draw.

    The draw is one (Qc, G) uniform tensor from ``gen`` (see ``single_shot_mask``); junk is
    removed before it, so a query with a valid match has exactly one match in the drawn
    gallery. The counts are integers: their sum over chunks and draws is exact in float64.
    """
    same_pid = qp[:, None] == gp[None, :]
    valid = single_shot_mask(~(same_pid & (qc[:, None] == gc[None, :])), gp, gen)
    ranks, _, n_match = masked_ranks(d, same_pid & valid, valid & ~same_pid)
    return first_rank_hist(ranks[:, 0], n_match > 0, max_rank).to(torch.float64)
