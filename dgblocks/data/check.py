"""``--check-data``: scan a dataset up front and list every problem instead of dying on one.

The loaders report off-pattern names and folders named like images as warnings and
unparseable names (``cX``, ``c0``) as :class:`~dgblocks.data.base.DataError`; images are
decoded only when a batch needs them. :func:`check_data` builds the benchmark with the
warnings recorded, then decodes every image file of its training set and targets once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

from dgblocks._checks import DGBlocksError
from dgblocks.data.base import Benchmark, DataError, ReIDDataset, load_image

__all__ = ["check_data"]


def _datasets(bench: Benchmark) -> Iterator[ReIDDataset]:
    yield bench.train
    for target in [*bench.targets, *bench.source_val]:
        for query, gallery in target.splits:
            yield query
            yield gallery


def check_data(build: Callable[[], Benchmark], *, progress: Callable[[str], Any] | None = None
               ) -> list[str]:
    """Every problem of the benchmark ``build()`` returns, one message per problem (empty:
    every name parsed and every image decoded).

    Example:
        >>> from dgblocks.protocols import build_benchmark
        >>> check_data(lambda: build_benchmark(data="synthetic", smoke=True))
        []
    """
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            bench = build()
        except DGBlocksError as err:  # a layout or name error stops that loader
            problems.append(str(err))
            bench = None
    problems += [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    if bench is None:
        return problems
    seen: set[str] = set()
    for ds in _datasets(bench):
        for path in ds.paths or []:
            if path in seen:
                continue
            seen.add(path)
            try:
                load_image(path)
            except DataError as err:
                problems.append(str(err))
            if progress is not None and len(seen) % 1000 == 0:
                progress(f"{len(seen)} images checked")
    return problems
