"""Resumable, sharded batches."""

import pytest
import torch
from torch.utils.data import TensorDataset

from dgblocks.engine.batches import Batches, random_sampler

DS = TensorDataset(torch.arange(20), torch.arange(20) // 2)


def _take(b, n):
    return [next(b)[0].tolist() for _ in range(n)]


def test_epochs_reshuffle_and_are_seeded():
    a = Batches(DS, batch_size=6, sampler=random_sampler(20), seed=1)
    first = _take(a, 6)  # 3 batches per epoch (drop_last), 2 epochs
    assert a.epoch == 1 and len(a) == 3
    assert sorted(sum(first[:3], [])) != sorted(sum(first[3:], [])) or first[:3] != first[3:]
    b = Batches(DS, batch_size=6, sampler=random_sampler(20), seed=1)
    assert _take(b, 6) == first
    c = Batches(DS, batch_size=6, sampler=random_sampler(20), seed=2)
    assert _take(c, 6) != first


@pytest.mark.parametrize("stop", [1, 3, 4])
def test_resume_continues_with_the_same_batches(stop):
    ref = _take(Batches(DS, batch_size=4, sampler=random_sampler(20), seed=0), 9)
    a = Batches(DS, batch_size=4, sampler=random_sampler(20), seed=0)
    _take(a, stop)
    state = a.state_dict()
    torch.manual_seed(123)  # global RNG must not matter
    b = Batches(DS, batch_size=4, sampler=random_sampler(20), seed=0)
    b.load_state_dict(state)
    assert _take(b, 9 - stop) == ref[stop:]


def test_ranks_shard_the_global_batch():
    one = _take(Batches(DS, batch_size=8, sampler=random_sampler(20), seed=0), 4)
    r0 = _take(Batches(DS, batch_size=8, sampler=random_sampler(20), seed=0, rank=0,
                       world_size=2), 4)
    r1 = _take(Batches(DS, batch_size=8, sampler=random_sampler(20), seed=0, rank=1,
                       world_size=2), 4)
    assert [a + b for a, b in zip(r0, r1)] == one


def test_bad_sizes():
    with pytest.raises(ValueError, match="batch_size"):
        Batches(DS, batch_size=5, sampler=random_sampler(20), world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        next(Batches(DS, batch_size=50, sampler=random_sampler(20)))
