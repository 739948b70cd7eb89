"""Market-style datasets: one folder per split, identity and camera in the file name.

Market-1501, DukeMTMC-reID, CUHK03 (new protocol, labeled/detected) and VeRi-776.
Training identities are relabelled to ``0..num_ids-1``; query/gallery keep the original ids
(so that queries match gallery items). Cameras become 0-based.
"""

from __future__ import annotations

from pathlib import Path

from dgblocks._checks import check_choice
from dgblocks.data.datasets._common import DatasetSplits, Record, camera, find_dir, relabel, scan

__all__ = ["load_market1501", "load_dukemtmc", "load_cuhk03", "load_veri776"]

MARKET_TREE = """\
Market-1501-v15.09.15/          (or market1501/, Market-1501/)
  bounding_box_train/0002_c1s1_000451_03.jpg   pid_c<cam>s<seq>_<frame>_<box>.jpg
  query/0001_c1s1_001051_00.jpg
  bounding_box_test/-1_c1s1_000401_03.jpg      pid -1: junk (dropped), 0000: distractor
"""
DUKE_TREE = """\
DukeMTMC-reID/                  (or dukemtmc-reid/DukeMTMC-reID/, dukemtmc/)
  bounding_box_train/0001_c2_f0046182.jpg      pid_c<cam>_f<frame>.jpg
  query/0005_c2_f0046985.jpg
  bounding_box_test/0002_c1_f0044158.jpg
"""
CUHK03_TREE = """\
cuhk03-np/                      (CUHK03-NP, Zhong et al. 2017 new protocol)
  labeled/  and  detected/
    bounding_box_train/0001_c1_1.png           pid_c<cam>_<n>.png
    query/0002_c2_3.png
    bounding_box_test/0002_c1_1.png
"""
VERI_TREE = """\
VeRi/                           (or VeRi-776/)
  image_train/0001_c001_00016450_0.jpg         vid_c<cam>_<frame>_<n>.jpg
  image_query/0002_c002_00030600_0.jpg
  image_test/0002_c003_00084280_0.jpg
"""


def _three(base: Path, dirs: tuple[str, str, str], pattern: str, parse, name: str,
           tree: str) -> DatasetSplits:
    train, query, gallery = (scan(base / d, pattern, parse, dataset=name, tree=tree,
                                  within=base) for d in dirs)
    train, _ = relabel(train)
    return DatasetSplits(name=name, train=train, query=query, gallery=gallery)


def load_market1501(root: str | Path) -> DatasetSplits:
    """Market-1501 (751 train ids / 12,936 images; 3,368 queries; 15,913 gallery images).

    Junk images (pid -1) are dropped; distractors (pid 0) stay in the gallery.
    """
    dirs = ("bounding_box_train", "query", "bounding_box_test")
    base = find_dir(root, ["Market-1501-v15.09.15", "market1501", "Market-1501", "."], dirs,
                    dataset="Market-1501", tree=MARKET_TREE)

    def parse(m, p):
        pid, cam = int(m.group(1)), camera(m.group(2), p)
        return None if pid == -1 else Record(str(p), pid, cam, -1)

    return _three(base, dirs, r"^([-\d]+)_c([^_s]+)s\d+_\d+", parse, "market1501", MARKET_TREE)


def load_dukemtmc(root: str | Path) -> DatasetSplits:
    """DukeMTMC-reID (702 train ids; timestamps are the synchronised frame numbers).

    Junk images (pid -1), if any, are dropped as in Market-1501.
    """
    dirs = ("bounding_box_train", "query", "bounding_box_test")
    base = find_dir(root, ["DukeMTMC-reID", "dukemtmc-reid/DukeMTMC-reID", "dukemtmc", "."],
                    dirs, dataset="DukeMTMC-reID", tree=DUKE_TREE)

    def parse(m, p):
        pid = int(m.group(1))
        return None if pid == -1 else Record(str(p), pid, camera(m.group(2), p),
                                             int(m.group(3)))

    return _three(base, dirs, r"^([-\d]+)_c([^_]+)_f(\d+)", parse, "dukemtmc", DUKE_TREE)


def load_cuhk03(root: str | Path, *, variant: str = "labeled") -> DatasetSplits:
    """CUHK03 new protocol (767 train / 700 test ids), ``variant`` labeled or detected."""
    check_choice(variant, ("labeled", "detected"), name="variant")
    dirs = ("bounding_box_train", "query", "bounding_box_test")
    base = find_dir(root, [f"cuhk03-np/{variant}", f"cuhk03/cuhk03-np/{variant}",
                           f"CUHK03-NP/{variant}", variant], dirs,
                    dataset=f"CUHK03-NP ({variant})", tree=CUHK03_TREE)

    def parse(m, p):
        return Record(str(p), int(m.group(1)), camera(m.group(2), p), -1)

    return _three(base, dirs, r"^(\d+)_c([^_]+)_", parse, f"cuhk03-{variant}", CUHK03_TREE)


def load_veri776(root: str | Path) -> DatasetSplits:
    """VeRi-776 vehicles (576 train ids, 20 cameras); timestamps are frame numbers."""
    dirs = ("image_train", "image_query", "image_test")
    base = find_dir(root, ["VeRi", "VeRi-776", "veri", "."], dirs, dataset="VeRi-776",
                    tree=VERI_TREE)

    def parse(m, p):
        return Record(str(p), int(m.group(1)), camera(m.group(2), p), int(m.group(3)))

    return _three(base, dirs, r"^(\d+)_c([^_]+)_(\d+)", parse, "veri776", VERI_TREE)
