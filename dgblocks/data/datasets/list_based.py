"""List- or folder-based training sets: MSMT17, CUHK02, CUHK-SYSU, VehicleID."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from dgblocks._checks import check_choice
from dgblocks.data._validate import check_seed
from dgblocks.data.datasets._common import (
    DatasetSplits,
    LayoutError,
    Record,
    camera,
    find_dir,
    identity,
    relabel,
    scan,
    warn_outside,
)

__all__ = ["load_msmt17", "load_cuhk02", "load_cuhksysu", "load_vehicleid", "MSMT17_PERIODS",
           "VEHICLEID_TEST_SIZES"]

MSMT17_TREE = """\
MSMT17_V1/  (version="v1")          or   MSMT17_V2/  (version="v2")
  train/0000/0000_000_01_0303morning_0015_0.jpg    mask_train_v2/...
  test/0000/0000_000_01_0303morning_0008_0.jpg     mask_test_v2/...
  list_train.txt  list_val.txt  list_query.txt  list_gallery.txt
      lines: "0000/0000_000_01_0303morning_0015_0.jpg 0"
      name: pid_index_<cam 01-15>_<date><morning|noon|afternoon>_<frame>_<n>.jpg
"""
CUHK02_TREE = """\
cuhk02/Dataset/                  (or CUHK02/Dataset/, cuhk02/)
  P1/ P2/ P3/ P4/ P5/            five camera pairs
    cam1/001_010.png             pid_<n>.png (pid shared by cam1 and cam2 of a pair)
    cam2/001_012.png
"""
CUHKSYSU_TREE = """\
cuhk_sysu/cropped_images/        (or CUHK-SYSU/cropped_images/; training only)
  p1_s1.jpg                      p<pid>_s<n>.jpg
"""
VEHICLEID_TREE = """\
VehicleID_V1.0/                  (or VehicleID/)
  image/0000004.jpg
  train_test_split/
    train_list.txt               lines: "<image name without .jpg> <vehicle id>"
    test_list_800.txt  test_list_1600.txt  test_list_2400.txt  test_list_3200.txt
    test_list_6000.txt  test_list_13164.txt
"""
MSMT17_PERIODS = {"morning": 0, "noon": 1, "afternoon": 2}
VEHICLEID_TEST_SIZES = (800, 1600, 2400, 3200, 6000, 13164)  # train_test_split/test_list_*


def load_msmt17(root: str | Path, *, version: str = "v1") -> DatasetSplits:
    """MSMT17 (1,041 train ids incl. ``list_val``; 15 cameras).

    The timestamp is the time period of the file name: 0 morning, 1 noon, 2 afternoon.
    """
    check_choice(version, ("v1", "v2"), name="version")
    v1 = version == "v1"
    train_dir, test_dir = ("train", "test") if v1 else ("mask_train_v2", "mask_test_v2")
    lists = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
    base = find_dir(root, ["MSMT17_V1" if v1 else "MSMT17_V2", "msmt17/MSMT17_V1" if v1 else
                           "msmt17/MSMT17_V2", "."], (train_dir, test_dir, *lists),
                    dataset=f"MSMT17 ({version})", tree=MSMT17_TREE)

    def read(list_name: str, folder: str) -> list[Record]:
        out = []
        for line in (base / list_name).read_text().splitlines():
            if not line.strip():
                continue
            rel, pid = line.split()[:2]
            parts = Path(rel).name.split("_")
            if len(parts) < 5:
                raise LayoutError(f"root: unexpected MSMT17 file name {rel!r} in {list_name}."
                                  f" Expected:\n{MSMT17_TREE}")
            t = re.search(r"(afternoon|morning|noon)$", parts[3])  # "afternoon" before "noon"
            period = MSMT17_PERIODS[t.group(1)] if t else -1
            out.append(Record(str(base / folder / rel), identity(pid, f"{list_name}: {rel}"),
                              camera(parts[2], rel), period))
        return out

    train, _ = relabel(read(lists[0], train_dir) + read(lists[1], train_dir))
    query, gallery = read(lists[2], test_dir), read(lists[3], test_dir)
    warn_outside([r.path for r in train + query + gallery], base, f"msmt17-{version}")
    return DatasetSplits(name=f"msmt17-{version}", train=train, query=query, gallery=gallery)


def load_cuhk02(root: str | Path) -> DatasetSplits:
    """CUHK02 (1,816 ids, five camera pairs; cameras numbered 0..9 as 2*pair + view).

    All images are training images (DG protocols use CUHK02 as a source only).
    """
    base = find_dir(root, ["cuhk02/Dataset", "CUHK02/Dataset", "cuhk02", "Dataset", "."],
                    ("P1/cam1", "P1/cam2"), dataset="CUHK02", tree=CUHK02_TREE)
    records = []
    pairs = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name.startswith("P"))
    for k, pair in enumerate(pairs):
        for view in (0, 1):
            def parse(m, p, k=k, view=view):
                # pid unique across pairs: pair index * 10^5 + id in the pair
                return Record(str(p), k * 100000 + int(m.group(1)), 2 * k + view, -1)

            records += scan(base / pair / f"cam{view + 1}", r"^(\d+)_", parse,
                            dataset="CUHK02", tree=CUHK02_TREE, within=base)
    train, _ = relabel(records)
    return DatasetSplits(name="cuhk02", train=train)


def load_cuhksysu(root: str | Path) -> DatasetSplits:
    """CUHK-SYSU cropped person images (training only; one camera id 0)."""
    base = find_dir(root, ["cuhk_sysu/cropped_images", "CUHK-SYSU/cropped_images",
                           "cuhksysu/cropped_images", "cropped_images"], (),
                    dataset="CUHK-SYSU", tree=CUHKSYSU_TREE)

    def parse(m, p):
        return Record(str(p), int(m.group(1)), 0, -1)

    train, _ = relabel(scan(base, r"^p(\d+)_s\d+", parse, dataset="CUHK-SYSU",
                            tree=CUHKSYSU_TREE))
    return DatasetSplits(name="cuhksysu", train=train)


def load_vehicleid(root: str | Path, *, test_size: int = 800, seed: int = 0) -> DatasetSplits:
    """VehicleID with one of its test lists (``VEHICLEID_TEST_SIZES`` vehicles).

    800/1600/2400 are the small/medium/large sets of Liu et al. (2016); ADIN (Table 4) also
    reports 1600 and 3200; the release ships lists of 6000 and 13164 vehicles too.

    As in the standard protocol, one image per test vehicle is drawn into the gallery (from a
    ``torch.Generator`` seeded with ``seed``) and the rest are queries; the gallery has
    camera 1 and the queries camera 0 (VehicleID has no camera labels).
    """
    check_choice(test_size, VEHICLEID_TEST_SIZES, name="test_size")
    test_list = f"train_test_split/test_list_{test_size}.txt"
    base = find_dir(root, ["VehicleID_V1.0", "VehicleID", "vehicleid", "."],
                    ("image", "train_test_split/train_list.txt", test_list),
                    dataset="VehicleID", tree=VEHICLEID_TREE)

    def read(name: str) -> list[Record]:
        out = []
        for line in (base / name).read_text().splitlines():
            if line.strip():
                img, vid = line.split()[:2]
                out.append(Record(str(base / "image" / f"{img}.jpg"),
                                  identity(vid, f"{name}: {img}"), 0, -1))
        return out

    train, _ = relabel(read("train_test_split/train_list.txt"))
    test = read(test_list)
    warn_outside([r.path for r in train + test], base, "VehicleID")
    gen = torch.Generator().manual_seed(check_seed(seed))
    by_id: dict[int, list[int]] = {}
    for i, r in enumerate(test):
        by_id.setdefault(r.pid, []).append(i)
    gallery_idx = {ix[int(torch.randint(len(ix), (1,), generator=gen))]
                   for _, ix in sorted(by_id.items())}
    gallery = [test[i]._replace(camid=1) for i in sorted(gallery_idx)]
    query = [r for i, r in enumerate(test) if i not in gallery_idx]
    return DatasetSplits(name=f"vehicleid-{test_size}", train=train, query=query,
                         gallery=gallery)
