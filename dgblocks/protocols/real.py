"""The DG evaluation protocols on real datasets, as :class:`~dgblocks.data.Benchmark` objects.

- ``protocol1``: train on M + C2 + C3 + CS (all images), test on PRID, GRID, VIPeR and i-LIDS,
  single-shot, 10 splits each (PRID 100 probes / 649 gallery, GRID 125 / 900 with the 775
  distractors, VIPeR 316 / 316, i-LIDS 60 / 60); report mean (and std) of R-1/5/10 and mAP.
  ``protocol1-ms``: the 5-source variant M + D + C2 + C3 + CS (DualNorm, DIR-ReID).
  ``protocol1-episodic``: M + D + C2 + C3, all images, GRID gallery 1,025 (the episodic
  paper's Section IV-A and Tables I-II).
- Options follow a comma: ``grid_gallery=900|1025`` picks GRID's gallery (900: the 775
  distractors + the 125 test identities, DDAN and CDVM; 1,025: every gallery image, DIR-ReID,
  Zhang et al. 2022, appendix D), e.g. ``"protocol1-ms,grid_gallery=1025"``.
- ``protocol2:<T>`` / ``protocol3:<T>``: leave-one-out among M, MS, CS, C3 with target
  ``T`` in {M, MS, C3} (CS is train-only); protocol 2 trains on the sources' training splits
  only, protocol 3 on all their images (train + query + gallery).
- ``direct:<S>-><T>``: train on the training split of ``S``, test on ``T``'s query/gallery.

Worst-domain accuracy is :func:`dgblocks.eval.worst_domain` over the per-target results.
:func:`real_direct` takes several direct-transfer targets at once (``direct:<S>-><T1>+<T2>``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from dgblocks._checks import ValueRangeError, check_int
from dgblocks.data._validate import check_path, check_text
from dgblocks.data.base import Benchmark, DataError, DataWarning, TargetDomain, check_image_size
from dgblocks.data.check import split_problems, unmatched_queries
from dgblocks.data.datasets import (
    ALIASES,
    DATASETS,
    DatasetSplits,
    compose_sources,
    load_dataset,
    to_dataset,
)

__all__ = ["ProtocolSpec", "PROTOCOL1_SOURCES", "PROTOCOL1_TARGETS", "parse_protocol",
           "build_protocol", "target_domain", "real_direct"]

PROTOCOL1_SOURCES = ("M", "C2", "C3", "CS")
PROTOCOL1_MS_SOURCES = ("M", "D", "C2", "C3", "CS")
PROTOCOL1_EPISODIC_SOURCES = ("M", "D", "C2", "C3")
GRID_GALLERIES = (900, 1025)
PROTOCOL1_TARGETS = ("PRID", "GRID", "VIPeR", "iLIDS")
LEAVE_ONE_OUT_DATASETS = ("M", "MS", "CS", "C3")


@dataclass(frozen=True)
class ProtocolSpec:
    """Which datasets train and test, and whether sources use all their images."""

    name: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    use: str  # "train" or "all"
    grid_gallery: int = 900  # GRID's gallery size as a target: 900 or 1025


def parse_protocol(protocol: str) -> ProtocolSpec:
    """Parse a protocol string into a :class:`ProtocolSpec`.

    Example:
        >>> parse_protocol("protocol2:M").sources
        ('MS', 'CS', 'C3')
        >>> parse_protocol("direct:M->D").targets
        ('D',)
        >>> parse_protocol("protocol1-ms,grid_gallery=1025").grid_gallery
        1025
    """
    check_text(protocol, name="protocol")
    p, *options = (part.strip() for part in protocol.split(","))
    spec = _parse_name(p, protocol)
    for opt in options:
        key, _, value = opt.partition("=")
        if key.strip() != "grid_gallery" or value.strip() not in map(str, GRID_GALLERIES):
            raise ValueRangeError(f"protocol: expected an option grid_gallery=900|1025 after"
                                  f" the comma, got {opt!r} in {protocol!r}")
        spec = replace(spec, name=protocol.strip(), grid_gallery=int(value))
    return spec


def _parse_name(p: str, protocol: str) -> ProtocolSpec:
    if p == "protocol1":
        return ProtocolSpec(p, PROTOCOL1_SOURCES, PROTOCOL1_TARGETS, "all")
    if p == "protocol1-ms":
        return ProtocolSpec(p, PROTOCOL1_MS_SOURCES, PROTOCOL1_TARGETS, "all")
    if p == "protocol1-episodic":
        return ProtocolSpec(p, PROTOCOL1_EPISODIC_SOURCES, PROTOCOL1_TARGETS, "all", 1025)
    if p.startswith(("protocol2:", "protocol3:")):
        head, target = p.split(":", 1)
        if target not in ("M", "MS", "C3"):
            raise ValueRangeError(f"protocol: expected a leave-one-out target in ('M', 'MS', "
                                  f"'C3') (CS is train-only), got {target!r}")
        sources = tuple(s for s in LEAVE_ONE_OUT_DATASETS if s != target)
        return ProtocolSpec(p, sources, (target,), "train" if head == "protocol2" else "all")
    if p.startswith("direct:") and "->" in p:
        src, tgt = (x.strip() for x in p[len("direct:"):].split("->", 1))
        if src and tgt:
            return ProtocolSpec(p, (src,), (tgt,), "train")
    raise ValueRangeError("protocol: expected 'protocol1', 'protocol1-ms', "
                          "'protocol1-episodic', 'protocol2:<T>', 'protocol3:<T>' or "
                          f"'direct:<S>-><T>' (options after a comma), got {protocol!r}")


def target_domain(ds: DatasetSplits, *, domain: int, image_size=None) -> TargetDomain:
    """A :class:`TargetDomain`: the 10 Protocol-1 splits, or the single query/gallery pair.

    Checked before any training: query identities without a gallery image from another
    camera (:func:`dgblocks.data.check.unmatched_queries`) give a
    :class:`~dgblocks.data.base.DataWarning` naming the dataset and the identities; a split
    in which no query has a match raises :class:`~dgblocks.data.base.DataError`.
    """
    if not isinstance(ds, DatasetSplits):
        raise ValueRangeError(f"ds: expected a DatasetSplits (load_dataset),"
                              f" got {type(ds).__name__}")
    check_int(domain, name="domain", minimum=0)
    image_size = check_image_size(image_size, name="image_size")
    pairs = ds.protocol_splits or [(ds.query, ds.gallery)]
    if not pairs[0][0]:
        raise ValueRangeError(f"target: {ds.name} has no test split (training-only dataset)")
    pool = [r for q, g in pairs for r in q + g]
    unique = list(dict.fromkeys(pool))  # one file-backed pool shared by the splits
    where = {r: i for i, r in enumerate(unique)}
    full = to_dataset(unique, domain=domain, name=ds.name, image_size=image_size)
    splits = [(full.subset([where[r] for r in q], name=f"{ds.name}/query"),
               full.subset([where[r] for r in g], name=f"{ds.name}/gallery")) for q, g in pairs]
    target = TargetDomain(name=ds.name, splits=splits)
    for k, (query, gallery) in enumerate(splits):
        if unmatched_queries(query, gallery).numel() == query.pids.unique().numel():
            raise DataError(f"target: no query identity of {ds.name} (split {k + 1}) has a "
                            "gallery image from another camera; nothing can be evaluated")
    for problem in split_problems(target):
        warnings.warn(problem, DataWarning, stacklevel=2)
    return target


def build_protocol(protocol: str, *, root: str | Path, image_size=(256, 128)) -> Benchmark:
    """Load the datasets of ``protocol`` under ``root`` and assemble the Benchmark."""
    spec = parse_protocol(protocol)
    root = check_path(root)
    image_size = check_image_size(image_size, name="image_size")
    for n in spec.sources + spec.targets:
        if ALIASES.get(n, n) not in DATASETS:
            raise ValueRangeError(f"protocol: unknown dataset {n!r}; expected one of"
                                  f" {sorted(ALIASES)} or {sorted(DATASETS)}")
    sources = [load_dataset(s, root) for s in spec.sources]
    train = compose_sources(sources, use=spec.use, image_size=image_size)
    grid = {"gallery_size": spec.grid_gallery}
    targets = [target_domain(load_dataset(t, root, **(grid if ALIASES.get(t, t) == "grid"
                                                      else {})),
                             domain=len(sources) + k, image_size=image_size)
               for k, t in enumerate(spec.targets)]
    return Benchmark(name=spec.name, train=train, num_ids=int(train.pids.max()) + 1,
                     num_domains=len(sources), domain_names=[s.name for s in sources],
                     targets=targets, task="reid",
                     info={"protocol": spec.name, "use": spec.use, "root": str(root),
                           "grid_gallery": spec.grid_gallery})


def real_direct(protocol: str, root: str | Path, *,
                image_size: tuple[int, int] = (256, 128)) -> Benchmark:
    """``direct:<S>-><T1>+<T2>...`` on the real datasets: one source, several targets."""
    if not isinstance(protocol, str) or not protocol.startswith("direct:") or (
            "->" not in protocol):
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
