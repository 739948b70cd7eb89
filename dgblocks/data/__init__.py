"""dgblocks.data: datasets, embedded benchmarks, batch samplers and transforms.

- :class:`Benchmark`, :class:`ReIDDataset`, :class:`TargetDomain` (built by
  :func:`dgblocks.protocols.build_benchmark`)
- embedded benchmarks: :func:`synthetic_reid`, :func:`rotated_digits`
- batch samplers (:mod:`dgblocks.data.batch_samplers`): :class:`RandomIdentitySampler`,
  :class:`DomainBalancedSampler`, :class:`DatasetBalancedSampler`
- transforms: :mod:`dgblocks.data.transforms`; the network input: :func:`normalize_input`,
  :func:`image_size`
- real datasets: :mod:`dgblocks.data.datasets`
"""

from dgblocks.data.base import Benchmark, ReIDDataset, TargetDomain, load_image
from dgblocks.data.batch_samplers import (
    DatasetBalancedSampler,
    DomainBalancedSampler,
    RandomIdentitySampler,
)
from dgblocks.data.inputs import image_size, normalize_input
from dgblocks.data.rotated_digits import rotated_digits
from dgblocks.data.synthetic_reid import SyntheticReIDConfig, synthetic_reid, time_period

__all__ = [
    "Benchmark",
    "ReIDDataset",
    "TargetDomain",
    "load_image",
    "normalize_input",
    "image_size",
    "synthetic_reid",
    "SyntheticReIDConfig",
    "time_period",
    "rotated_digits",
    "RandomIdentitySampler",
    "DomainBalancedSampler",
    "DatasetBalancedSampler",
]
