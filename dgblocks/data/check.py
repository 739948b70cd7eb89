"""``--check-data``: scan a dataset up front and list every problem instead of dying on one.

The loaders report off-pattern names, folders named like images and links leaving the
dataset's folder as warnings, and unparseable names (``cX``, ``c0``, negative identities) as
:class:`~dgblocks.data.base.DataError`; images are decoded only when a batch needs them.
:func:`check_data` builds the benchmark with the warnings recorded, checks that every query
identity has a gallery match (:func:`unmatched_queries`), then decodes every image file of
its training set and targets once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from dgblocks._checks import DGBlocksError
from dgblocks.data.base import Benchmark, DataError, ReIDDataset, TargetDomain, load_image

__all__ = ["check_data", "unmatched_queries", "split_problems"]


def unmatched_queries(query: ReIDDataset, gallery: ReIDDataset) -> Tensor:
    """The query identities (sorted) with no gallery image of the same identity from another
    camera: the queries that CMC/mAP skip (gallery images of the query's identity taken by
    the query's camera are ignored, as in the Market-1501 protocol).

    Shape:
        output: (U,) int64, the distinct unmatched identities.

    Example:
        >>> q = ReIDDataset(torch.zeros(2, 3, 2, 2, dtype=torch.uint8), pids=[1, 2],
        ...                 camids=[0, 0])
        >>> g = ReIDDataset(torch.zeros(2, 3, 2, 2, dtype=torch.uint8), pids=[1, 2],
        ...                 camids=[1, 0])
        >>> unmatched_queries(q, g)
        tensor([2])
    """
    for ds, name in ((query, "query"), (gallery, "gallery")):
        if not isinstance(ds, ReIDDataset):
            raise DataError(f"{name}: expected a ReIDDataset, got {type(ds).__name__}")
    qp, qc, gp, gc = query.pids, query.camids, gallery.pids, gallery.camids
    if len(gallery) == 0 or len(query) == 0:
        return qp.unique()
    c = int(max(int(qc.max()), int(gc.max()))) + 1
    keys = torch.unique(gp * c + gc)  # sorted (identity, camera) pairs of the gallery
    ids, cams = torch.unique_consecutive(torch.div(keys, c, rounding_mode="floor"),
                                         return_counts=True)
    pos = torch.searchsorted(ids, qp).clamp(max=ids.numel() - 1)
    n = torch.where(ids[pos] == qp, cams[pos], 0)  # gallery cameras of the query's identity
    own = torch.isin(qp * c + qc, keys).long()  # ... one of them the query's own camera
    return qp[n - own <= 0].unique()


def split_problems(target: TargetDomain, *, limit: int = 10) -> list[str]:
    """One message per (query, gallery) split of ``target`` with unmatched query identities
    (:func:`unmatched_queries`), naming the dataset and up to ``limit`` identities."""
    out = []
    for k, (query, gallery) in enumerate(target.splits):
        bad = unmatched_queries(query, gallery).tolist()
        if bad:
            shown = ", ".join(map(str, bad[:limit])) + (", ..." if len(bad) > limit else "")
            out.append(f"{target.name}: {len(bad)} of {query.pids.unique().numel()} query "
                       f"identities have no gallery image from another camera (split {k + 1}"
                       f" of {len(target.splits)}): {shown}; evaluation skips their queries")
    return out


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
    if not callable(build):
        raise DataError(f"build: expected a function returning a Benchmark, got "
                        f"{type(build).__name__}")
    if progress is not None and not callable(progress):
        raise DataError(f"progress: expected a callable or None, got {type(progress).__name__}")
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
    if bench.task == "reid":
        for target in [*bench.targets, *bench.source_val]:
            problems += [p for p in split_problems(target) if p not in problems]
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
