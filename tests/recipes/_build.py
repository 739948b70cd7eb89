"""Build a recipe's Method in-process from flags, and batches for a step (tests only)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from dgblocks.engine import parse_config
from dgblocks.methods import Batch
from dgblocks.protocols import build_benchmark


def fake_bench(num_ids: int = 8, num_domains: int = 2, size=(32, 16)) -> SimpleNamespace:
    """A benchmark stand-in with what a method's constructor reads (no images)."""
    train = SimpleNamespace(images=torch.zeros(1, 3, *size, dtype=torch.uint8))
    return SimpleNamespace(task="reid", num_ids=num_ids, num_domains=num_domains, train=train,
                           domain_names=[f"d{k}" for k in range(num_domains)], name="fake",
                           targets=[], source_val=[], info={})


def build(cls, argv=(), *, bench=None, seed: int = 0):
    """``cls`` (a recipe's Method) configured by ``--smoke`` + ``argv``, on ``bench`` (default:
    the smoke benchmark of ``--data``), after its ``prepare_benchmark``."""
    cfg, args = parse_config(cls.Config, ["--smoke", *argv])
    if bench is None:
        size = tuple(getattr(cfg, "image_size", (0, 0)))
        bench = build_benchmark(args.data, smoke=True, seed=args.seed,
                                image_size=size if all(size) else (64, 32))
    bench = cls.prepare_benchmark(cfg, bench, args)
    torch.manual_seed(seed)
    return cls(cfg, bench, seed=seed)


def batch(n: int = 16, *, num_domains: int = 2, num_ids: int | None = None, size=(32, 16),
          seed: int = 0) -> Batch:
    """``n`` random images in [0, 1], grouped by domain (n / num_domains each), 4 per id."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, *size, generator=g)
    pid = torch.arange(n) // 4
    if num_ids is not None:
        pid = pid % num_ids
    dom = torch.arange(n) // (n // num_domains)
    zeros = torch.zeros(n, dtype=torch.long)
    return Batch(x, pid, zeros, dom, zeros)


def data_batch(bench, n: int, *, seed: int = 0) -> Batch:
    """``n`` random training images of ``bench`` (floats in [0, 1])."""
    ds = bench.train
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
    items = [ds[int(i)] for i in idx]
    cols = list(zip(*items))
    x = torch.stack([torch.as_tensor(c) for c in cols[0]])
    x = x.float() / 255 if not x.is_floating_point() else x
    rest = [torch.as_tensor([int(v) if v is not None else 0 for v in c]) for c in cols[1:5]]
    return Batch(x, *rest)
