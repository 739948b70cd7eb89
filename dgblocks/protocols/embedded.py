"""Protocols composed from an embedded (synthetic) multi-source benchmark.

- :func:`leave_one_out`: the Protocol-2/3 layout. Train on all source domains but one and test
  on the held-out one: its *training* identities are dropped and its held-out identities
  (``source_val``, Protocol-1 shaped, never trained on) become the target. (On the real
  datasets, ``protocol2:<T>`` / ``protocol3:<T>`` of :func:`dgblocks.protocols.build_protocol`.)
- :func:`single_source`: single-source direct transfer (ADIN 4.1): one source domain trains,
  the other sources' held-out sets and the unseen targets test. (On the real datasets,
  ``direct:<S>-><T>`` and :func:`dgblocks.protocols.real_direct`.)
- :func:`hold_out_identities`: split identities off a training set for validation.
"""

from __future__ import annotations

import torch

from dgblocks._checks import ValueRangeError, check_int
from dgblocks.data._validate import check_generator, check_instance, check_text
from dgblocks.data.base import Benchmark, ReIDDataset, TargetDomain

__all__ = ["leave_one_out", "single_source", "hold_out_identities", "relabel_identities"]


def leave_one_out(bench: Benchmark, source: int) -> Benchmark:
    """Train on every source but ``source``; test on ``source``'s held-out identities.

    The remaining sources' domains and identities are relabelled to ``0..D-2`` and
    ``0..num_ids-1`` (order kept), so the result plugs into any recipe like the original.

    Args:
        bench: a benchmark whose ``source_val`` holds one target per source domain.
        source: index of the source domain to hold out.

    Example:
        >>> from dgblocks.data import synthetic_reid
        >>> b = leave_one_out(synthetic_reid(smoke=True), 0)
        >>> b.num_domains, b.domain_names == synthetic_reid(smoke=True).domain_names[1:]
        (1, True)
    """
    check_instance(bench, Benchmark, name="bench")
    check_int(source, name="source", minimum=0, maximum=bench.num_domains - 1)
    if len(bench.source_val) != bench.num_domains:
        raise ValueRangeError(f"bench: expected one source_val target per source domain "
                              f"({bench.num_domains}), got {len(bench.source_val)}")
    keep = [k for k in range(bench.num_domains) if k != source]
    train = bench.train.subset((bench.train.domains != source).nonzero().squeeze(1))
    train.pids = torch.unique(train.pids, return_inverse=True)[1]
    train.domains = torch.searchsorted(torch.tensor(keep), train.domains)
    name = bench.domain_names[source]
    return Benchmark(name=f"{bench.name}-holdout-{name}", train=train,
                     num_ids=int(train.pids.max()) + 1 if len(train) else 0,
                     num_domains=len(keep), domain_names=[bench.domain_names[k] for k in keep],
                     targets=[bench.source_val[source]],
                     source_val=[bench.source_val[k] for k in keep], task=bench.task,
                     info={**bench.info, "holdout": name})


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
    check_instance(bench, Benchmark, name="bench")
    check_int(source, name="source", minimum=0, maximum=bench.num_domains - 1)
    if len(bench.source_val) != bench.num_domains:
        raise ValueRangeError(f"bench: expected one held-out set per source domain "
                              f"({bench.num_domains}), got {len(bench.source_val)}")
    name = bench.domain_names[source]
    mine = (bench.train.domains == source).nonzero().squeeze(1)
    train = relabel_identities(bench.train.subset(mine, name=f"{name}/train"))
    others = [t for d, t in enumerate(bench.source_val) if d != source]
    out = Benchmark(name=f"{bench.name}:direct:{name}", train=train, num_ids=train.num_ids,
                    num_domains=1, domain_names=[name], targets=others + list(bench.targets),
                    source_val=[bench.source_val[source]], task=bench.task,
                    info={**bench.info, "source": name})
    return out, bench.source_val[source]


def hold_out_identities(ds: ReIDDataset, num_ids: int, *,
                        generator: torch.Generator | None = None,
                        name: str = "held-out",
                        arg: str = "num_ids") -> tuple[ReIDDataset, TargetDomain]:
    """Split ``num_ids`` random identities off ``ds``: the rest trains (relabelled), the
    held-out ones form one query (first image of each) / gallery (the others) split.
    ``arg`` names ``num_ids`` in the error (a recipe passes its flag, e.g. ``"--val-ids"``)."""
    check_instance(ds, ReIDDataset, name="ds")
    check_generator(generator)
    check_text(name, name="name")
    ids = ds.pids.unique()
    check_text(arg, name="arg")
    check_int(num_ids, name=arg, minimum=1, maximum=max(1, ids.numel() - 1))
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
    train = relabel_identities(ds.subset((~is_held).nonzero().squeeze(1), name=ds.name))
    return train, TargetDomain(name=name, splits=[(query, gallery)])


def relabel_identities(ds: ReIDDataset) -> ReIDDataset:
    """``ds`` with contiguous identities ``0..n-1`` and every image in domain 0 (in place)."""
    if not isinstance(ds, ReIDDataset):
        raise ValueRangeError(f"ds: expected a ReIDDataset, got {type(ds).__name__}")
    ds.pids = torch.unique(ds.pids, return_inverse=True)[1]
    ds.domains = torch.zeros_like(ds.pids)
    return ds
