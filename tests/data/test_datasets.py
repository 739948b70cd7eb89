"""Real-dataset loaders on tiny fake trees with each dataset's real naming scheme."""

import pytest
import torch

from dgblocks import ValueRangeError
from dgblocks.data.datasets import (
    DATASETS,
    LayoutError,
    compose_sources,
    load_cuhk02,
    load_cuhk03,
    load_cuhksysu,
    load_dataset,
    load_dukemtmc,
    load_grid,
    load_ilids,
    load_market1501,
    load_msmt17,
    load_prid2011,
    load_vehicleid,
    load_veri776,
    load_viper,
    shipped_splits,
    to_dataset,
)
from dgblocks.protocols import build_benchmark, parse_protocol
from tests.data import fake_trees as ft


def ids(records):
    return sorted({r.pid for r in records})


def cams(records):
    return sorted({r.camid for r in records})


def test_market(tmp_path):
    ft.market(tmp_path)
    d = load_market1501(tmp_path)
    assert len(d.train) == 6 and ids(d.train) == [0, 1, 2] and cams(d.train) == [0, 1]
    assert ids(d.query) == [1, 3] and len(d.gallery) == 3  # two junk -1 dropped
    assert 0 in ids(d.gallery)  # distractors stay
    assert all(r.timestamp == -1 for r in d.train)


def test_duke(tmp_path):
    ft.duke(tmp_path)
    d = load_dukemtmc(tmp_path)
    assert ids(d.train) == [0, 1] and cams(d.train) == [1, 2, 7]
    assert sorted(r.timestamp for r in d.train) == [1234, 46182, 47000]
    assert d.query[0].pid == 5 and d.gallery[0].camid == 0


@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_cuhk03(tmp_path, variant):
    ft.cuhk03(tmp_path)
    d = load_cuhk03(tmp_path, variant=variant)
    assert d.name == f"cuhk03-{variant}" and len(d.train) == 4 and ids(d.train) == [0, 1]
    assert variant in d.train[0].path and d.query[0].camid == 1


def test_cuhk02(tmp_path):
    ft.cuhk02(tmp_path)
    d = load_cuhk02(tmp_path)
    assert len(d.train) == 8 and ids(d.train) == [0, 1, 2, 3]  # pids unique across pairs
    assert cams(d.train) == [0, 1, 2, 3] and not d.query


def test_cuhksysu(tmp_path):
    ft.cuhksysu(tmp_path)
    d = load_cuhksysu(tmp_path)
    assert len(d.train) == 3 and ids(d.train) == [0, 1] and cams(d.train) == [0]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_msmt17(tmp_path, version):
    ft.msmt17(tmp_path, version)
    d = load_msmt17(tmp_path, version=version)
    assert len(d.train) == 4 and ids(d.train) == [0, 1, 2]  # train + val lists
    assert cams(d.train) == [0, 1, 2, 14]
    assert sorted(r.timestamp for r in d.train) == [0, 1, 1, 2]  # morning/noon/afternoon
    assert d.query[0].camid == 3 and d.gallery[0].camid == 4
    assert all(__import__("os").path.exists(r.path) for r in d.train + d.query)


def test_viper(tmp_path):
    ft.viper(tmp_path)
    d = load_viper(tmp_path)
    assert len(d.protocol_splits) == 10
    for q, g in d.protocol_splits:
        assert len(q) == 316 == len(g) and ids(q) == ids(g)
        assert cams(q) == [0] and cams(g) == [1]
    assert len(ids(d.train)) == 316 and len(d.train) == 632
    assert ids(d.protocol_splits[0][0]) != ids(d.protocol_splits[1][0])


def test_prid(tmp_path):
    ft.prid(tmp_path)
    d = load_prid2011(tmp_path)
    for q, g in d.protocol_splits:
        assert len(q) == 100 and len(g) == 649
        assert set(ids(q)) <= set(range(1, 201)) and set(ids(q)) < set(ids(g))
    assert len(d.protocol_splits) == 10 and len(ids(d.train)) == 100


@pytest.mark.parametrize("mat", [False, True])
def test_grid(tmp_path, mat):
    ft.grid(tmp_path, mat=mat)
    d = load_grid(tmp_path)
    for k, (q, g) in enumerate(d.protocol_splits):
        assert len(q) == 125 and len(g) == 125 + 775
        assert sum(r.pid == 0 for r in g) == 775
        if mat:  # official partition k trains on ids k+1..k+125
            assert ids(q) == [i for i in range(1, 251) if not k + 1 <= i <= k + 125]
    assert len(d.protocol_splits) == 10


def test_ilids(tmp_path):
    ft.ilids(tmp_path)
    d = load_ilids(tmp_path)
    for q, g in d.protocol_splits:
        assert len(q) == 60 == len(g) and ids(q) == ids(g)
        assert not {r.path for r in q} & {r.path for r in g}
        assert cams(q) == [0] and cams(g) == [1]
    assert len(ids(d.train)) == 59


def test_veri_and_vehicleid(tmp_path):
    ft.veri(tmp_path)
    d = load_veri776(tmp_path)
    assert ids(d.train) == [0, 1] and cams(d.train) == [0, 1, 19]
    assert sorted(r.timestamp for r in d.train) == [5, 16450, 16460]
    ft.vehicleid(tmp_path)
    v = load_vehicleid(tmp_path, test_size=800, seed=0)
    assert ids(v.train) == [0, 1] and len(v.gallery) == 3 and len(v.query) == 6
    assert ids(v.gallery) == ids(v.query) and cams(v.gallery) == [1]
    assert v.gallery == load_vehicleid(tmp_path, seed=0).gallery


LOADERS = [load_market1501, load_dukemtmc, load_cuhk03, load_cuhk02, load_cuhksysu, load_msmt17,
           load_viper, load_prid2011, load_grid, load_ilids, load_veri776, load_vehicleid]


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_missing_layout_shows_expected_tree(tmp_path, loader):
    with pytest.raises(LayoutError, match="Expected") as e:
        loader(tmp_path)
    assert str(tmp_path) in str(e.value) and "/" in str(e.value).split("Expected")[1]
    assert isinstance(e.value, ValueError)


def test_wrong_names_raise(tmp_path):
    b = tmp_path / "Market-1501-v15.09.15"
    for d in ("bounding_box_train", "query", "bounding_box_test"):
        ft.touch(b / d / "img001.jpg")  # wrong naming scheme
    with pytest.raises(LayoutError, match="pid_c<cam>"):
        load_market1501(tmp_path)


def test_compose_sources_relabels_disjoint(tmp_path):
    ft.market(tmp_path)
    ft.cuhksysu(tmp_path)
    m, cs = load_dataset("M", tmp_path), load_dataset("CS", tmp_path)
    ds = compose_sources([m, cs])
    assert ds.pids.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert ds.domains.tolist() == [0] * 6 + [1] * 3
    allds = compose_sources([m, cs], use="all")
    assert allds.pids.max() == 6 and int((allds.domains == 0).sum()) == 10  # + 2 query + 2 test
    img, pid, cam, dom, ts = to_dataset(m.train, image_size=(16, 8))[0]
    assert img.shape == (3, 16, 8) and abs(float(img[0, 0, 0]) - 120 / 255) < 1e-6


def test_protocol1_end_to_end(tmp_path):
    for f in (ft.market, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.viper, ft.prid, ft.grid,
              ft.ilids):
        f(tmp_path)
    b = build_benchmark("real", root=str(tmp_path), protocol="protocol1", image_size=(16, 8))
    assert b.num_domains == 4 and [t.name for t in b.targets] == ["prid2011", "grid", "viper",
                                                                  "ilids"]
    assert all(len(t.splits) == 10 for t in b.targets)
    assert b.num_ids == int(b.train.pids.max()) + 1
    assert torch.equal(b.train.domains.unique(), torch.arange(4))


def test_protocol_parsing_and_splits_shipped():
    assert parse_protocol("protocol3:C3").use == "all"
    assert parse_protocol("protocol1").targets == ("PRID", "GRID", "VIPeR", "iLIDS")
    with pytest.raises(ValueRangeError, match="CS is train-only"):
        parse_protocol("protocol2:CS")
    with pytest.raises(ValueRangeError, match="protocol"):
        parse_protocol("protocol9")
    for name, n in (("viper", 316), ("prid2011", 100), ("grid", 125)):
        s = shipped_splits(name)
        assert s["seed"] == 2024 and len(s["splits"]) == 10
        assert all(len(x) == n == len(set(x)) for x in s["splits"])
    assert len(shipped_splits("ilids")["splits"][0]["test"]) == 60
    assert set(DATASETS) >= {"market1501", "msmt17", "veri776", "vehicleid"}
