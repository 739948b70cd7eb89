"""The Protocol-1 target datasets: VIPeR, PRID2011 (single-shot), GRID and i-LIDS.

Each loader returns the 10 test splits of the protocol in ``protocol_splits`` (single-shot
probe/gallery, query camera 0, gallery camera 1), built from the split files shipped in
``dgblocks/data/splits/`` (see ``scripts/make_splits.py``); GRID uses the official partitions
of its own ``features_and_partitions.mat`` when present. ``train`` holds the identities outside
the first split's test set (DG protocols never train on these datasets).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

from dgblocks._checks import check_choice
from dgblocks.data._validate import check_flag
from dgblocks.data.datasets._common import DatasetSplits, Record, find_dir, relabel, scan

__all__ = ["load_viper", "load_prid2011", "load_grid", "load_ilids", "shipped_splits"]

VIPER_TREE = """\
VIPeR/                           (or viper/VIPeR/, viper/)
  cam_a/000_45.bmp               <id>_<angle>.bmp, 632 ids, one image per camera
  cam_b/000_90.bmp
"""
PRID_TREE = """\
prid_2011/single_shot/           (or prid2011/single_shot/, PRID2011/single_shot/)
  cam_a/person_0001.png          385 persons; 1..200 also appear in cam_b
  cam_b/person_0001.png          749 persons; 201..749 are gallery-only distractors
"""
GRID_TREE = """\
underground_reid/                (or GRID/underground_reid/, grid/)
  probe/0001_1_25004_107_32_106_221.jpeg      <id>_<cam>_....jpeg, 250 ids
  gallery/0000_1_25004_107_32_106_221.jpeg    id 0000: the 775 distractors
  features_and_partitions.mat                 optional: official 10 partitions
"""
ILIDS_TREE = """\
i-LIDS_Pedestrian/Persons/       (or ilids/i-LIDS_Pedestrian/Persons/, iLIDS/Persons/)
  0001001.jpg                    <id 4 digits><image 3 digits>.jpg, 119 ids, 476 images
"""


@cache
def shipped_splits(name: str) -> dict:
    """The shipped split file ``dgblocks/data/splits/<name>.json`` as a dict."""
    text = resources.files("dgblocks.data").joinpath("splits", f"{name}.json").read_text()
    return json.loads(text)


def _by_pid(records: list[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = {}
    for r in records:
        out.setdefault(r.pid, []).append(r)
    return out


def _cam(records: list[Record], camid: int) -> list[Record]:
    return [r._replace(camid=camid) for r in records]


def load_viper(root: str | Path) -> DatasetSplits:
    """VIPeR: 316 probes (cam_a) vs 316 gallery images (cam_b) per split."""
    base = find_dir(root, ["VIPeR", "viper/VIPeR", "viper", "."], ("cam_a", "cam_b"),
                    dataset="VIPeR", tree=VIPER_TREE)

    def parse(m, p):
        return Record(str(p), int(m.group(1)), 0, -1)

    a = _by_pid(scan(base / "cam_a", r"^(\d+)_", parse, dataset="VIPeR", tree=VIPER_TREE,
                      within=base))
    b = _by_pid(scan(base / "cam_b", r"^(\d+)_", parse, dataset="VIPeR", tree=VIPER_TREE,
                      within=base))
    ids = sorted(set(a) & set(b))
    splits = []
    for test_pos in shipped_splits("viper")["splits"]:
        test = [ids[i] for i in test_pos if i < len(ids)]
        splits.append((_cam([a[p][0] for p in test], 0), _cam([b[p][0] for p in test], 1)))
    test0 = {ids[i] for i in shipped_splits("viper")["splits"][0] if i < len(ids)}
    train, _ = relabel([r for p in ids if p not in test0 for r in a[p] + _cam(b[p], 1)])
    return DatasetSplits("viper", train, splits[0][0], splits[0][1], splits)


def load_prid2011(root: str | Path) -> DatasetSplits:
    """PRID2011 single-shot: 100 probes (cam_a) vs 649 gallery images (100 + 549, cam_b)."""
    base = find_dir(root, ["prid_2011/single_shot", "prid2011/single_shot",
                           "PRID2011/single_shot", "single_shot"], ("cam_a", "cam_b"),
                    dataset="PRID2011", tree=PRID_TREE)

    def parse(m, p):
        return Record(str(p), int(m.group(1)), 0, -1)

    a = _by_pid(scan(base / "cam_a", r"^person_(\d+)", parse, dataset="PRID2011", tree=PRID_TREE,
                      within=base))
    b = _by_pid(scan(base / "cam_b", r"^person_(\d+)", parse, dataset="PRID2011", tree=PRID_TREE,
                      within=base))
    shared = sorted(set(a) & set(b) & set(range(1, 201)))
    distract = [r for p in sorted(b) if p > 200 for r in b[p]]
    splits = []
    for test in shipped_splits("prid2011")["splits"]:
        test = [p for p in test if p in a and p in b]
        splits.append((_cam([a[p][0] for p in test], 0),
                       _cam([b[p][0] for p in test] + distract, 1)))
    test0 = set(shipped_splits("prid2011")["splits"][0])
    train, _ = relabel([r for p in shared if p not in test0 for r in a[p] + _cam(b[p], 1)])
    return DatasetSplits("prid2011", train, splits[0][0], splits[0][1], splits)


def _grid_official(mat: Path) -> list[list[int]] | None:
    """Test ids of the 10 official partitions (ids 1..250 not in trainIdxAll)."""
    try:
        from scipy.io import loadmat
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        return None
    parts = loadmat(str(mat))["trainIdxAll"][0]
    out = []
    for k in range(len(parts)):
        train = {int(i) for i in parts[k][0][0][2][0].tolist()}
        out.append([i for i in range(1, 251) if i not in train])
    return out


def load_grid(root: str | Path, *, official: bool = True,
              gallery_size: int = 900) -> DatasetSplits:
    """GRID: 125 probes per split vs a gallery of 900 or 1,025 images.

    ``gallery_size=900`` (DDAN, CDVM, after Song et al. 2019): the 125 test identities' gallery
    images + the 775 distractors. ``gallery_size=1025`` (DIR-ReID, Zhang et al. 2022,
    appendix D; the episodic paper's Table II): every gallery image, i.e. also the gallery
    images of the 125 identities held out of the split, which match no probe. Uses the
    official partitions of ``features_and_partitions.mat`` when it is present (and
    ``official``), else the shipped seeded splits.
    """
    check_choice(gallery_size, (900, 1025), name="gallery_size")
    check_flag(official, name="official")
    base = find_dir(root, ["underground_reid", "GRID/underground_reid", "grid/underground_reid",
                           "grid", "."], ("probe", "gallery"), dataset="GRID", tree=GRID_TREE)

    def parse(m, p):
        return Record(str(p), int(m.group(1)), int(m.group(2)) - 1, -1)

    rx = r"^(\d+)_(\d+)_"
    probe = scan(base / "probe", rx, parse, dataset="GRID", tree=GRID_TREE, within=base)
    gallery = scan(base / "gallery", rx, parse, dataset="GRID", tree=GRID_TREE,
                   within=base)
    mat = base / "features_and_partitions.mat"
    tests = _grid_official(mat) if official and mat.exists() else None
    if tests is None:
        tests = shipped_splits("grid")["splits"]
    distract = [r for r in gallery if r.pid == 0]
    splits = []
    for test in tests:
        t = set(test)
        splits.append(([r for r in probe if r.pid in t],
                       [r for r in gallery if r.pid in t or (r.pid and gallery_size == 1025)]
                       + distract))
    t0 = set(tests[0])
    train, _ = relabel([r for r in probe + gallery if r.pid != 0 and r.pid not in t0])
    name = "grid" if gallery_size == 900 else f"grid-{gallery_size}"
    return DatasetSplits(name, train, splits[0][0], splits[0][1], splits)


def load_ilids(root: str | Path) -> DatasetSplits:
    """i-LIDS (QMUL iLIDS-ReID): 60 probes vs 60 gallery images per split, single-shot."""
    base = find_dir(root, ["i-LIDS_Pedestrian/Persons", "ilids/i-LIDS_Pedestrian/Persons",
                           "iLIDS/Persons", "ilids/Persons", "Persons"], (),
                    dataset="i-LIDS", tree=ILIDS_TREE)

    def parse(m, p):
        return Record(str(p), int(m.group(1)), 0, -1)

    by = _by_pid(scan(base, r"^(\d{4})\d{3}\.", parse, dataset="i-LIDS", tree=ILIDS_TREE))
    ids = sorted(by)
    splits = []
    for s in shipped_splits("ilids")["splits"]:
        q, g = [], []
        for pos, qp, gp in zip(s["test"], s["query_pick"], s["gallery_pick"]):
            if pos >= len(ids) or len(by[ids[pos]]) < 2:
                continue
            imgs = by[ids[pos]]
            n = len(imgs)
            qi = qp % n
            gi = (qi + 1 + gp % (n - 1)) % n
            q.append(imgs[qi]._replace(camid=0))
            g.append(imgs[gi]._replace(camid=1))
        splits.append((q, g))
    test0 = {ids[i] for i in shipped_splits("ilids")["splits"][0]["test"] if i < len(ids)}
    train, _ = relabel([r for p in ids if p not in test0 for r in by[p]])
    return DatasetSplits("ilids", train, splits[0][0], splits[0][1], splits)
