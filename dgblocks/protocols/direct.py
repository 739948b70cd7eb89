"""Single-source direct transfer (ADIN 4.1): train on one dataset, test on the others.

:func:`dgblocks.eval.build_protocol` covers ``direct:<S>-><T>`` on the real datasets (one
target); these helpers compose the same protocol from an embedded benchmark (one synthetic
source trains, the other sources' held-out sets and the targets test), several real targets
at once, a held-out identity split of the source for validation, an imbalanced sub-sample of
the nuisances, and time-period labels from timestamps.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from dgblocks._checks import ValueRangeError, check_int, check_probability
from dgblocks.data.base import Benchmark, ReIDDataset, TargetDomain

__all__ = ["relabel", "single_source", "holdout_identities", "skew_by", "time_periods",
           "real_direct"]


def relabel(ds: ReIDDataset) -> ReIDDataset:
    """``ds`` with contiguous identities ``0..n-1`` and every image in domain 0 (in place)."""
    ds.pids = torch.unique(ds.pids, return_inverse=True)[1]
    ds.domains = torch.zeros_like(ds.pids)
    return ds


def single_source(bench: Benchmark, source: int) -> tuple[Benchmark, TargetDomain]:
    """Train on source domain ``source`` of an embedded benchmark, test on all the others.

    Returns the benchmark (train = that source's images, relabelled; targets = the other
    sources' held-out sets, then the unseen targets) and the source's own held-out set (the
    identity validation split).

    Example:
        >>> from dgblocks.data import synthetic_reid
        >>> b, val = single_source(synthetic_reid(smoke=True), 1)
        >>> b.num_ids, [t.name for t in b.targets], val.name
        (12, ['src-mall-val', 'tgt-night', 'tgt-lowres'], 'src-campus-val')
    """
    check_int(source, name="source", minimum=0, maximum=bench.num_domains - 1)
    if len(bench.source_val) != bench.num_domains:
        raise ValueRangeError(f"bench: expected one held-out set per source domain "
                              f"({bench.num_domains}), got {len(bench.source_val)}")
    name = bench.domain_names[source]
    train = relabel(bench.train.subset((bench.train.domains == source).nonzero().squeeze(1),
                                       name=f"{name}/train"))
    others = [t for d, t in enumerate(bench.source_val) if d != source]
    out = Benchmark(name=f"{bench.name}:direct:{name}", train=train, num_ids=train.num_ids,
                    num_domains=1, domain_names=[name], targets=others + list(bench.targets),
                    source_val=[bench.source_val[source]], task=bench.task,
                    info={**bench.info, "source": name})
    return out, bench.source_val[source]


def holdout_identities(ds: ReIDDataset, num_ids: int, *, generator: torch.Generator | None = None,
                       name: str = "held-out") -> tuple[ReIDDataset, TargetDomain]:
    """Split ``num_ids`` random identities off ``ds``: the rest trains (relabelled), the
    held-out ones form one query (first image of each) / gallery (the others) split."""
    ids = ds.pids.unique()
    check_int(num_ids, name="num_ids", minimum=1, maximum=max(1, ids.numel() - 1))
    held = ids[torch.randperm(ids.numel(), generator=generator)[:num_ids]]
    is_held = torch.isin(ds.pids, held)
    idx = is_held.nonzero().squeeze(1)
    first = torch.zeros_like(is_held)
    seen: set[int] = set()
    for i, p in zip(idx.tolist(), ds.pids[idx].tolist()):
        if p not in seen:
            seen.add(p)
            first[i] = True
    query = ds.subset(first.nonzero().squeeze(1), name=f"{name}/query")
    gallery = ds.subset((is_held & ~first).nonzero().squeeze(1), name=f"{name}/gallery")
    train = relabel(ds.subset((~is_held).nonzero().squeeze(1), name=ds.name))
    return train, TargetDomain(name=name, splits=[(query, gallery)])


def skew_by(ds: ReIDDataset, labels: Tensor, skew: float, *,
            generator: torch.Generator | None = None) -> ReIDDataset:
    """Keep image ``i`` with probability ``(1 - skew) ** labels[i]``: an imbalanced nuisance
    distribution (ADIN 1.1) from a balanced one; identities relabelled afterwards."""
    check_probability(skew, name="skew", closed=False)
    if skew == 0:
        return ds
    keep = torch.rand(len(ds), generator=generator) < (1.0 - skew) ** labels.double()
    return relabel(ds.subset(keep.nonzero().squeeze(1), name=ds.name))


def time_periods(timestamps: Tensor, *, synthetic: bool, periods: int = 3) -> Tensor:
    """Time-period label per image: the synthetic minute-of-day -> 0/1/2; real timestamps
    already in ``[0, periods)`` (MSMT17's morning/noon/afternoon) kept; frame numbers (Duke,
    VeRi) cut into ``periods`` equal-count bins. Unknown timestamps (-1) raise."""
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


def real_direct(protocol: str, root: str | Path, *,
                image_size: tuple[int, int] = (256, 128)) -> Benchmark:
    """``direct:<S>-><T1>+<T2>...`` on the real datasets: one source, several targets."""
    from dgblocks.eval.protocols import build_protocol

    if not protocol.startswith("direct:") or "->" not in protocol:
        raise ValueRangeError(f"protocol: expected 'direct:<S>-><T>[+<T2>...]', got "
                              f"{protocol!r}")
    src, tgts = protocol[len("direct:"):].split("->", 1)
    parts = [build_protocol(f"direct:{src}->{t}", root=root, image_size=image_size)
             for t in tgts.split("+")]
    targets = [t for p in parts for t in p.targets]
    first = parts[0]
    return Benchmark(name=protocol, train=first.train, num_ids=first.num_ids, num_domains=1,
                     domain_names=first.domain_names, targets=targets, task="reid",
                     info={**first.info, "protocol": protocol})
