"""render_tree: the synthetic domains written as real dataset trees, read back by the real
loaders, and every protocol built from them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from dgblocks import ValueRangeError
from dgblocks.data.datasets import load_dataset
from dgblocks.data.render_tree import DATASETS, main, plan_dataset, render_tree
from dgblocks.protocols import build_benchmark, real_direct

TINY = dict(scale=0.001, per_id=2, seed=0)
PROTOCOLS = ["protocol1", "protocol1-ms", "protocol1-episodic", "protocol2:M", "protocol2:MS",
             "protocol2:C3", "protocol3:M", "protocol3:MS", "protocol3:C3", "direct:M->D",
             "direct:D->MS", "direct:C3->M", "protocol1,grid_gallery=1025"]
SOURCES = {"protocol1": 4, "protocol1-ms": 5, "protocol1-episodic": 4, "protocol2": 3,
           "protocol3": 3, "direct": 1}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("rendered")
    return root, render_tree(root, progress=False, **TINY)


def test_every_dataset_rendered_in_seconds(tree):
    root, out = tree
    assert set(out["datasets"]) == set(DATASETS) and out["seconds"] < 30
    assert (root / "dgblocks_render.json").exists()
    styles = {d["style"] for d in out["datasets"].values()}
    assert len(styles) == len(DATASETS)  # one distinct domain per dataset


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol_builds_from_the_rendered_tree(tree, protocol):
    root, _ = tree
    bench = build_benchmark("real", root=str(root), protocol=protocol, image_size=(256, 128))
    assert bench.num_domains == SOURCES[protocol.split(":")[0].split(",")[0]]
    assert sorted(bench.train.domains.unique().tolist()) == list(range(bench.num_domains))
    assert bench.num_ids == bench.train.num_ids == int(bench.train.pids.max()) + 1
    img, pid, cam, dom, _ = bench.train[0]
    assert img.shape == (3, 256, 128) and 0 <= dom < bench.num_domains and cam >= 0
    for target in bench.targets:
        for query, gallery in target.splits:
            assert len(query) >= 2 and len(gallery) >= 2
            # every query identity has a gallery image from another camera
            for p, c in zip(query.pids.tolist(), query.camids.tolist()):
                assert bool(((gallery.pids == p) & (gallery.camids != c)).any())


def test_real_direct_with_several_targets(tree):
    b = real_direct("direct:M->D+MS+C3", tree[0])
    assert [t.name for t in b.targets] == ["dukemtmc", "msmt17-v1", "cuhk03-labeled"]


def test_images_are_stored_at_256x128_in_each_datasets_format(tree):
    root, _ = tree
    seen = {}
    for name in DATASETS:
        for item in plan_dataset(name, **TINY).items:
            with Image.open(root / item.rel) as im:
                assert im.size == (128, 256), item.rel
                seen[Path(item.rel).suffix] = im.format
    assert seen == {".jpg": "JPEG", ".png": "PNG", ".jpeg": "JPEG", ".bmp": "BMP"}


@pytest.mark.parametrize("name", ["market1501", "dukemtmc", "msmt17", "cuhk03", "cuhk02",
                                  "cuhksysu", "prid2011", "grid", "viper", "ilids"])
def test_loaders_read_back_the_planned_identities_and_cameras(tree, name):
    root, _ = tree
    plan = {str(root / it.rel): it for it in plan_dataset(name, **TINY).items}
    splits = load_dataset(name, root)
    records = splits.train + splits.query + splits.gallery
    records += [r for q, g in splits.protocol_splits for r in q + g]
    assert {r.path for r in records} <= set(plan)
    if name not in ("prid2011", "grid", "viper", "ilids"):  # Protocol-1 targets: split subsets
        dropped = {p for p, it in plan.items() if "/-1_" in p}  # Market's junk
        assert {r.path for r in records} == set(plan) - dropped
    for part in (splits.train, splits.query + splits.gallery):
        pairs = {(r.pid, plan[r.path].ident) for r in part  # pid 0: distractors
                 if r.pid != 0 or name not in ("market1501", "grid")}
        assert len({p for p, _ in pairs}) == len({i for _, i in pairs}) == len(pairs)
    if name in ("market1501", "dukemtmc", "msmt17", "cuhk03", "cuhk02", "grid"):
        assert all(r.camid == plan[r.path].cam for r in splits.train + splits.query)
    if name == "dukemtmc":  # frame numbers grow with the time period of the rendering
        assert all(r.timestamp // 3_000_000 == plan[r.path].period for r in splits.train)
    if name == "msmt17":
        assert all(r.timestamp == plan[r.path].period for r in splits.train)


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_same_seed_same_files_whatever_else_is_rendered(tree, tmp_path):
    root, _ = tree
    render_tree(tmp_path, datasets=["VIPeR", "C3"], progress=False, **TINY)
    for name in ("viper", "cuhk03"):
        for it in plan_dataset(name, **TINY).items[:6]:
            assert _digest(tmp_path / it.rel) == _digest(root / it.rel)
    other = plan_dataset("viper", scale=0.001, per_id=2, seed=1).items
    assert [it.rel for it in other] != [it.rel for it in plan_dataset("viper", **TINY).items]


def test_jobs_do_not_change_the_files(tmp_path):
    kw = dict(datasets=["iLIDS"], image_size=(64, 32), progress=False, **TINY)
    render_tree(tmp_path / "a", jobs=1, **kw)
    render_tree(tmp_path / "b", jobs=2, **kw)
    for it in plan_dataset("ilids", **TINY).items:
        assert _digest(tmp_path / "a" / it.rel) == _digest(tmp_path / "b" / it.rel)


def test_jpeg_everywhere_and_scale(tmp_path):
    out = render_tree(tmp_path, datasets=["PRID"], image_format="jpeg", image_size=(64, 32),
                      progress=False, **TINY)
    assert {p.suffix for p in (tmp_path / "prid_2011").rglob("person_*")} == {".jpg"}
    assert len(load_dataset("PRID", tmp_path).protocol_splits) == 10
    assert out["datasets"]["prid2011"]["files"] == len(plan_dataset("PRID", **TINY).items)
    big = plan_dataset("M", scale=0.01, seed=0)
    assert len({it.ident for it in big.items}) > 40 and len(big.items) > 300


def test_never_overwrites_a_folder_it_did_not_write(tmp_path):
    real = tmp_path / "VIPeR" / "cam_a"
    real.mkdir(parents=True)
    (real / "000_45.bmp").write_bytes(b"precious")
    with pytest.raises(ValueRangeError, match="not written by render_tree"):
        render_tree(tmp_path, datasets=["viper"], overwrite=True, progress=False, **TINY)
    assert (real / "000_45.bmp").read_bytes() == b"precious"
    render_tree(tmp_path / "x", datasets=["viper"], image_size=(64, 32), progress=False, **TINY)
    with pytest.raises(ValueRangeError, match="overwrite"):
        render_tree(tmp_path / "x", datasets=["viper"], progress=False, **TINY)
    render_tree(tmp_path / "x", datasets=["viper"], overwrite=True, progress=False, **TINY)


@pytest.mark.parametrize(("kwargs", "arg"), [
    (dict(datasets=["nope"]), "datasets"), (dict(datasets=[]), "datasets"),
    (dict(datasets="viper"), "datasets"), (dict(scale=0), "scale"),
    (dict(scale=float("nan")), "scale"), (dict(per_id=0), "per_id"),
    (dict(image_size=(10**6, 10**6)), "image_size"), (dict(image_size=(256,)), "image_size"),
    (dict(image_format="gif"), "image_format"), (dict(jobs=0), "jobs"),
    (dict(seed=1.5), "seed")])
def test_bad_arguments_are_named(tmp_path, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        render_tree(tmp_path, progress=False, **{"datasets": ["viper"], **kwargs})


def test_command_line(tmp_path, capsys):
    main([str(tmp_path), "--datasets", "GRID", "--scale", "0.001", "--per-id", "2", "--size",
          "64", "32", "--quiet"])
    assert "grid:" in capsys.readouterr().out
    with Image.open(next((tmp_path / "underground_reid" / "probe").iterdir())) as im:
        assert im.size == (32, 64)


def test_recipe_trains_and_evaluates_on_the_rendered_tree_with_workers(tree, tmp_path, capsys):
    """--data real --data-root ROOT end to end: the baseline recipe, file-backed batches from
    2 worker processes, the Protocol-1 targets evaluated."""
    from recipes import baseline

    out = baseline.main(["--smoke", "--data", "real", "--data-root", str(tree[0]),
                         "--protocol", "protocol1", "--workers", "2", "--no-plots",
                         "--out", str(tmp_path / "r.json")])
    assert (tmp_path / "r.json").exists() and "grid" in capsys.readouterr().out
    assert out is not None


@pytest.mark.parametrize("protocol", ["protocol1-ms", "protocol2:MS"])
def test_check_data_finds_nothing_wrong_in_the_rendered_tree(tree, tmp_path, capsys, protocol):
    from recipes import baseline

    with pytest.raises(SystemExit) as done:
        baseline.main(["--check-data", "--data", "real", "--data-root", str(tree[0]),
                       "--protocol", protocol, "--out", str(tmp_path / "r.json")])
    assert done.value.code == 0 and "0 problem(s)" in capsys.readouterr().out
