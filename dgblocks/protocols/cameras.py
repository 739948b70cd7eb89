r"""Cameras as domains: a single source split into its camera views (DIR-ReID Table 4).

A domain-generalisation method that needs several labelled source domains (DIR-ReID's
MDDAN, DDAN's central domain) has nothing to separate when it trains on one dataset.
DIR-ReID (Zhang et al. 2022, Section 4.3, Table 4) then "sees different cameras as different
domains". :func:`cameras_as_domains` relabels the training images of a benchmark so that each
(source domain, camera) pair present is one domain; :func:`source_domains` composes it with
:func:`~dgblocks.protocols.single_source` (the ``--source`` / ``--domains`` switches of a recipe);
:func:`split_by_domain` gives one dataset per domain label (the episodic recipe's per-domain
extractors).
"""

from __future__ import annotations

import dataclasses

import torch

from dgblocks._checks import ShapeError, check_choice, check_int
from dgblocks.data._validate import check_instance
from dgblocks.data.base import Benchmark, ReIDDataset
from dgblocks.protocols.embedded import single_source

__all__ = ["cameras_as_domains", "source_domains", "split_by_domain", "DOMAIN_LABELS"]

DOMAIN_LABELS = ("auto", "dataset", "camera")


def cameras_as_domains(bench: Benchmark) -> Benchmark:
    r"""A copy of ``bench`` whose training domains are its (source domain, camera) pairs.

    $$ d'_i = \operatorname{rank}\big((d_i, c_i)\big) \text{ among the pairs present} $$

    Pairs are numbered in sorted order (domain first, then camera), so camera ids that repeat
    across source datasets stay apart. Domain names become ``"<domain>/cam<c>"``. Images,
    identities, cameras and the evaluation domains are shared with ``bench``, unchanged.

    Args:
        bench: a benchmark with camera ids on its training images.

    Shape:
        bench.train.domains, bench.train.camids: (N,); output train.domains: (N,) in
        ``[0, G')``, G' = number of distinct (domain, camera) pairs.

    Invariants:
        - two images share a new domain iff they share the source domain and the camera
        - ``num_domains`` equals the number of distinct (domain, camera) pairs

    Example:
        >>> from dgblocks.protocols import build_benchmark, single_source
        >>> one, _ = single_source(build_benchmark("synthetic", smoke=True), 0)
        >>> cams = cameras_as_domains(one)
        >>> one.num_domains, cams.num_domains, cams.domain_names[0]
        (1, 3, 'src-mall/cam0')
    """
    if not isinstance(bench, Benchmark):
        raise ShapeError(f"bench: expected a Benchmark, got {type(bench).__name__}")
    train = bench.train
    dom, cam = train.domains.long(), train.camids.long()
    if bool((cam < 0).any()):
        raise ShapeError("bench: expected camera ids >= 0 on every training image, got -1 "
                         "(unknown camera)")
    pairs, new = torch.unique(torch.stack([dom, cam], dim=1), dim=0, return_inverse=True)
    out = train.subset(torch.arange(len(train)), name=train.name)
    out.domains = new
    names = [f"{bench.domain_names[d] if d < len(bench.domain_names) else d}/cam{c}"
             for d, c in pairs.tolist()]
    return dataclasses.replace(bench, train=out, num_domains=len(names), domain_names=names,
                               info={**bench.info, "domains": "camera"})


def source_domains(bench: Benchmark, *, source: int = -1, domains: str = "auto") -> Benchmark:
    """The training sources and their domain labels.

    Args:
        bench: a benchmark (for ``source >= 0``: an embedded one with one held-out set per
            source, see :func:`~dgblocks.protocols.single_source`).
        source: -1 keeps every source; ``N`` trains on source ``N`` alone and evaluates on the
            other sources' held-out sets and the targets.
        domains: ``"dataset"`` keeps one domain per source dataset; ``"camera"`` uses
            :func:`cameras_as_domains`; ``"auto"`` is ``"camera"`` when one source is left
            (a re-ID task), else ``"dataset"``.

    Example:
        >>> from dgblocks.protocols import build_benchmark
        >>> b = build_benchmark("synthetic", smoke=True)
        >>> source_domains(b).num_domains, source_domains(b, source=0).num_domains
        (2, 3)
        >>> source_domains(b, source=0, domains="dataset").domain_names
        ['src-mall']
    """
    check_instance(bench, Benchmark, name="bench")
    check_choice(domains, DOMAIN_LABELS, name="domains")
    check_int(source, name="source", minimum=-1)
    if source >= 0:
        bench = single_source(bench, source)[0]
    if domains == "camera" or (domains == "auto" and bench.num_domains == 1
                               and bench.task == "reid"):
        bench = cameras_as_domains(bench)
    return bench


def split_by_domain(ds: ReIDDataset) -> list[ReIDDataset]:
    """One dataset per domain label ``0 .. max(ds.domains)`` (storage shared with ``ds``).

    Shape:
        ds.domains: (N,); output: ``max + 1`` datasets, entry g holding the images of domain g
        (empty for a label with no image), named ``"<ds.name>:<g>"``.

    Example:
        >>> ds = ReIDDataset(torch.zeros(3, 3, 2, 2, dtype=torch.uint8), pids=[0, 1, 2],
        ...                  camids=[0, 0, 0], domains=[1, 0, 1])
        >>> [len(x) for x in split_by_domain(ds)]
        [1, 2]
    """
    if not isinstance(ds, ReIDDataset):
        raise ShapeError(f"ds: expected a ReIDDataset, got {type(ds).__name__}")
    return [ds.subset(torch.nonzero(ds.domains == d).flatten(), name=f"{ds.name}:{d}")
            for d in range(int(ds.domains.max()) + 1)]
