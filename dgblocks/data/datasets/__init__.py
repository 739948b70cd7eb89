"""Real dataset loaders (standard folder layouts) and multi-source composition.

``load_dataset(name, root)`` returns a :class:`DatasetSplits` (lists of
:class:`Record` ``(path, pid, camid, timestamp)``); :func:`compose_sources` merges several
into one :class:`~dgblocks.data.ReIDDataset` with one global identity range (disjoint per
source) and the domain index of each image; :func:`to_dataset` turns a record list into a
file-backed dataset. A missing folder or a wrong layout raises :class:`LayoutError` (a
``ValueError`` and ``FileNotFoundError``) whose message shows the expected tree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from dgblocks._checks import ValueRangeError, check_choice, check_int
from dgblocks.data._validate import check_path, check_text
from dgblocks.data.base import ReIDDataset
from dgblocks.data.datasets._common import DatasetSplits, LayoutError, Record, relabel
from dgblocks.data.datasets.list_based import (
    VEHICLEID_TEST_SIZES,
    load_cuhk02,
    load_cuhksysu,
    load_msmt17,
    load_vehicleid,
)
from dgblocks.data.datasets.market import (
    load_cuhk03,
    load_dukemtmc,
    load_market1501,
    load_veri776,
)
from dgblocks.data.datasets.protocol1_targets import (
    load_grid,
    load_ilids,
    load_prid2011,
    load_viper,
    shipped_splits,
)

__all__ = [
    "Record", "DatasetSplits", "LayoutError", "DATASETS", "ALIASES", "load_dataset",
    "compose_sources", "to_dataset", "shipped_splits",
    "load_market1501", "load_dukemtmc", "load_cuhk03", "load_veri776", "load_msmt17",
    "load_cuhk02", "load_cuhksysu", "load_vehicleid", "load_viper", "load_prid2011",
    "load_grid", "load_ilids",
]

DATASETS: dict[str, Callable[..., DatasetSplits]] = {
    "market1501": load_market1501,
    "dukemtmc": load_dukemtmc,
    "cuhk03": load_cuhk03,
    "cuhk03-labeled": lambda root: load_cuhk03(root, variant="labeled"),
    "cuhk03-detected": lambda root: load_cuhk03(root, variant="detected"),
    "cuhk02": load_cuhk02,
    "cuhksysu": load_cuhksysu,
    "msmt17": load_msmt17,
    "msmt17-v2": lambda root: load_msmt17(root, version="v2"),
    "viper": load_viper,
    "prid2011": load_prid2011,
    "grid": load_grid,
    "ilids": load_ilids,
    "veri776": load_veri776,
    "vehicleid": load_vehicleid,
    # the per-paper variants: GRID's 1,025-image gallery, VehicleID's test lists
    "grid-1025": partial(load_grid, gallery_size=1025),
    **{f"vehicleid-{n}": partial(load_vehicleid, test_size=n) for n in VEHICLEID_TEST_SIZES},
}
# the short names of the DG papers' tables
ALIASES = {"M": "market1501", "D": "dukemtmc", "C2": "cuhk02", "C3": "cuhk03",
           "CS": "cuhksysu", "MS": "msmt17", "PRID": "prid2011", "GRID": "grid",
           "VIPeR": "viper", "iLIDS": "ilids"}


def load_dataset(name: str, root: str | Path, **kwargs) -> DatasetSplits:
    """Load dataset ``name`` (a key of :data:`DATASETS` or a short name of :data:`ALIASES`)."""
    name = ALIASES.get(check_text(name, name="name"), name)
    check_choice(name, tuple(DATASETS), name="name")
    return DATASETS[name](check_path(root), **kwargs)


def to_dataset(records: Sequence[Record], *, domain: int = 0, name: str = "",
               image_size: tuple[int, int] | None = None, transform=None) -> ReIDDataset:
    """A file-backed :class:`ReIDDataset` of ``records`` (all in domain ``domain``)."""
    check_int(domain, name="domain", minimum=0)
    if not isinstance(records, (list, tuple)) or not all(isinstance(r, Record) for r in records):
        raise ValueRangeError("records: expected a list of Record (path, pid, camid, "
                              f"timestamp), got {type(records).__name__}")
    return ReIDDataset(paths=[r.path for r in records], pids=[r.pid for r in records],
                       camids=[r.camid for r in records], domains=[domain] * len(records),
                       timestamps=[r.timestamp for r in records], image_size=image_size,
                       transform=transform, name=name)


def compose_sources(sources: Sequence[DatasetSplits], *, use: str = "train",
                    image_size: tuple[int, int] | None = None,
                    transform=None) -> ReIDDataset:
    """Merge sources into one training set: global pids (disjoint per source), domain index.

    Args:
        sources: loaded datasets, in domain order (domain ``k`` = ``sources[k]``).
        use: ``"train"`` (train split only, Protocol-2) or ``"all"`` (train + query + gallery,
            Protocol-3 / "all images"; distractor pid 0 of Market/Duke is dropped then).
        image_size: ``(H, W)`` to decode images at.
    """
    check_choice(use, ("train", "all"), name="use")
    if not isinstance(sources, (list, tuple)) or not sources or not all(
            isinstance(s, DatasetSplits) for s in sources):
        raise ValueRangeError("sources: expected a non-empty list of DatasetSplits "
                              f"(load_dataset), got {type(sources).__name__}")
    records: list[Record] = []
    domains: list[int] = []
    offset = 0
    for k, src in enumerate(sources):
        rs = list(src.train)
        if use == "all":
            # test ids are distinct from train ids in every standard split; keep them apart
            test = [r._replace(pid=r.pid + 10**7) for r in src.query + src.gallery if r.pid > 0]
            rs = rs + test
        rs, mapping = relabel(rs, offset)
        offset += len(mapping)
        records += rs
        domains += [k] * len(rs)
    ds = to_dataset(records, image_size=image_size, transform=transform,
                    name="+".join(s.name for s in sources))
    ds.domains = ds.domains.new_tensor(domains)
    return ds
