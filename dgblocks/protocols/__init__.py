"""dgblocks.protocols: what trains and what is evaluated.

- :func:`build_benchmark` -> :class:`~dgblocks.data.Benchmark`: the one entry point
  (``"synthetic"``, ``"digits"``, or ``"real"`` arranged by a protocol string)
- real datasets (:mod:`dgblocks.protocols.real`): :func:`parse_protocol` /
  :func:`build_protocol` (Protocol-1/2/3, ``direct:<S>-><T>``), :func:`real_direct` (several
  direct-transfer targets), :func:`target_domain`
- embedded benchmarks (:mod:`dgblocks.protocols.embedded`): :func:`leave_one_out` (the
  Protocol-2/3 layout), :func:`single_source` (direct transfer), :func:`hold_out_identities`
  (an identity validation split), :func:`relabel_identities`
- :func:`cameras_as_domains`, :func:`source_domains`, :func:`split_by_domain`
  (:mod:`dgblocks.protocols.cameras`): a single source's cameras as its domains (DIR-ReID
  Table 4), one dataset per domain
- nuisance labels for direct transfer (:mod:`dgblocks.protocols.nuisance`):
  :func:`nuisance_labels` / :func:`nuisance_sizes` (ADIN's heads), :func:`prepare_nuisances`,
  :func:`skew_by` (:func:`skew_fractions`, :func:`kept_per_class`), :func:`time_periods`
"""

from dgblocks.protocols.build import build_benchmark
from dgblocks.protocols.cameras import (
    DOMAIN_LABELS,
    cameras_as_domains,
    source_domains,
    split_by_domain,
)
from dgblocks.protocols.embedded import (
    hold_out_identities,
    leave_one_out,
    relabel_identities,
    single_source,
)
from dgblocks.protocols.nuisance import (
    NUISANCES,
    kept_per_class,
    nuisance_labels,
    nuisance_sizes,
    prepare_nuisances,
    skew_by,
    skew_fractions,
    time_periods,
)
from dgblocks.protocols.real import (
    ProtocolSpec,
    build_protocol,
    parse_protocol,
    real_direct,
    target_domain,
)

__all__ = [
    "build_benchmark",
    "ProtocolSpec",
    "parse_protocol",
    "build_protocol",
    "real_direct",
    "target_domain",
    "leave_one_out",
    "single_source",
    "hold_out_identities",
    "relabel_identities",
    "NUISANCES",
    "nuisance_labels",
    "nuisance_sizes",
    "prepare_nuisances",
    "cameras_as_domains",
    "source_domains",
    "split_by_domain",
    "DOMAIN_LABELS",
    "skew_by",
    "skew_fractions",
    "kept_per_class",
    "time_periods",
]
