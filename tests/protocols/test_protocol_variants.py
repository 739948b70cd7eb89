"""Per-paper protocol details: GRID's 900 / 1,025 gallery, the episodic sources, VehicleID sizes."""

import pytest

from dgblocks import ValueRangeError
from dgblocks.data.datasets import load_dataset, load_grid, load_vehicleid
from dgblocks.protocols import build_benchmark, parse_protocol
from tests.data import fake_trees as ft


def test_grid_gallery_1025_holds_every_gallery_image(tmp_path):
    ft.grid(tmp_path)
    small, full = load_grid(tmp_path), load_grid(tmp_path, gallery_size=1025)
    assert full.name == "grid-1025" and small.name == "grid"
    for (q9, g9), (q, g) in zip(small.protocol_splits, full.protocol_splits):
        assert q == q9 and len(q) == 125 and len(g9) == 900 and len(g) == 1025
        assert set(g9) < set(g) and sum(r.pid == 0 for r in g) == 775
        assert {r.pid for r in g if r.pid} == set(range(1, 251))  # incl. the 125 held out
    assert load_dataset("grid-1025", tmp_path).protocol_splits == full.protocol_splits
    with pytest.raises(ValueRangeError, match="gallery_size"):
        load_grid(tmp_path, gallery_size=1000)


@pytest.mark.parametrize("size", [1600, 3200, 13164])
def test_vehicleid_paper_test_sizes_load(tmp_path, size):
    ft.vehicleid(tmp_path)
    v = load_vehicleid(tmp_path, test_size=size)
    assert v.name == f"vehicleid-{size}" and len(v.gallery) == 3 and len(v.query) == 6
    assert load_dataset(f"vehicleid-{size}", tmp_path).gallery == v.gallery


def test_vehicleid_unknown_size_names_the_argument(tmp_path):
    ft.vehicleid(tmp_path)
    with pytest.raises(ValueRangeError, match="test_size"):
        load_vehicleid(tmp_path, test_size=1000)


def test_direct_transfer_to_vehicleid_3200(tmp_path):
    ft.veri(tmp_path)
    ft.vehicleid(tmp_path)
    b = build_benchmark("real", root=str(tmp_path), protocol="direct:veri776->vehicleid-3200",
                        image_size=(16, 8))
    assert [t.name for t in b.targets] == ["vehicleid-3200"]


def test_protocol_options_and_episodic_sources():
    assert parse_protocol("protocol1").grid_gallery == 900
    assert parse_protocol("protocol1-ms").grid_gallery == 900
    ms = parse_protocol("protocol1-ms, grid_gallery=1025")
    assert ms.grid_gallery == 1025 and ms.sources == ("M", "D", "C2", "C3", "CS")
    ep = parse_protocol("protocol1-episodic")
    assert ep.sources == ("M", "D", "C2", "C3") and ep.use == "all" and ep.grid_gallery == 1025
    assert ep.targets == parse_protocol("protocol1").targets
    assert parse_protocol("protocol1-episodic,grid_gallery=900").grid_gallery == 900
    for bad in ("protocol1,grid_gallery=1000", "protocol1,gallery=900", "protocol1,"):
        with pytest.raises(ValueRangeError, match="grid_gallery"):
            parse_protocol(bad)


def test_protocol1_episodic_end_to_end(tmp_path):
    for f in (ft.market, ft.duke, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.viper, ft.prid, ft.grid,
              ft.ilids):
        f(tmp_path)
    b = build_benchmark("real", root=str(tmp_path), protocol="protocol1-episodic",
                        image_size=(16, 8))
    assert b.num_domains == 4 and b.domain_names == ["market1501", "dukemtmc", "cuhk02",
                                                     "cuhk03-labeled"]
    grid = b.targets[1]
    assert grid.name == "grid-1025" and b.info["grid_gallery"] == 1025
    assert all(len(q) == 125 and len(g) == 1025 for q, g in grid.splits)
    b9 = build_benchmark("real", root=str(tmp_path), protocol="protocol1,grid_gallery=900",
                         image_size=(16, 8))
    assert all(len(g) == 900 for _, g in b9.targets[1].splits)
