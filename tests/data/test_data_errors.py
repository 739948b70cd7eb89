"""Real data never fails silently: undecodable images name the file, off-pattern names are
counted and reported, impossible cameras raise, and --check-data lists every problem."""

import io
import warnings

import pytest
from PIL import Image

from dgblocks.data.base import DataError, load_image
from dgblocks.data.check import check_data
from dgblocks.data.datasets import load_dukemtmc, load_market1501, load_veri776, to_dataset
from dgblocks.protocols import build_benchmark
from tests.data import fake_trees as ft

TRAIN = "Market-1501-v15.09.15/bounding_box_train"


def _truncated_jpeg(path):
    buf = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").save(buf, format="JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def test_truncated_jpeg_in_training_folder_names_the_file(tmp_path):
    """Before: a bare OSError at step 0 with no file name."""
    ft.market(tmp_path)
    bad = tmp_path / TRAIN / "0002_c1s1_000451_03.jpg"
    _truncated_jpeg(bad)
    ds = to_dataset(load_market1501(tmp_path).train)
    i = ds.paths.index(str(bad))
    with pytest.raises(DataError, match="0002_c1s1_000451_03.jpg"):
        ds[i]


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
def test_unreadable_files_name_the_file(tmp_path, content):
    (tmp_path / "x.png").write_bytes(content)
    with pytest.raises(DataError, match="x.png"):
        load_image(str(tmp_path / "x.png"))
    with pytest.raises(DataError, match="nope.jpg"):
        load_image(str(tmp_path / "nope.jpg"))


def test_off_pattern_names_are_counted_and_reported(tmp_path):
    """Before: half of a Market folder renamed, 16 of 32 images gone without a word."""
    ft.market(tmp_path)
    for i in range(4):
        ft.touch(tmp_path / TRAIN / f"renamed_{i}.jpg")
    with pytest.warns(RuntimeWarning, match=r"skipped 4 image\(s\) named off the pattern"
                                            r".*renamed_0.jpg"):
        splits = load_market1501(tmp_path)
    assert len(splits.train) == 6  # the well-named ones all kept


def test_folder_named_like_an_image_is_reported_not_crashing(tmp_path):
    """Before: IsADirectoryError."""
    ft.market(tmp_path)
    (tmp_path / TRAIN / "x.jpg").mkdir()
    with pytest.warns(RuntimeWarning, match=r"1 folder\(s\) named like images \(x.jpg\)"):
        splits = load_market1501(tmp_path)
    assert all(not r.path.endswith("x.jpg") for r in splits.train)


@pytest.mark.parametrize("cam", ["X", "0"])
def test_impossible_camera_raises_naming_the_file(tmp_path, cam):
    """Before: ``cX`` dropped silently, ``c0`` became camid -1."""
    ft.market(tmp_path)
    ft.touch(tmp_path / TRAIN / f"0004_c{cam}s1_000451_03.jpg")
    with pytest.raises(DataError, match=f"0004_c{cam}s1_000451_03.jpg"):
        load_market1501(tmp_path)


@pytest.mark.parametrize("loader,make,name", [
    (load_dukemtmc, ft.duke, "DukeMTMC-reID/bounding_box_train/0001_c0_f0046182.jpg"),
    (load_veri776, ft.veri, "VeRi/image_train/0001_cX_00016450_0.jpg"),
])
def test_camera_zero_or_letters_raise_in_other_loaders(tmp_path, loader, make, name):
    make(tmp_path)
    ft.touch(tmp_path / name)
    with pytest.raises(DataError, match=name.rsplit("/", 1)[1]):
        loader(tmp_path)


def _protocol1_tree(root):
    for make in (ft.market, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.viper, ft.prid, ft.grid,
                 ft.ilids):
        make(root)


def test_check_data_lists_every_problem(tmp_path):
    _protocol1_tree(tmp_path)
    _truncated_jpeg(tmp_path / TRAIN / "0002_c1s1_000451_03.jpg")
    _truncated_jpeg(tmp_path / TRAIN / "0007_c2s1_000451_03.jpg")
    ft.touch(tmp_path / TRAIN / "renamed.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # check_data records, never leaks, the warnings
        problems = check_data(lambda: build_benchmark(
            data="real", root=tmp_path, protocol="protocol1", smoke=True))
    assert len(problems) == 3
    assert sum("cannot decode" in p for p in problems) == 2
    assert any("renamed.jpg" in p for p in problems)


def test_check_data_flag_exits_after_listing(tmp_path, capsys):
    from recipes import baseline

    _protocol1_tree(tmp_path)
    base = ["--check-data", "--data", "real", "--data-root", str(tmp_path), "--protocol",
            "protocol1", "--image-size", "64", "32", "--smoke", "--out", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit) as ok:
        baseline.main(base)
    assert ok.value.code == 0 and "0 problem(s)" in capsys.readouterr().out
    _truncated_jpeg(tmp_path / TRAIN / "0009_c1s1_000451_03.jpg")
    with pytest.raises(SystemExit) as bad:
        baseline.main(base)
    out = capsys.readouterr().out
    assert bad.value.code == 1 and "1 problem(s)" in out and "0009_c1s1_000451_03.jpg" in out
    assert not (tmp_path / "r.json").exists()  # nothing trained
