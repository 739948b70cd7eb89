"""Nuisance labels for direct transfer (ADIN 1.1, 4.1, 4.2): the heads' targets, a bounded
imbalanced sub-sample of the cameras and time-period labels from timestamps."""

from __future__ import annotations

import torch
from torch import Tensor

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_choice,
    check_int,
    check_probability,
)
from dgblocks.data._validate import (
    check_flag,
    check_generator,
    check_instance,
    check_int_tensor,
    check_real,
)
from dgblocks.data.base import ReIDDataset

__all__ = ["NUISANCES", "nuisance_labels", "nuisance_sizes", "skew_fractions", "skew_by",
           "kept_per_class", "prepare_nuisances", "time_periods"]

NUISANCES = ("camera", "time", "camera+time", "joint")  # ADIN's f_N heads (section 4.2)


def nuisance_labels(kind: str, camera: Tensor, period: Tensor, *,
                    periods: int) -> dict[str, Tensor]:
    """The targets of ADIN's nuisance heads, by head name: ``camera``, ``time``, both
    (``camera+time``, the multi-label adversary) or one ``joint`` head on
    ``camera * periods + period``.

    Example:
        >>> nuisance_labels("joint", torch.tensor([0, 2]), torch.tensor([1, 0]), periods=3)
        {'joint': tensor([1, 6])}

    Labels must be integers with ``camera >= 0`` and ``0 <= period < periods`` (a negative
    or out-of-range label would otherwise become another, plausible class of the joint head).
    """
    check_choice(kind, NUISANCES, name="kind")
    check_int(periods, name="periods", minimum=1)
    for t, name, high in ((camera, "camera", None), (period, "period", periods)):
        check_int_tensor(t, name=name, minimum=0)
        if high is not None and t.numel() and int(t.max()) >= high:
            raise ValueRangeError(f"{name}: expected values < periods={high}, got "
                                  f"{int(t.max())}")
    if camera.shape != period.shape:
        raise ShapeError(f"period: expected shape {tuple(camera.shape)} (one per camera "
                         f"label), got {tuple(period.shape)}")
    return {"camera": {"camera": camera}, "time": {"time": period},
            "camera+time": {"camera": camera, "time": period},
            "joint": {"joint": camera * periods + period}}[kind]


def nuisance_sizes(kind: str, cameras: int, periods: int) -> dict[str, int]:
    """Number of classes per head of :func:`nuisance_labels`.

    Example:
        >>> nuisance_sizes("camera+time", 6, 3)
        {'camera': 6, 'time': 3}
    """
    check_choice(kind, NUISANCES, name="kind")
    check_int(cameras, name="cameras", minimum=1)
    check_int(periods, name="periods", minimum=1)
    sizes = {"camera": cameras, "time": periods, "joint": cameras * periods}
    return {k: sizes[k] for k in kind.split("+")}


def skew_fractions(labels: Tensor, skew: float) -> tuple[Tensor, Tensor]:
    r"""The fraction of each nuisance class that :func:`skew_by` keeps.

    Classes are ranked by label (rank 0 = the smallest label present, ``C`` classes):

    $$ f_c = (1 - s)^{\,r_c / (C - 1)}, \qquad r_c \in \{0, \dots, C-1\} $$

    so the first class keeps everything, the last keeps ``1 - skew`` and the ratio between
    the most and the least kept class is ``1 / (1 - skew)`` whatever ``C`` is (the old rule,
    ``(1 - s)^c``, kept 0.5^14 of MSMT17's 15th camera at ``s = 0.5``).

    Shape:
        labels: (N,) int; outputs: (C,) the classes present (sorted) and their fractions.

    Invariants:
        - fractions in ``[1 - skew, 1]``, non-increasing in the rank, ``f_0 = 1``
        - ``skew = 0`` gives all ones; a single class keeps everything

    Example:
        >>> skew_fractions(torch.tensor([0, 1, 2, 2]), 0.75)[1]
        tensor([1.0000, 0.5000, 0.2500], dtype=torch.float64)
    """
    check_probability(check_real(skew, name="skew"), name="skew", closed=False)
    labels = check_int_tensor(labels, name="labels")
    classes = labels.unique()
    rank = torch.arange(classes.numel(), dtype=torch.float64)
    return classes, (1.0 - skew) ** (rank / max(classes.numel() - 1, 1))


def skew_by(ds: ReIDDataset, labels: Tensor, skew: float, *,
            generator: torch.Generator | None = None) -> ReIDDataset:
    """An imbalanced nuisance distribution (ADIN 1.1) sub-sampled from a balanced one.

    Class ``c`` of ``labels`` keeps ``max(1, round(f_c n_c))`` of its ``n_c`` images, drawn
    without replacement (:func:`skew_fractions`: the kept fraction falls geometrically with
    the class rank, from 1 to ``1 - skew``). Identities are relabelled ``0..n-1``; cameras,
    domains and timestamps are kept as they are. ``skew = 0`` returns ``ds`` itself.

    Args:
        ds: the training set.
        labels: (N,) nuisance class per image (e.g. ``ds.camids``).
        skew: in ``[0, 1)``; ``1 - skew`` is the kept fraction of the last class.
        generator: the draw is a function of it (same generator state, same subset).

    Invariants:
        - no class present in ``labels`` is emptied
        - ``ds.domains`` of the kept images unchanged

    Example:
        >>> ds = ReIDDataset(torch.zeros(8, 3, 4, 2, dtype=torch.uint8), pids=torch.arange(8),
        ...                  camids=torch.arange(8) % 2, domains=torch.arange(8) // 4)
        >>> out = skew_by(ds, ds.camids, 0.5, generator=torch.Generator().manual_seed(0))
        >>> torch.bincount(out.camids).tolist(), out.domains.unique().tolist()
        ([4, 2], [0, 1])
    """
    check_instance(ds, ReIDDataset, name="ds")
    check_generator(generator)
    labels = check_int_tensor(labels, name="labels")
    if labels.numel() != len(ds):
        raise ShapeError(f"labels: expected one label per image ({len(ds)}), got "
                         f"{labels.numel()}")
    classes, frac = skew_fractions(labels, skew)
    if skew == 0:
        return ds
    keep = []
    for c, f in zip(classes.tolist(), frac.tolist()):
        idx = (labels == c).nonzero().squeeze(1)
        n = max(1, round(f * idx.numel()))
        keep.append(idx[torch.randperm(idx.numel(), generator=generator)[:n]])
    out = ds.subset(torch.cat(keep).sort().values, name=ds.name)
    out.pids = torch.unique(out.pids, return_inverse=True)[1]
    return out


def kept_per_class(before: Tensor, after: Tensor) -> dict[str, list[int]]:
    """``{"class", "kept", "of"}``: images per nuisance class after / before :func:`skew_by`
    (the run-start report of ADIN's recipe).

    Example:
        >>> kept_per_class(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1]))
        {'class': [0, 1], 'kept': [2, 1], 'of': [2, 2]}
    """
    before = check_int_tensor(before, name="before")
    after = check_int_tensor(after, name="after")
    classes = before.unique()
    return {"class": classes.tolist(), "kept": [int((after == c).sum()) for c in classes],
            "of": [int((before == c).sum()) for c in classes]}


def prepare_nuisances(ds: ReIDDataset, *, kind: str, skew: float, synthetic: bool,
                      periods: int = 3, generator: torch.Generator | None = None
                      ) -> tuple[ReIDDataset, dict]:
    """ADIN's nuisance labels on a training set: camera ids made contiguous, the time-period
    label (:func:`time_periods`; zeros when ``kind`` is ``"camera"``) written over
    ``timestamps``, then the cameras skewed by :func:`skew_by`.

    Returns:
        the dataset and ``{"skew": skew, "camera": kept_per_class(...)}`` (images kept per
        camera, the run-start report).

    Example:
        >>> ds = ReIDDataset(torch.zeros(8, 3, 4, 2, dtype=torch.uint8), pids=torch.arange(8),
        ...                  camids=torch.arange(8) % 2 * 5, timestamps=torch.arange(8) * 9)
        >>> out, kept = prepare_nuisances(ds, kind="camera+time", skew=0.5, synthetic=False,
        ...                               generator=torch.Generator().manual_seed(0))
        >>> kept["camera"], out.timestamps.max().item()
        ({'class': [0, 1], 'kept': [4, 2], 'of': [4, 4]}, 2)
    """
    check_instance(ds, ReIDDataset, name="ds")
    check_choice(kind, NUISANCES, name="kind")
    check_flag(synthetic, name="synthetic")
    check_int(periods, name="periods", minimum=1)
    check_probability(check_real(skew, name="skew"), name="skew", closed=False)
    check_generator(generator)
    ds.camids = torch.unique(ds.camids, return_inverse=True)[1]
    ds.timestamps = (torch.zeros_like(ds.camids) if kind == "camera" else
                     time_periods(ds.timestamps, synthetic=synthetic, periods=periods))
    before = ds.camids
    ds = skew_by(ds, before, skew, generator=generator)
    return ds, {"skew": skew, "camera": kept_per_class(before, ds.camids)}


def time_periods(timestamps: Tensor, *, synthetic: bool, periods: int = 3) -> Tensor:
    """Time-period label per image: the synthetic minute-of-day -> 0/1/2; real timestamps
    already in ``[0, periods)`` (MSMT17's morning/noon/afternoon) kept; frame numbers (Duke,
    VeRi) cut into ``periods`` equal-count bins. Unknown timestamps (-1) raise."""
    check_int(periods, name="periods", minimum=1)
    check_flag(synthetic, name="synthetic")
    if not isinstance(timestamps, torch.Tensor) or timestamps.dim() != 1:
        raise ValueRangeError(f"timestamps: expected a 1-D tensor, got {timestamps!r}"[:120])
    timestamps = check_int_tensor(timestamps, name="timestamps", empty=False)
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
