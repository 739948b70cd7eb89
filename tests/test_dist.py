"""Scale-out: 2 ranks (gloo, CPU) give what 1 rank gives on the concatenated batch.

One module-scoped fixture starts the two worker processes once (spawn, 127.0.0.1, free port,
timeout); each test then compares one block's per-rank results with the 1-process reference.
The ranks hold different batch sizes (3 and 5) to exercise the uneven all-gather.
"""

from __future__ import annotations

import datetime
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import dgblocks.functional as DF
from dgblocks import _dist
from dgblocks.layers import CrossDomainStyle
from dgblocks.memory import IDPool

WORLD = 2
SPLIT = [3, 5]  # samples per rank
G, C = 3, 4  # domains, channels


def _data():
    g = torch.Generator().manual_seed(123)
    n = sum(SPLIT)
    return {
        "x": torch.randn(n, C, 3, 3, generator=g, dtype=torch.float64),
        "domains": torch.tensor([0, 1, 2, 0, 1, 1, 2, 0]),
        "w": torch.randn(n, C, 3, 3, generator=g, dtype=torch.float64),
        "feats": [torch.randn(n, 6, generator=g, dtype=torch.float64) for _ in range(3)],
        "labels": [torch.randint(0, 10, (n,), generator=g) for _ in range(3)],
    }


def _pool():
    return IDPool(num_ids=10, dim=6, num_domains=G, k=3, alpha=0.2, central=1).double()


def _run_pool(pool, feats, labels, domain_of):
    for t, (f, lab) in enumerate(zip(feats, labels)):
        pool.update(f, labels=lab, domains=domain_of[lab])
        if t == 1:
            pool.end_epoch()
    return {k: v.clone() for k, v in pool.state_dict().items()}


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=30))
    try:
        d = _data()
        lo, hi = sum(SPLIT[:rank]), sum(SPLIT[: rank + 1])
        res = {"is_distributed": _dist.is_distributed()}
        # all_gather_cat (uneven sizes) and its gradient convention (sum over ranks)
        x = d["x"][lo:hi].clone().requires_grad_()
        gathered = _dist.all_gather_cat(x)
        (gathered.pow(2) * d["w"]).sum().backward()
        res["gathered"], res["gather_grad"] = gathered.detach(), x.grad
        res["reduced"] = _dist.all_reduce_sum(d["x"][lo:hi].sum(0))
        # cross-domain style: module with a different generator seed on each rank
        x = d["x"][lo:hi].clone().requires_grad_()
        style = CrossDomainStyle(num_domains=G)
        y = style(x, d["domains"][lo:hi], generator=torch.Generator().manual_seed(rank))
        (y * d["w"][lo:hi]).sum().backward()
        res["style"], res["style_grad"] = y.detach(), x.grad
        # ID pool fed with each rank's slice of every batch
        domain_of = torch.arange(10) % G
        res["pool"] = _run_pool(_pool(), [f[lo:hi] for f in d["feats"]],
                                [lab[lo:hi] for lab in d["labels"]], domain_of)
        torch.save(res, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    ctx = mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + 60
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            pytest.fail("distributed workers timed out after 60 s")
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


pytestmark = pytest.mark.distributed


def test_without_a_process_group_everything_is_a_no_op():
    x = torch.randn(3, requires_grad=True)
    assert not _dist.is_distributed() and _dist.world_size() == 1 and _dist.rank() == 0
    assert _dist.all_gather_cat(x) is x and _dist.all_reduce_sum(x) is x
    assert _dist.broadcast(x) is x


def test_all_gather_cat_and_all_reduce_sum(ranks):
    d = _data()
    for r, res in enumerate(ranks):
        lo, hi = sum(SPLIT[:r]), sum(SPLIT[: r + 1])
        assert res["is_distributed"]
        torch.testing.assert_close(res["gathered"], d["x"])
        # each rank's loss uses the whole gathered batch: gradients of the slice add up
        torch.testing.assert_close(res["gather_grad"], WORLD * 2 * d["x"][lo:hi] * d["w"][lo:hi])
        torch.testing.assert_close(res["reduced"], d["x"].sum(0))


def test_cross_domain_style_equals_one_process_on_the_concatenated_batch(ranks):
    d = _data()
    x = d["x"].clone().requires_grad_()
    noise = torch.randn(2, G, C, generator=torch.Generator().manual_seed(0)).double()
    ref = DF.cross_domain_style(x, d["domains"], noise[0], noise[1], num_domains=G)
    (ref * d["w"]).sum().backward()
    torch.testing.assert_close(torch.cat([r["style"] for r in ranks]), ref.detach())
    torch.testing.assert_close(torch.cat([r["style_grad"] for r in ranks]), x.grad)


def test_id_pool_equals_one_process_on_the_concatenated_batch(ranks):
    d = _data()
    ref = _run_pool(_pool(), d["feats"], d["labels"], torch.arange(10) % G)
    for res in ranks:
        assert set(res["pool"]) == set(ref)
        for name, value in ref.items():
            torch.testing.assert_close(res["pool"][name], value, msg=name)
