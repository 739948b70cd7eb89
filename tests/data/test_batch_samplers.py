"""P x K, domain-balanced and dataset-balanced samplers; meta domain splits."""

import pytest
import torch
from hypothesis import given

from dgblocks import ValueRangeError
from dgblocks.data import (
    DatasetBalancedSampler,
    DomainBalancedSampler,
    RandomIdentitySampler,
)
from dgblocks.meta import MetaDomainSplitter
from tests._helpers import seeds


def labels(seed, n=60):
    g = torch.Generator().manual_seed(seed)
    pids = torch.randint(0, 15, (n,), generator=g)
    doms = pids % 3
    return pids, doms


@given(seed=seeds)
def test_pk_structure(seed):
    pids, _ = labels(seed)
    if pids.unique().numel() < 4:
        return
    s = RandomIdentitySampler(pids, batch_size=8, num_instances=2, seed=seed)
    for b in s:
        p = pids[b]
        assert len(b) == 8 and p.unique().numel() == 4
        assert all(int((p == q).sum()) == 2 for q in p.unique())


@given(seed=seeds)
def test_domain_balanced(seed):
    pids, doms = labels(seed)
    if min(pids[doms == d].unique().numel() for d in range(3)) < 2:
        return
    s = DomainBalancedSampler(pids, doms, batch_size=12, num_instances=2, seed=seed)
    for b in s:
        assert torch.bincount(doms[b], minlength=3).tolist() == [4, 4, 4]


def test_dataset_balanced_and_seeding():
    doms = torch.tensor([0] * 50 + [1] * 5)
    s = DatasetBalancedSampler(doms, batch_size=10, seed=3)
    first = list(s)
    assert all(torch.bincount(doms[b]).tolist() == [5, 5] for b in first)
    assert first == list(s)  # same epoch, same batches
    s.set_epoch(1)
    assert first != list(s)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a = list(DatasetBalancedSampler(doms, batch_size=10, generator=g1))
    assert a == list(DatasetBalancedSampler(doms, batch_size=10, generator=g2))


def test_distributed_shards_concatenate_to_single_rank():
    pids, doms = labels(0, 120)
    kw = dict(batch_size=12, num_instances=2, seed=5)
    single = list(DomainBalancedSampler(pids, doms, num_replicas=1, rank=0, **kw))
    shards = [list(DomainBalancedSampler(pids, doms, num_replicas=3, rank=r, **kw))
              for r in range(3)]
    for i, b in enumerate(single):
        assert sum((sh[i] for sh in shards), []) == b


def test_bad_input():
    pids, doms = labels(0)
    with pytest.raises(ValueRangeError, match="batch_size"):
        RandomIdentitySampler(pids, batch_size=7, num_instances=2)
    with pytest.raises(ValueRangeError, match="batch_size"):
        RandomIdentitySampler(pids, batch_size=200, num_instances=2)
    with pytest.raises(ValueRangeError, match="batch_size"):
        DomainBalancedSampler(pids, doms, batch_size=8, num_instances=2)
    with pytest.raises(ValueRangeError, match="domains"):
        DomainBalancedSampler(pids, doms[:3], batch_size=12)
    with pytest.raises(ValueRangeError, match="rank"):
        RandomIdentitySampler(pids, batch_size=8, num_instances=2, num_replicas=2, rank=2)
    with pytest.raises(ValueRangeError, match="pids"):
        RandomIdentitySampler(torch.rand(10), batch_size=2, num_instances=1)


def test_few_instances_are_resampled():
    pids = torch.tensor([0, 1, 1, 1, 2])
    s = RandomIdentitySampler(pids, batch_size=6, num_instances=2, num_batches=3)
    for b in s:
        assert len(b) == 6


def test_meta_split_balanced_and_masks():
    s = MetaDomainSplitter(num_domains=4, seed=1)
    tests = [int(s.next()[1]) for _ in range(8)]
    assert sorted(tests[:4]) == [0, 1, 2, 3] and sorted(tests[4:]) == [0, 1, 2, 3]
    tr, te = s.next()
    assert len(tr) == 3 and not set(tr.tolist()) & set(te.tolist())
    s2 = MetaDomainSplitter(num_domains=5, num_test=2, seed=0)
    for _ in range(10):
        tr, te = s2.next()
        assert len(te) == 2 and len(set(te.tolist())) == 2 and len(tr) == 3
    mtr, mte = MetaDomainSplitter.masks(torch.tensor([0, 1, 2, 3]), (tr, te))
    assert (mtr ^ mte).all()
    with pytest.raises(ValueRangeError, match="num_test"):
        MetaDomainSplitter(num_domains=2, num_test=2)
