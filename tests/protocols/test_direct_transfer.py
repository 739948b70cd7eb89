"""Single-source direct transfer helpers: synthetic single source, held-out identities,
nuisance skew, time periods, several real targets (fake trees)."""

import pytest
import torch

from dgblocks import ShapeError, ValueRangeError
from dgblocks.data import ReIDDataset, synthetic_reid
from dgblocks.protocols import (
    hold_out_identities,
    kept_per_class,
    real_direct,
    single_source,
    skew_by,
    skew_fractions,
    time_periods,
)
from tests.data import fake_trees


@pytest.fixture(scope="module")
def bench():
    return synthetic_reid(smoke=True)


def _toy(n_ids=6, per=4):
    pids = torch.arange(n_ids).repeat_interleave(per) * 7 + 3      # non-contiguous
    cams = torch.arange(n_ids * per) % 3
    return ReIDDataset(torch.zeros(n_ids * per, 3, 8, 4, dtype=torch.uint8), pids=pids,
                       camids=cams, timestamps=torch.arange(n_ids * per) * 100)


@pytest.mark.parametrize("source", [0, 1])
def test_single_source_trains_on_one_domain_and_tests_on_the_others(bench, source):
    fresh = synthetic_reid(smoke=True)
    out, val = single_source(fresh, source)
    src = bench.train.domains == source
    assert len(out.train) == int(src.sum())
    assert torch.equal(out.train.camids, bench.train.camids[src])
    assert out.train.pids.unique().tolist() == list(range(out.num_ids))
    assert (out.train.domains == 0).all() and out.num_domains == 1
    names = [t.name for t in out.targets]
    assert val.name not in names and len(names) == len(bench.source_val) - 1 + len(bench.targets)
    # no training identity appears in any evaluation domain
    train_imgs = set(out.train.origin[1].tolist())
    for t in out.targets + [val]:
        for q, g in t.splits:
            assert not train_imgs & set(q.origin[1].tolist() + g.origin[1].tolist())


def test_single_source_bad_source(bench):
    with pytest.raises(ValueRangeError, match="source"):
        single_source(bench, bench.num_domains)


def test_holdout_identities_disjoint_and_shaped():
    ds = _toy()
    train, val = hold_out_identities(ds, 2, generator=torch.Generator().manual_seed(0))
    (q, g), = val.splits
    assert len(q) == 2 and len(g) == 6 and len(train) == 16
    assert set(q.pids.tolist()) == set(g.pids.tolist())
    assert not set(q.pids.tolist()) & set(ds.pids[train.origin[1]].tolist())
    assert train.pids.unique().tolist() == list(range(4))
    with pytest.raises(ValueRangeError, match="num_ids"):
        hold_out_identities(ds, 6)


def test_skew_by_makes_imbalance_and_is_seeded():
    ds = ReIDDataset(torch.zeros(3000, 3, 4, 2, dtype=torch.uint8),
                     pids=torch.arange(3000) // 10, camids=torch.arange(3000) % 3)
    out = skew_by(ds, ds.camids, 0.75, generator=torch.Generator().manual_seed(0))
    # f_c = 0.25 ** (c / 2): 1, 1/2, 1/4 of the 1000 images of each camera, exactly
    assert torch.bincount(out.camids).tolist() == [1000, 500, 250]
    again = skew_by(ds, ds.camids, 0.75, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.origin[1], again.origin[1])
    other = skew_by(ds, ds.camids, 0.75, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(out.origin[1], other.origin[1])
    assert out.pids.unique().tolist() == list(range(out.num_ids))
    assert skew_by(ds, ds.camids, 0.0) is ds
    with pytest.raises(ValueRangeError, match="skew"):
        skew_by(ds, ds.camids, 1.0)
    with pytest.raises(ShapeError, match="labels"):
        skew_by(ds, ds.camids[:5], 0.5)


def test_skew_by_never_empties_a_camera_and_bounds_the_ratio():
    """15 cameras (MSMT17): the old rule kept 0.5 ** 14 of the last one, i.e. nothing."""
    n = 15 * 40
    ds = ReIDDataset(torch.zeros(n, 3, 4, 2, dtype=torch.uint8), pids=torch.arange(n) // 4,
                     camids=torch.arange(n) % 15)
    for skew in (0.5, 0.9, 0.99):
        out = skew_by(ds, ds.camids, skew, generator=torch.Generator().manual_seed(0))
        kept = torch.bincount(out.camids, minlength=15)
        assert (kept >= 1).all() and kept[0] == 40 and kept.diff().le(0).all()
        assert kept[-1] == max(1, round((1 - skew) * 40))
    classes, frac = skew_fractions(ds.camids, 0.5)
    assert classes.tolist() == list(range(15))
    assert frac.max() / frac.min() == pytest.approx(2.0)
    report = kept_per_class(ds.camids, out.camids)
    assert report["of"] == [40] * 15 and report["kept"] == kept.tolist()


def test_skew_by_keeps_domain_labels():
    """Multi-source: the old skew_by relabelled every image to domain 0."""
    n = 240
    ds = ReIDDataset(torch.zeros(n, 3, 4, 2, dtype=torch.uint8), pids=torch.arange(n) // 4,
                     camids=torch.arange(n) % 6, domains=torch.arange(n) // 60,
                     timestamps=torch.arange(n))
    out = skew_by(ds, ds.camids, 0.5, generator=torch.Generator().manual_seed(0))
    idx = out.origin[1]
    assert out.domains.unique().tolist() == [0, 1, 2, 3]
    assert torch.equal(out.domains, ds.domains[idx])
    assert torch.equal(out.camids, ds.camids[idx])
    assert torch.equal(out.timestamps, ds.timestamps[idx])


def test_time_periods():
    syn = torch.tensor([400, 800, 1200])
    assert time_periods(syn, synthetic=True).tolist() == [0, 1, 2]
    assert time_periods(torch.tensor([0, 2, 1]), synthetic=False).tolist() == [0, 2, 1]
    frames = torch.arange(90) * 1000
    p = time_periods(frames, synthetic=False)
    assert torch.bincount(p).tolist() == [30, 30, 30] and (p.diff() >= 0).all()
    with pytest.raises(ValueRangeError, match="timestamps"):
        time_periods(torch.tensor([-1, 5]), synthetic=False)


def test_real_direct_several_targets(tmp_path):
    for make in (fake_trees.market, fake_trees.duke, fake_trees.msmt17):
        make(tmp_path)
    b = real_direct("direct:M->D+MS", tmp_path, image_size=(16, 8))
    assert [t.name for t in b.targets] == ["dukemtmc", "msmt17-v1"]
    assert b.num_domains == 1 and len(b.train) == 6
    with pytest.raises(ValueRangeError, match="protocol"):
        real_direct("protocol1", tmp_path)
