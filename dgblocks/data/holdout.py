"""Leave one source out of a multi-source benchmark (the Protocol-2/3 layout, embedded data).

Protocol-2/3 (CDVM, Li et al., 2025, section 4.1 and Table 3) train on all source datasets but
one and test on the held-out one. On an embedded benchmark the held-out source's *training*
identities are dropped and its held-out identities (``source_val``, Protocol-1 shaped, never
trained on) become the target.
"""

from __future__ import annotations

import torch

from dgblocks._checks import ValueRangeError, check_int
from dgblocks.data.base import Benchmark

__all__ = ["hold_out_source"]


def hold_out_source(bench: Benchmark, source: int) -> Benchmark:
    """Train on every source but ``source``; test on ``source``'s held-out identities.

    The remaining sources' domains and identities are relabelled to ``0..D-2`` and
    ``0..num_ids-1`` (order kept), so the result plugs into any recipe like the original.

    Args:
        bench: a benchmark whose ``source_val`` holds one target per source domain.
        source: index of the source domain to hold out.

    Example:
        >>> from dgblocks.data import synthetic_reid
        >>> b = hold_out_source(synthetic_reid(smoke=True), 0)
        >>> b.num_domains, b.domain_names == synthetic_reid(smoke=True).domain_names[1:]
        (1, True)
    """
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
