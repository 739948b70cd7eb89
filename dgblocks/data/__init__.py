"""dgblocks.data: datasets, embedded benchmarks, batch samplers and transforms.

- :class:`Benchmark`, :class:`ReIDDataset`, :class:`TargetDomain` (built by
  :func:`dgblocks.protocols.build_benchmark`)
- embedded benchmarks: :func:`synthetic_reid`, :func:`rotated_digits`
- batch samplers (:mod:`dgblocks.data.batch_samplers`): :class:`RandomIdentitySampler`,
  :class:`DomainBalancedSampler`, :class:`DatasetBalancedSampler`
- transforms: :mod:`dgblocks.data.transforms`
- real datasets: :mod:`dgblocks.data.datasets`
"""

from dgblocks.data.base import Benchmark, ReIDDataset, TargetDomain, load_image
from dgblocks.data.batch_samplers import (
    DatasetBalancedSampler,
    DomainBalancedSampler,
    RandomIdentitySampler,
)
from dgblocks.data.rotated_digits import rotated_digits
from dgblocks.data.synthetic_reid import SyntheticReIDConfig, synthetic_reid, time_period

__all__ = [
    "Benchmark",
    "ReIDDataset",
    "TargetDomain",
    "load_image",
    "synthetic_reid",
    "SyntheticReIDConfig",
    "time_period",
    "rotated_digits",
    "RandomIdentitySampler",
    "DomainBalancedSampler",
    "DatasetBalancedSampler",
]
