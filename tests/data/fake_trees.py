"""Tiny fake dataset trees with each dataset's real naming scheme (for the loader tests)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

_buf = io.BytesIO()
Image.new("RGB", (4, 8), (120, 30, 200)).save(_buf, format="PNG")
PNG = _buf.getvalue()  # the same tiny image for every file; PIL reads it whatever the suffix


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PNG)


def market(root: Path) -> None:
    b = root / "Market-1501-v15.09.15"
    for pid in (2, 7, 9):
        for cam in (1, 2):
            touch(b / "bounding_box_train" / f"{pid:04d}_c{cam}s1_000451_03.jpg")
    touch(b / "query" / "0001_c1s1_001051_00.jpg")
    touch(b / "query" / "0003_c2s1_001051_00.jpg")
    for name in ("0001_c2s1_000301_01.jpg", "0003_c1s2_000301_01.jpg",
                 "0000_c3s1_000001_01.jpg", "-1_c1s1_000401_03.jpg", "-1_c4s1_000402_03.jpg"):
        touch(b / "bounding_box_test" / name)
    (b / "bounding_box_test" / "Thumbs.db").write_text("x")


def duke(root: Path) -> None:
    b = root / "DukeMTMC-reID"
    for pid, cam, f in ((1, 2, 46182), (1, 8, 47000), (5, 3, 1234)):
        touch(b / "bounding_box_train" / f"{pid:04d}_c{cam}_f{f:07d}.jpg")
    touch(b / "query" / "0005_c2_f0046985.jpg")
    touch(b / "bounding_box_test" / "0005_c1_f0044158.jpg")


def cuhk03(root: Path) -> None:
    for variant in ("labeled", "detected"):
        b = root / "cuhk03-np" / variant
        for pid in (1, 3):
            for cam in (1, 2):
                touch(b / "bounding_box_train" / f"{pid:04d}_c{cam}_{cam}.png")
        touch(b / "query" / "0002_c2_3.png")
        touch(b / "bounding_box_test" / "0002_c1_1.png")


def cuhk02(root: Path) -> None:
    b = root / "cuhk02" / "Dataset"
    for pair in ("P1", "P2"):
        for cam in ("cam1", "cam2"):
            for pid in (1, 2):
                touch(b / pair / cam / f"{pid:03d}_{1 if cam == 'cam1' else 3:03d}.png")


def cuhksysu(root: Path) -> None:
    for pid, s in ((1, 1), (1, 5), (22, 3)):
        touch(root / "cuhk_sysu" / "cropped_images" / f"p{pid}_s{s}.jpg")


def msmt17(root: Path, version: str = "v1") -> None:
    b = root / ("MSMT17_V1" if version == "v1" else "MSMT17_V2")
    tr, te = ("train", "test") if version == "v1" else ("mask_train_v2", "mask_test_v2")
    lines = {"list_train.txt": [], "list_val.txt": [], "list_query.txt": [],
             "list_gallery.txt": []}
    for pid, cam, t in ((0, 1, "morning"), (0, 15, "noon"), (4, 3, "afternoon")):
        rel = f"{pid:04d}/{pid:04d}_000_{cam:02d}_0303{t}_0015_0.jpg"
        touch(b / tr / rel)
        lines["list_train.txt"].append(f"{rel} {pid}")
    rel = "0009/0009_001_02_0113noon_0020_1.jpg"
    touch(b / tr / rel)
    lines["list_val.txt"].append(f"{rel} 9")
    for lst, pid, cam in (("list_query.txt", 0, 4), ("list_gallery.txt", 0, 5)):
        rel = f"{pid:04d}/{pid:04d}_002_{cam:02d}_0303morning_0008_0.jpg"
        touch(b / te / rel)
        lines[lst].append(f"{rel} {pid}")
    for name, ls in lines.items():
        (b / name).write_text("\n".join(ls) + "\n")


def viper(root: Path, n: int = 632) -> None:
    for i in range(n):
        touch(root / "VIPeR" / "cam_a" / f"{i:03d}_45.bmp")
        touch(root / "VIPeR" / "cam_b" / f"{i:03d}_90.bmp")


def prid(root: Path) -> None:
    b = root / "prid_2011" / "single_shot"
    for i in range(1, 386):
        touch(b / "cam_a" / f"person_{i:04d}.png")
    for i in range(1, 750):
        touch(b / "cam_b" / f"person_{i:04d}.png")


def grid(root: Path, mat: bool = False) -> None:
    b = root / "underground_reid"
    for i in range(1, 251):
        touch(b / "probe" / f"{i:04d}_1_25004_107_32_106_221.jpeg")
        touch(b / "gallery" / f"{i:04d}_5_25004_107_32_106_221.jpeg")
    for j in range(775):
        touch(b / "gallery" / f"0000_{1 + j % 8}_{j:05d}_1_1_1_1.jpeg")
    if mat:
        import numpy as np
        from scipy.io import savemat

        cells = np.empty((1, 10), dtype=object)
        for k in range(10):
            train = np.arange(1, 126) + k  # train ids k+1..k+125
            cells[0, k] = {"a": np.zeros(1), "b": np.zeros(1), "trainIdx": train.reshape(1, -1)}
        savemat(str(b / "features_and_partitions.mat"), {"trainIdxAll": cells})


def ilids(root: Path) -> None:
    b = root / "i-LIDS_Pedestrian" / "Persons"
    for pid in range(1, 120):
        for k in range(1, 3 + pid % 4):  # 2..5 images per identity
            touch(b / f"{pid:04d}{k:03d}.jpg")


def veri(root: Path) -> None:
    b = root / "VeRi"
    for vid, cam, f in ((1, 1, 16450), (1, 2, 16460), (3, 20, 5)):
        touch(b / "image_train" / f"{vid:04d}_c{cam:03d}_{f:08d}_0.jpg")
    touch(b / "image_query" / "0002_c002_00030600_0.jpg")
    touch(b / "image_test" / "0002_c003_00084280_0.jpg")


def vehicleid(root: Path) -> None:
    b = root / "VehicleID_V1.0"
    train = [("0000004", 1), ("0000005", 1), ("0000010", 7)]
    test = [(f"{100 + i:07d}", 20 + i // 3) for i in range(9)]
    for img, _ in train + test:
        touch(b / "image" / f"{img}.jpg")
    (b / "train_test_split").mkdir(parents=True)
    (b / "train_test_split" / "train_list.txt").write_text(
        "\n".join(f"{i} {v}" for i, v in train))
    for size in (800, 1600, 2400, 3200, 6000, 13164):
        (b / "train_test_split" / f"test_list_{size}.txt").write_text(
            "\n".join(f"{i} {v}" for i, v in test))
