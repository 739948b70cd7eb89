"""dgblocks.data: datasets, embedded benchmarks, samplers and transforms.

- :func:`build_benchmark` -> :class:`Benchmark` (``"synthetic"``, ``"digits"``, ``"real"``)
- :class:`ReIDDataset`, :class:`TargetDomain`
- samplers: :class:`RandomIdentitySampler`, :class:`DomainBalancedSampler`,
  :class:`DatasetBalancedSampler`, :class:`MetaDomainSplitter`
- transforms: :mod:`dgblocks.data.transforms`
- real datasets: :mod:`dgblocks.data.datasets`
"""

from dgblocks.data.base import Benchmark, ReIDDataset, TargetDomain, load_image
from dgblocks.data.benchmark import build_benchmark
from dgblocks.data.meta_split import MetaDomainSplitter
from dgblocks.data.rotated_digits import rotated_digits
from dgblocks.data.samplers import (
    DatasetBalancedSampler,
    DomainBalancedSampler,
    RandomIdentitySampler,
)
from dgblocks.data.synthetic_reid import SyntheticReIDConfig, synthetic_reid, time_period

__all__ = [
    "Benchmark",
    "ReIDDataset",
    "TargetDomain",
    "load_image",
    "build_benchmark",
    "synthetic_reid",
    "SyntheticReIDConfig",
    "time_period",
    "rotated_digits",
    "RandomIdentitySampler",
    "DomainBalancedSampler",
    "DatasetBalancedSampler",
    "MetaDomainSplitter",
]
