"""cameras_as_domains: (domain, camera) pairs become the training domains (DIR-ReID Table 4)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dgblocks.data import synthetic_reid
from dgblocks.data.base import Benchmark, ReIDDataset
from dgblocks.protocols import cameras_as_domains, single_source
from tests._helpers import seeds


def _bench(domains, camids, names=None):
    n = len(domains)
    ds = ReIDDataset(torch.zeros(n, 3, 4, 2, dtype=torch.uint8), pids=torch.arange(n),
                     camids=camids, domains=domains)
    g = int(domains.max()) + 1
    return Benchmark(name="b", train=ds, num_ids=n, num_domains=g,
                     domain_names=names or [f"d{i}" for i in range(g)], targets=[])


def test_matches_a_loop_and_keeps_the_rest():
    b = _bench(torch.tensor([1, 0, 1, 0, 1]), torch.tensor([2, 2, 0, 2, 2]))
    out = cameras_as_domains(b)
    pairs = sorted({(d, c) for d, c in zip(b.train.domains.tolist(), b.train.camids.tolist())})
    ref = [pairs.index((d, c)) for d, c in zip(b.train.domains.tolist(), b.train.camids.tolist())]
    assert out.train.domains.tolist() == ref == [2, 0, 1, 0, 2]
    assert out.domain_names == ["d0/cam2", "d1/cam0", "d1/cam2"] and out.num_domains == 3
    assert torch.equal(out.train.pids, b.train.pids) and torch.equal(out.train.camids,
                                                                      b.train.camids)
    assert b.train.domains.tolist() == [1, 0, 1, 0, 1]            # the input is unchanged
    assert out.info["domains"] == "camera" and out.targets is b.targets


def test_single_synthetic_source_gets_its_cameras():
    one, _ = single_source(synthetic_reid(smoke=True), 1)
    out = cameras_as_domains(one)
    assert one.num_domains == 1
    assert out.num_domains == int(one.train.camids.unique().numel()) >= 2
    assert out.num_ids == one.num_ids and len(out.train) == len(one.train)


@given(seed=seeds, n=st.integers(1, 40), g=st.integers(1, 3), c=st.integers(1, 4))
def test_prop_same_new_domain_iff_same_pair(seed, n, g, c):
    gen = torch.Generator().manual_seed(seed)
    dom, cam = torch.randint(g, (n,), generator=gen), torch.randint(c, (n,), generator=gen)
    out = cameras_as_domains(_bench(dom, cam, [f"d{i}" for i in range(g)]))
    new = out.train.domains
    same_new = new[:, None] == new[None, :]
    same_pair = (dom[:, None] == dom[None, :]) & (cam[:, None] == cam[None, :])
    assert torch.equal(same_new, same_pair)
    assert out.num_domains == int(torch.stack([dom, cam], 1).unique(dim=0).shape[0])
    assert int(new.max()) == out.num_domains - 1


def test_unknown_camera_raises_naming_the_argument():
    with pytest.raises(ValueError, match="camids: expected labels >= 0"):  # at construction
        _bench(torch.tensor([0, 0]), torch.tensor([0, -1]))
    bench = _bench(torch.tensor([0, 0]), torch.tensor([0, 1]))
    bench.train.camids = torch.tensor([0, -1])  # set afterwards: still refused here
    with pytest.raises(ValueError, match="bench: expected camera ids"):
        cameras_as_domains(bench)


def test_split_by_domain_partitions_the_images():
    from dgblocks.protocols import split_by_domain

    b = _bench(torch.tensor([2, 0, 2, 0, 0]), torch.zeros(5, dtype=torch.long))
    parts = split_by_domain(b.train)
    assert [p.pids.tolist() for p in parts] == [[1, 3, 4], [], [0, 2]]
    assert [p.name for p in parts] == [f"{b.train.name}:{d}" for d in range(3)]
