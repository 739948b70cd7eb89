"""Resumable, sharded batches; worker processes that change nothing but the speed."""

import os

import pytest
import torch
from torch.utils.data import TensorDataset

from dgblocks.engine.batches import Batches, default_workers, index_sampler, random_sampler

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


# ---------------------------------------------------------------- workers (issue #26, item 2)


class Noisy(torch.utils.data.Dataset):
    """Random augmentation inside __getitem__ (global torch RNG) and the loading process."""

    def __len__(self):
        return 40

    def __getitem__(self, i):
        return torch.tensor([i]), torch.rand(3), torch.tensor(os.getpid())


def _run(workers, n=25, state_at=None, **kw):
    b = Batches(Noisy(), batch_size=6, sampler=random_sampler(40), seed=5, workers=workers,
                **kw)
    out, pids = [], set()
    for step in range(n):
        if step == state_at:  # a resume in the middle of an epoch
            state = b.state_dict()
            b.load_state_dict(state)
        i, noise, pid = next(b)
        out.append((i.flatten().tolist(), noise))
        pids |= set(pid.tolist())
    b.close()
    return out, pids


def _same(a, b):
    return all(x[0] == y[0] and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))


def test_workers_do_not_change_the_batches_nor_the_random_items():
    ref, pids0 = _run(0)
    for workers in (1, 2):
        out, pids = _run(workers)
        assert _same(out, ref), workers
        assert len(pids) == workers and os.getpid() not in pids  # persistent: never restarted
    assert pids0 == {os.getpid()}


def test_main_process_loading_leaves_the_global_rng_alone():
    torch.manual_seed(1)
    _run(0, n=5)
    mine = torch.rand(4)
    torch.manual_seed(1)
    assert torch.equal(mine, torch.rand(4))


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_with_workers_continues_with_the_same_batches(workers):
    ref, _ = _run(0, n=20)
    out, pids = _run(workers, n=20, state_at=9)  # 6 batches per epoch: mid-epoch 2
    assert _same(out, ref)
    if workers:
        assert len(pids) == workers  # the reset kept the worker processes
    b = Batches(Noisy(), batch_size=6, sampler=random_sampler(40), seed=5, workers=workers)
    b.load_state_dict({"epoch": 1, "position": 3})  # from a checkpoint: batch 6 + 3
    i, noise, _ = next(b)
    assert i.flatten().tolist() == ref[9][0] and torch.equal(noise, ref[9][1])
    b.close()


def test_file_backed_dataset_with_workers_and_pinned_memory(tmp_path):
    from dgblocks.data.datasets import load_dataset, to_dataset
    from dgblocks.data.render_tree import render_tree

    render_tree(tmp_path, datasets=["M"], scale=0.002, per_id=4, image_size=(64, 32),
                progress=False)
    ds = to_dataset(load_dataset("M", tmp_path).train, image_size=(64, 32))
    assert default_workers(ds, cpus=16) == 4 and default_workers(ds, cpus=16, world_size=8) == 2
    assert default_workers(DS) == 0
    sampler = index_sampler("identity", ds, 8, 4)
    outs = []
    for workers in (0, 2):
        b = Batches(ds, batch_size=8, sampler=sampler, seed=0, workers=workers,
                    pin_memory=torch.cuda.is_available())
        outs.append([next(b) for _ in range(6)])
        b.close()
    for x, y in zip(*outs):
        assert x[0].shape == (8, 3, 64, 32)
        assert all(torch.equal(u, v) for u, v in zip(x, y))
    auto = Batches(ds, batch_size=8, sampler=sampler, workers=-1)
    assert auto.workers == default_workers(ds)


def test_index_sampler_gives_global_batches_and_batches_shards_once():
    from dgblocks.protocols import build_benchmark

    train = build_benchmark("synthetic", smoke=True).train
    sampler = index_sampler("domain", train, 8, 2)
    batches = sampler(torch.Generator().manual_seed(0))
    assert all(len(b) == 8 for b in batches)
    one = [next(Batches(train, batch_size=8, sampler=sampler, seed=0))[1].tolist()]
    parts = [next(Batches(train, batch_size=8, sampler=sampler, seed=0, rank=r,
                          world_size=2))[1].tolist() for r in range(2)]
    assert parts[0] + parts[1] == one[0]


def test_bad_worker_settings_are_named():
    with pytest.raises(ValueError, match="workers"):
        Batches(DS, batch_size=2, sampler=random_sampler(20), workers=-2)
    with pytest.raises(ValueError, match="prefetch"):
        Batches(DS, batch_size=2, sampler=random_sampler(20), prefetch=0)
    with pytest.raises(ValueError, match="rank"):
        Batches(DS, batch_size=2, sampler=random_sampler(20), rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        next(Batches(DS, batch_size=4, sampler=lambda g: [[0, 1, 2]]))
