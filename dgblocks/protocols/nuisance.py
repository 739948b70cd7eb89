"""Nuisance labels for direct transfer (ADIN 1.1, 4.1): an imbalanced sub-sample of the
nuisances and time-period labels from timestamps."""

from __future__ import annotations

import torch
from torch import Tensor

from dgblocks._checks import ValueRangeError, check_int, check_probability
from dgblocks.data.base import ReIDDataset
from dgblocks.protocols.embedded import relabel_identities

__all__ = ["skew_by", "time_periods"]


def skew_by(ds: ReIDDataset, labels: Tensor, skew: float, *,
            generator: torch.Generator | None = None) -> ReIDDataset:
    """Keep image ``i`` with probability ``(1 - skew) ** labels[i]``: an imbalanced nuisance
    distribution (ADIN 1.1) from a balanced one; identities relabelled afterwards."""
    check_probability(skew, name="skew", closed=False)
    if skew == 0:
        return ds
    keep = torch.rand(len(ds), generator=generator) < (1.0 - skew) ** labels.double()
    return relabel_identities(ds.subset(keep.nonzero().squeeze(1), name=ds.name))


def time_periods(timestamps: Tensor, *, synthetic: bool, periods: int = 3) -> Tensor:
    """Time-period label per image: the synthetic minute-of-day -> 0/1/2; real timestamps
    already in ``[0, periods)`` (MSMT17's morning/noon/afternoon) kept; frame numbers (Duke,
    VeRi) cut into ``periods`` equal-count bins. Unknown timestamps (-1) raise."""
    check_int(periods, name="periods", minimum=1)
    if not isinstance(timestamps, torch.Tensor) or timestamps.dim() != 1:
        raise ValueRangeError(f"timestamps: expected a 1-D tensor, got {timestamps!r}")
    if synthetic:
        from dgblocks.data.synthetic_reid import time_period

        return time_period(timestamps)
    if bool((timestamps < 0).any()):
        raise ValueRangeError("timestamps: expected known timestamps for a time nuisance, got "
                              "-1 (unknown); use --nuisance camera")
    if int(timestamps.max()) < periods:
        return timestamps.clone()
    edges = torch.quantile(timestamps.double(), torch.linspace(0, 1, periods + 1,
                                                              dtype=torch.float64)[1:-1])
    return torch.bucketize(timestamps.double(), edges, right=True)
