"""Data safety (issue #27): decompression bombs, unbounded sizes, negative identities, queries
without a gallery match, links leaving a dataset's folder, fractional or negative labels.
Each test failed on the code before the fix (the ``Before:`` line says how)."""

from __future__ import annotations

import struct
import warnings
import zlib

import pytest
import torch

from dgblocks import ValueRangeError
from dgblocks.data import ReIDDataset, load_image
from dgblocks.data.base import DataError, DataWarning
from dgblocks.data.check import check_data, unmatched_queries
from dgblocks.data.datasets import load_dukemtmc, load_market1501, load_msmt17, to_dataset
from dgblocks.protocols import build_benchmark, target_domain
from tests.data import fake_trees as ft

TRAIN = "Market-1501-v15.09.15/bounding_box_train"
TEST = "Market-1501-v15.09.15/bounding_box_test"


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width x height`` pixels (its data is empty: never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


# (a) ------------------------------------------------------------------------------------
def test_decompression_bomb_is_a_data_error_naming_the_file(tmp_path):
    """Before: PIL's DecompressionBombError (not a ValueError) escaped uncaught."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(14_000, 14_000))
    with pytest.raises(DataError, match="bomb.png.*DecompressionBomb"):
        load_image(str(bomb))


def test_pixel_limit_is_read_from_the_header(tmp_path):
    """Before: a 25-megapixel image was decoded (here: failed later, without the reason)."""
    big = tmp_path / "big.png"
    big.write_bytes(png_header(5_000, 5_000))
    with pytest.raises(DataError, match=r"big.png.*5000 x 5000 pixels.*4096 x 4096"):
        load_image(str(big))


def test_bomb_in_a_training_folder_and_in_check_data(tmp_path):
    ft.market(tmp_path)
    ft.duke(tmp_path)
    bad = tmp_path / TRAIN / "0002_c1s1_000451_03.jpg"
    bad.write_bytes(png_header(14_000, 14_000))
    ds = to_dataset(load_market1501(tmp_path).train)
    with pytest.raises(DataError, match="0002_c1s1_000451_03.jpg"):
        ds[ds.paths.index(str(bad))]
    problems = check_data(lambda: build_benchmark("real", root=tmp_path,
                                                  protocol="direct:M->D"))
    assert len(problems) == 1 and "0002_c1s1_000451_03.jpg" in problems[0]


# (b) ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(10**6, 10**6), (0, 4), (4.5, 2), (8,), "64x32"])
def test_sizes_are_bounded_before_anything_is_allocated(tmp_path, size):
    """Before: load_image(size=(10**6, 10**6)) asked Pillow for 3 TB."""
    ft.touch(tmp_path / "x.png")
    with pytest.raises(ValueRangeError, match="size"):
        load_image(str(tmp_path / "x.png"), size=size)
    with pytest.raises(ValueRangeError, match="image_size"):
        ReIDDataset(paths=["x.png"], pids=[0], camids=[0], image_size=size)
    assert load_image(str(tmp_path / "x.png"), size=(6, 3)).shape == (3, 6, 3)


# (c) ------------------------------------------------------------------------------------
def test_negative_identity_other_than_junk_names_the_file(tmp_path):
    """Before: '-2_c1s1_...' became identity -2."""
    ft.market(tmp_path)
    ft.touch(tmp_path / TEST / "-2_c1s1_000401_03.jpg")
    with pytest.raises(DataError, match=r"-2_c1s1_000401_03.jpg.*identity -2 is negative"):
        load_market1501(tmp_path)


def test_duke_junk_is_dropped_and_other_negatives_refused(tmp_path):
    """Before: Duke's '-1_c...' became identity -1 in the gallery."""
    ft.duke(tmp_path)
    ft.touch(tmp_path / "DukeMTMC-reID/bounding_box_test/-1_c3_f0000001.jpg")
    assert all(r.pid >= 0 for r in load_dukemtmc(tmp_path).gallery)
    ft.touch(tmp_path / "DukeMTMC-reID/bounding_box_test/-7_c3_f0000002.jpg")
    with pytest.raises(DataError, match="-7_c3_f0000002.jpg"):
        load_dukemtmc(tmp_path)


def test_negative_identity_in_an_msmt17_list_names_the_list(tmp_path):
    ft.msmt17(tmp_path)
    lst = tmp_path / "MSMT17_V1" / "list_gallery.txt"
    lst.write_text(lst.read_text().replace(" 0\n", " -3\n"))
    with pytest.raises(DataError, match="list_gallery.txt.*identity -3"):
        load_msmt17(tmp_path)


# (d) ------------------------------------------------------------------------------------
def test_query_identity_missing_from_the_gallery_is_reported_before_training(tmp_path):
    """Before: found only by the evaluation after training (a skipped query)."""
    ft.market(tmp_path)
    (tmp_path / TEST / "0003_c1s2_000301_01.jpg").unlink()  # identity 3's only gallery image
    with pytest.warns(DataWarning, match=r"market1501: 1 of 2 query identities .*: 3;"):
        target = target_domain(load_market1501(tmp_path), domain=0)
    assert unmatched_queries(*target.splits[0]).tolist() == [3]
    ft.duke(tmp_path)
    problems = check_data(lambda: build_benchmark("real", root=tmp_path,
                                                  protocol="direct:D->M"))
    assert len(problems) == 1 and "market1501" in problems[0] and ": 3;" in problems[0]


def test_no_query_with_a_match_is_an_error(tmp_path):
    ft.market(tmp_path)
    for name in ("0001_c2s1_000301_01.jpg", "0003_c1s2_000301_01.jpg"):
        (tmp_path / TEST / name).unlink()
    with pytest.raises(DataError, match="no query identity of market1501"):
        target_domain(load_market1501(tmp_path), domain=0)


def test_same_camera_gallery_images_are_no_match():
    q = ReIDDataset(torch.zeros(3, 3, 2, 2, dtype=torch.uint8), pids=[1, 2, 3], camids=[0, 1, 0])
    g = ReIDDataset(torch.zeros(3, 3, 2, 2, dtype=torch.uint8), pids=[1, 2, 3], camids=[0, 0, 1])
    assert unmatched_queries(q, g).tolist() == [1]  # 2 and 3 match from another camera
    assert unmatched_queries(q, q.subset([])).tolist() == [1, 2, 3]


# (e) ------------------------------------------------------------------------------------
def test_link_to_an_image_outside_the_dataset_is_reported(tmp_path):
    """Before: used silently. A warning, not an error: linked trees are legitimate (see
    dgblocks.data.datasets._common.warn_outside); --check-data lists it as a problem."""
    ft.market(tmp_path / "root")
    ft.duke(tmp_path / "root")
    elsewhere = tmp_path / "elsewhere" / "secret.jpg"
    ft.touch(elsewhere)
    link = tmp_path / "root" / TRAIN / "0011_c1s1_000451_03.jpg"
    link.symlink_to(elsewhere)
    inside = tmp_path / "root" / TRAIN / "0012_c2s1_000452_03.jpg"
    inside.symlink_to(tmp_path / "root" / TRAIN / "0002_c1s1_000451_03.jpg")  # stays inside
    with pytest.warns(DataWarning, match=r"market1501: 1 image\(s\) are links .*"
                                         r"0011_c1s1_000451_03.jpg -> .*secret.jpg"):
        splits = load_market1501(tmp_path / "root")
    assert str(link) in [r.path for r in splits.train]
    problems = check_data(lambda: build_benchmark("real", root=tmp_path / "root",
                                                  protocol="direct:M->D"))
    assert len(problems) == 1 and "secret.jpg" in problems[0]


def test_a_linked_dataset_folder_is_fine(tmp_path):
    ft.market(tmp_path / "store")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "Market-1501-v15.09.15").symlink_to(
        tmp_path / "store" / "Market-1501-v15.09.15")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert len(load_market1501(tmp_path / "root").train) == 6


# (f) ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("labels", "arg", "match"), [
    (dict(pids=[0.5, 1.0]), "pids", "integer labels, got 0.5"),
    (dict(pids=[0, float("nan")]), "pids", "integer labels"),
    (dict(pids=[0, -4]), "pids", ">= 0, got -4 at image 1"),
    (dict(camids=[-1, 0]), "camids", ">= 0, got -1 at image 0"),
    (dict(camids=[0, 1.5]), "camids", "integer labels"),
    (dict(domains=[0, -1]), "domains", ">= 0"),
    (dict(timestamps=[-1, -2]), "timestamps", ">= -1"),
])
def test_reid_dataset_refuses_fractional_and_negative_labels(labels, arg, match):
    """Before: pids 0.5 became 0 and camid -1 was accepted."""
    kw = dict(pids=[0, 1], camids=[0, 1]) | labels
    with pytest.raises(ValueRangeError, match=f"{arg}: .*{match}"):
        ReIDDataset(torch.zeros(2, 3, 4, 2, dtype=torch.uint8), **kw)
    ok = ReIDDataset(torch.zeros(2, 3, 4, 2, dtype=torch.uint8), pids=[0.0, 1.0],
                     camids=torch.tensor([0, 1]), timestamps=[-1, 5])
    assert ok.pids.dtype == torch.long and ok.pids.tolist() == [0, 1]
