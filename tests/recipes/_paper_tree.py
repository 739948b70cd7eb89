"""A fake data root in the real datasets' layouts, large enough for the paper configs' batches.

``tests/data/fake_trees.py`` writes each dataset's naming with two or three identities; the
paper configs draw P x K batches (CDVM: 32 identities per source domain; ADIN holds 100
MSMT17 identities out for validation), so every source here gets ``ids`` more identities, 2
cameras x 2 images each, and MSMT17 ``msmt_ids``. The Protocol-1 targets are the full fake
trees (``small=0``: VIPeR 632 pairs, PRID 385 / 749, GRID 250 + 775, i-LIDS 119) or
``small`` identities each, which keeps evaluation at 256 x 128 cheap.
"""

from __future__ import annotations

from pathlib import Path

from tests.data import fake_trees as ft

FIRST = 100  # extra identities start here (fake_trees uses ids < 100)


def _sources(root: Path, ids: int, msmt_ids: int) -> None:
    for make in (ft.market, ft.duke, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.msmt17):
        make(root)
    market, duke = root / "Market-1501-v15.09.15", root / "DukeMTMC-reID"
    for pid in range(FIRST, FIRST + ids):
        for cam in (1, 2):
            for k in (1, 2):
                ft.touch(market / "bounding_box_train" / f"{pid:04d}_c{cam}s1_{k:06d}_01.jpg")
                ft.touch(duke / "bounding_box_train" / f"{pid:04d}_c{cam}_f{k:07d}.jpg")
                for variant in ("labeled", "detected"):
                    ft.touch(root / "cuhk03-np" / variant / "bounding_box_train"
                             / f"{pid:04d}_c{cam}_{k}.png")
                ft.touch(root / "cuhk02" / "Dataset" / "P1" / f"cam{cam}"
                         / f"{pid:03d}_{2 * cam + k:03d}.png")
                ft.touch(root / "cuhk_sysu" / "cropped_images" / f"p{pid}_s{2 * cam + k}.jpg")
    ms = root / "MSMT17_V1"
    lines = (ms / "list_train.txt").read_text().splitlines()
    for pid in range(FIRST, FIRST + msmt_ids):
        for k, (cam, t) in enumerate(((1, "morning"), (1, "noon"), (7, "afternoon"),
                                      (7, "morning"))):
            rel = f"{pid:04d}/{pid:04d}_{k:03d}_{cam:02d}_0303{t}_0015_0.jpg"
            ft.touch(ms / "train" / rel)
            lines.append(f"{rel} {pid}")
    (ms / "list_train.txt").write_text("\n".join(lines) + "\n")


def _small_targets(root: Path, n: int) -> None:
    ft.viper(root, n=n)
    prid = root / "prid_2011" / "single_shot"
    for i in [*range(1, n + 1), *range(201, 201 + n)]:  # 201..: gallery-only distractors
        if i <= 200:
            ft.touch(prid / "cam_a" / f"person_{i:04d}.png")
        ft.touch(prid / "cam_b" / f"person_{i:04d}.png")
    grid = root / "underground_reid"
    for i in range(1, n + 1):
        ft.touch(grid / "probe" / f"{i:04d}_1_25004_107_32_106_221.jpeg")
        ft.touch(grid / "gallery" / f"{i:04d}_5_25004_107_32_106_221.jpeg")
    for j in range(n):  # id 0000: distractors
        ft.touch(grid / "gallery" / f"0000_{1 + j % 8}_{j:05d}_1_1_1_1.jpeg")
    for pid in range(1, n + 1):
        for k in (1, 2):
            ft.touch(root / "i-LIDS_Pedestrian" / "Persons" / f"{pid:04d}{k:03d}.jpg")


def paper_tree(root: Path, *, ids: int = 40, msmt_ids: int = 120, small: int = 12) -> Path:
    """Write the sources (M, D, C2, C3, CS, MSMT17), the Protocol-1 targets (``small``
    identities each; 0: the full fake trees) and ADIN's Duke / Market test splits under
    ``root``; returns ``root``."""
    root = Path(root)
    _sources(root, ids, msmt_ids)
    if small:
        _small_targets(root, small)
    else:
        for make in (ft.viper, ft.prid, ft.grid, ft.ilids):
            make(root)
    return root
