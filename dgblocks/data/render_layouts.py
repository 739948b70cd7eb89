"""Where each rendered image goes: the real datasets' trees and file names, for
:mod:`dgblocks.data.render_tree`.

A plan lists every image of one dataset as an :class:`~dgblocks.data.render_plan.Item` (path
under the root, identity, camera, time period) named exactly as the dataset names its files,
so that the loaders of :mod:`dgblocks.data.datasets` read the rendered tree as they read the
real one (the trees are drawn in each loader's docstring).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dgblocks._checks import ValueRangeError, check_choice, check_int
from dgblocks.data._validate import check_seed, check_text
from dgblocks.data.render_plan import REAL_SIZES, Draw, Item, Plan
from dgblocks.data.render_plan import below as _below
from dgblocks.data.render_plan import enough as _enough
from dgblocks.data.render_plan import upto as _upto

__all__ = ["PLANS", "DATASETS", "ALIASES", "plan_dataset", "seed_of"]

Rows = list[tuple[int, int, int, int]]  # (file pid, ident, cam, period)


def _split_sets(d: Draw, size: dict, ncam: int, *, first_pid: int = 1) -> tuple[Rows, ...]:
    """Train / query / gallery rows of a Market-style dataset (one query per camera of a test
    identity, every query camera also in the gallery: each query has a match)."""
    train, query, gallery = [], [], []
    pid = first_pid
    for ident in d.idents(d.ids(size["train"], 4)):
        train += [(pid, ident, c, d.int(3)) for c in d.spread(ncam, d.per(size["train_per_id"],
                                                                          2))]
        pid += 1
    for ident in d.idents(d.ids(size["test"])):
        k = min(ncam, max(2, d.per(size["query"], 2)))
        cams = d.cams(ncam, k)
        query += [(pid, ident, c, d.int(3)) for c in cams]
        g = max(k, d.per(size["gallery"]))
        gallery += [(pid, ident, cams[j % k], d.int(3)) for j in range(g)]
        pid += 1
    return train, query, gallery


def market1501(d: Draw) -> Plan:
    size, plan = REAL_SIZES["market1501"], Plan("market1501", "Market-1501-v15.09.15", 6)
    train, query, gallery = _split_sets(d, size, 6)
    gallery += [(0, i, d.int(6), d.int(3)) for i in d.idents(d.ids(size["distractors"], 1))]
    gallery += [(-1, i, d.int(6), d.int(3)) for i in d.idents(d.ids(size["junk"], 1))]
    for folder, rows in (("bounding_box_train", train), ("query", query),
                         ("bounding_box_test", gallery)):
        for frame, (pid, ident, cam, per) in enumerate(rows):
            name = f"{pid:04d}" if pid >= 0 else str(pid)
            rel = f"{plan.folder}/{folder}/{name}_c{cam + 1}s{1 + d.int(6)}_{frame:06d}_01.jpg"
            plan.items.append(Item(rel, ident, cam, per))
    return plan


def dukemtmc(d: Draw) -> Plan:
    size, plan = REAL_SIZES["dukemtmc"], Plan("dukemtmc", "DukeMTMC-reID", 8)
    train, query, gallery = _split_sets(d, size, 8)
    pid = max(r[0] for r in gallery) + 1
    for ident in d.idents(d.ids(size["gallery_only"], 1)):  # gallery-only identities
        gallery += [(pid, ident, c, d.int(3)) for c in d.spread(8, d.per(
            size["gallery_only_per_id"]))]
        pid += 1
    frame = 0
    for folder, rows in (("bounding_box_train", train), ("query", query),
                         ("bounding_box_test", gallery)):
        for pid, ident, cam, per in rows:  # frame numbers grow with the time period
            frame += 1
            rel = f"{plan.folder}/{folder}/{pid:04d}_c{cam + 1}_f{per * 3_000_000 + frame:07d}.jpg"
            plan.items.append(Item(rel, ident, cam, per))
    return plan


def cuhk03(d: Draw) -> Plan:
    plan = Plan("cuhk03", "cuhk03-np", 2)
    train, query, gallery = _split_sets(d, REAL_SIZES["cuhk03"], 2)
    count: dict[int, int] = {}
    for folder, rows in (("bounding_box_train", train), ("query", query),
                         ("bounding_box_test", gallery)):
        for pid, ident, cam, per in rows:
            count[pid] = count.get(pid, 0) + 1
            name = f"{folder}/{pid:04d}_c{cam + 1}_{count[pid]}.png"
            plan.items.append(Item(f"{plan.folder}/labeled/{name}", ident, cam, per,
                                   twin=f"{plan.folder}/detected/{name}"))
    return plan


MSMT_PERIODS = ("morning", "noon", "afternoon")


def msmt17(d: Draw) -> Plan:
    plan = Plan("msmt17", "MSMT17_V1", 15)
    train, query, gallery = _split_sets(d, REAL_SIZES["msmt17"], 15, first_pid=0)
    first_test = min(r[0] for r in query)
    lists: dict[str, list[str]] = {k: [] for k in ("train", "val", "query", "gallery")}
    count: dict[int, int] = {}
    for key, folder, rows in (("train", "train", train), ("query", "test", query),
                              ("gallery", "test", gallery)):
        for pid, ident, cam, per in rows:
            local = pid if folder == "train" else pid - first_test  # test ids count from 0
            count[pid] = count.get(pid, 0) + 1
            rel = (f"{local:04d}/{local:04d}_{count[pid] - 1:03d}_{cam + 1:02d}_0303"
                   f"{MSMT_PERIODS[per]}_{d.int(10000):04d}_{d.int(3)}.jpg")
            plan.items.append(Item(f"{plan.folder}/{folder}/{rel}", ident, cam, per))
            to = "val" if key == "train" and count[pid] == 2 else key  # list_val: 2nd images
            lists[to].append(f"{rel} {local}")
    plan.texts = {f"{plan.folder}/list_{k}.txt": "\n".join(v) + "\n" for k, v in lists.items()}
    return plan


def cuhk02(d: Draw) -> Plan:
    size, plan = REAL_SIZES["cuhk02"], Plan("cuhk02", "cuhk02", 10)
    k = 0
    for pair in range(5):
        for pid, ident in enumerate(d.idents(d.ids(size[f"P{pair + 1}"], 2)), start=1):
            for view in (0, 1):
                for _ in range(d.per(size["per_view"])):
                    k += 1
                    rel = f"{plan.folder}/Dataset/P{pair + 1}/cam{view + 1}/{pid:03d}_{k:03d}.png"
                    plan.items.append(Item(rel, ident, 2 * pair + view, d.int(3)))
    return plan


def cuhksysu(d: Draw) -> Plan:
    size, plan = REAL_SIZES["cuhksysu"], Plan("cuhksysu", "cuhk_sysu", 4)
    scene = 0
    for pid, ident in enumerate(d.idents(d.ids(size["ids"], 4)), start=1):
        for cam in d.spread(4, d.per(size["per_id"], 2)):  # scenes shot by many cameras
            scene += 1
            plan.items.append(Item(f"{plan.folder}/cropped_images/p{pid}_s{scene}.jpg", ident,
                                   cam, d.int(3)))
    return plan


def prid2011(d: Draw) -> Plan:
    size, plan = REAL_SIZES["prid2011"], Plan("prid2011", "prid_2011", 2)
    shared = _enough("prid2011", _upto, d.ids(size["shared"]), 200)
    base = f"{plan.folder}/single_shot"
    for pid, ident in enumerate(d.idents(shared), start=1):
        for cam in (0, 1):
            plan.items.append(Item(f"{base}/cam_{'ab'[cam]}/person_{pid:04d}.png", ident, cam,
                                   d.int(3)))
    for cam, key in ((0, "a_only"), (1, "b_only")):  # persons seen by one camera only
        for pid, ident in enumerate(d.idents(d.ids(size[key], 1)), start=201):
            plan.items.append(Item(f"{base}/cam_{'ab'[cam]}/person_{pid:04d}.png", ident, cam,
                                   d.int(3)))
    return plan


def grid(d: Draw) -> Plan:
    size, plan = REAL_SIZES["grid"], Plan("grid", "underground_reid", 8)
    n = _enough("grid", _upto, d.ids(size["ids"]), 250)
    frame = 0
    for pid, ident in enumerate(d.idents(n), start=1):
        for folder, cam in zip(("probe", "gallery"), d.cams(8, 2)):
            frame += 1
            rel = f"{plan.folder}/{folder}/{pid:04d}_{cam + 1}_{frame:05d}_10_20_64_128.jpeg"
            plan.items.append(Item(rel, ident, cam, d.int(3)))
    for ident in d.idents(d.ids(size["distractors"], 2)):
        frame, cam = frame + 1, d.int(8)
        rel = f"{plan.folder}/gallery/0000_{cam + 1}_{frame:05d}_10_20_64_128.jpeg"
        plan.items.append(Item(rel, ident, cam, d.int(3)))
    return plan


def viper(d: Draw) -> Plan:
    plan = Plan("viper", "VIPeR", 2)
    n = _enough("viper", _below, d.ids(REAL_SIZES["viper"]["ids"]), 632)
    for pid, ident in enumerate(d.idents(n)):
        for cam in (0, 1):
            angle = (0, 45, 90, 135, 180)[d.int(5)]
            plan.items.append(Item(f"{plan.folder}/cam_{'ab'[cam]}/{pid:03d}_{angle}.bmp", ident,
                                   cam, d.int(3)))
    return plan


def ilids(d: Draw) -> Plan:
    size, plan = REAL_SIZES["ilids"], Plan("ilids", "i-LIDS_Pedestrian", 3)
    n = _enough("ilids", lambda n, s: _below(n, s["test"]), d.ids(size["ids"]), 119)
    for pid, ident in enumerate(d.idents(n), start=1):
        for k, cam in enumerate(d.spread(3, d.per(size["per_id"], 2), 2), start=1):
            plan.items.append(Item(f"{plan.folder}/Persons/{pid:04d}{k:03d}.jpg", ident, cam,
                                   d.int(3)))
    return plan


PLANS: dict[str, Callable[[Draw], Plan]] = {
    "market1501": market1501, "dukemtmc": dukemtmc, "msmt17": msmt17, "cuhk03": cuhk03,
    "cuhk02": cuhk02, "cuhksysu": cuhksysu, "prid2011": prid2011, "grid": grid,
    "viper": viper, "ilids": ilids,
}


DATASETS = tuple(PLANS)
ALIASES = {"M": "market1501", "D": "dukemtmc", "MS": "msmt17", "C3": "cuhk03", "C2": "cuhk02",
           "CS": "cuhksysu", "PRID": "prid2011", "GRID": "grid", "VIPeR": "viper",
           "iLIDS": "ilids"}


def seed_of(*parts: Any) -> int:
    """A 32-bit seed from ``parts`` (stable across runs: a CRC, not Python's hash)."""
    return zlib.crc32(":".join(map(str, parts)).encode())


def plan_dataset(name: str, *, scale: float = 1.0, per_id: int | None = None, seed: int = 0,
                 image_format: str = "native") -> Plan:
    """The images of dataset ``name`` (a key of :data:`DATASETS` or a short name: M, D, MS,
    C3, C2, CS, PRID, GRID, VIPeR, iLIDS) as :func:`render_tree` writes them.

    Example:
        >>> plan = plan_dataset("M", scale=0.001, per_id=2)
        >>> plan.folder, plan.items[0].rel.split("/")[1], len(plan.items)
        ('Market-1501-v15.09.15', 'bounding_box_train', 23)
    """
    name = ALIASES.get(check_text(name, name="datasets"), name)
    check_choice(name, DATASETS, name="datasets")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 100:
        raise ValueRangeError(f"scale: expected a number in (0, 100], got {scale!r}")
    if per_id is not None:
        check_int(per_id, name="per_id", minimum=1)
    check_seed(seed)
    check_choice(image_format, ("native", "jpeg"), name="image_format")
    plan = PLANS[name](Draw(float(scale), per_id, torch.Generator().manual_seed(
        seed_of(seed, name, "layout"))))
    if image_format == "jpeg":
        plan.items = [it._replace(rel=_jpg(it.rel), twin=it.twin and _jpg(it.twin))
                      for it in plan.items]
    return plan


def _jpg(rel: str) -> str:
    return str(Path(rel).with_suffix(".jpg"))
