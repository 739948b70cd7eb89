"""Cases of benchmarks/blocks.py for ``dgblocks.distances``, ``sampling``, ``memory`` and
``meta_norm``.

Distances are batch self-distances (B, D) -> (B, B), as inside the triplet loss. The ID pool
holds 18,530 identities of 5 domains (DDAN: k = 8 neighbours, central domain 4). The meta step's
batch norm is timed where it matters, second order: the "forward" is batch norm plus its first
gradient with ``create_graph=True`` (as in a meta step's inner gradient), the "backward" goes
through that gradient (the double backward).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from benchmarks.blocks_case import Case, Spec, gen
from benchmarks.blocks_losses import BD, IDS
from dgblocks import distances as DD
from dgblocks.memory import IDPool
from dgblocks.meta.norm import batch_norm_train
from dgblocks.sampling import BackdoorAdjustment


def _randn(*shape: int, seed: int = 0, grad: bool = True) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed)).requires_grad_(grad)


def euclidean(B: int, D: int) -> Case:
    x = _randn(B, D)
    return Case(lambda: DD.euclidean_distance(x), lambda: torch.cdist(x, x), [x])


def sqeuclidean(B: int, D: int) -> Case:
    x = _randn(B, D)
    return Case(lambda: DD.squared_euclidean_distance(x), lambda: torch.cdist(x, x).pow(2), [x])


def cosine(B: int, D: int) -> Case:
    x = _randn(B, D)
    return Case(lambda: DD.cosine_distance(x),
                lambda: 1 - F.cosine_similarity(x[:, None], x[None], dim=-1), [x])


def backdoor_hardest(B: int, D: int, k: int = 10) -> Case:
    s, v = _randn(B, D), _randn(B, D, seed=1)
    m = BackdoorAdjustment(k=k, strategy="hardest")

    def ref() -> tuple[torch.Tensor, ...]:  # torch.cdist + topk, pairs built row by row
        with torch.no_grad():
            d = torch.cdist(v, v)
            d.fill_diagonal_(-1.0)
            idx = d.topk(k, dim=1).indices
        pairs = torch.stack([torch.cat([s[i].expand(k, D), v[idx[i]]], dim=1)
                             for i in range(B)])
        return pairs, torch.stack([idx, idx], dim=-1), torch.ones(B, k)

    return Case(lambda: m(s, v), ref, [s, v], exact=(1,))


def backdoor_mixup(B: int, D: int, k: int = 10) -> Case:
    s, v = _randn(B, D), _randn(B, D, seed=1)
    m, g = BackdoorAdjustment(k=k, strategy="mixup"), gen(10)
    return Case(lambda: m(s, v, generator=g), None, [s, v])


def _pool(B: int, D: int, N: int) -> tuple[IDPool, torch.Tensor, torch.Tensor, torch.Tensor]:
    pool = IDPool(num_ids=N, dim=D, num_domains=5, k=8, central=4)
    g = gen(11)
    dom_of = torch.arange(N) % 5
    for start in range(0, N, 2000):
        lab = torch.arange(start, min(start + 2000, N))
        pool.update(torch.randn(len(lab), D, generator=g), labels=lab, domains=dom_of[lab])
    pool.end_epoch()
    f = torch.randn(B, D, generator=g)
    labels = torch.randint(0, N, (B,), generator=g)
    return pool, f, labels, dom_of[labels]


def _update_ref(pool: IDPool, f: torch.Tensor, labels: torch.Tensor,
                domains: torch.Tensor) -> None:
    # DDAN eq 6 sample by sample in a Python loop, then eq 7 on the touched row
    with torch.no_grad():
        for row, lab, dom in zip(f, labels.tolist(), domains.tolist()):
            t = int(pool.counts[lab])
            pool.running[lab] = (t * pool.running[lab] + row) / (t + 1)
            pool.counts[lab] += 1
            pool.bank[lab] = pool.alpha * pool.prev[lab] + (1 - pool.alpha) * pool.running[lab]
            pool.bank_norm[lab] = pool.bank[lab].norm()
            pool.seen[lab] = True
            pool.id_domain[lab] = dom


def pool_update(B: int, D: int, N: int = IDS) -> Case:
    pool, f, labels, domains = _pool(B, D, N)

    def check() -> float:
        a, b = copy.deepcopy(pool), copy.deepcopy(pool)
        a.update(f, labels=labels, domains=domains)
        _update_ref(b, f, labels, domains)
        return max(float((x - y).abs().max() / y.abs().max().clamp_min(1e-12))
                   for x, y in ((a.bank, b.bank), (a.running, b.running)))

    return Case(lambda: pool.update(f, labels=labels, domains=domains),
                lambda: _update_ref(pool, f, labels, domains), check=check)


def pool_topk(B: int, D: int, N: int = IDS) -> Case:
    pool, f, labels, domains = _pool(B, D, N)

    def ref() -> tuple[torch.Tensor, ...]:  # recompute every r_hat (eq 7), normalise, mask
        active = (pool.counts > 0).unsqueeze(1)
        r_hat = torch.where(active, pool.alpha * pool.prev + (1 - pool.alpha) * pool.running,
                            pool.prev)
        sim = F.normalize(f, dim=1) @ F.normalize(r_hat, dim=1).t()
        pid_dom, dom = pool.id_domain.unsqueeze(0), domains.unsqueeze(1)
        own = torch.arange(N).unsqueeze(0) == labels.unsqueeze(1)
        allowed = torch.where(dom == 4, (pid_dom == dom) & ~own, pid_dom != dom)
        top = sim.masked_fill(~(allowed & pool.seen), float("-inf")).topk(8, dim=1)
        return r_hat[top.indices], top.indices, top.values, torch.isfinite(top.values)

    return Case(lambda: pool.topk(f, domains, labels=labels), ref, exact=(1, 3))


def norm_second_order(B: int, C: int, H: int, W: int) -> Case:
    x = _randn(B, C, H, W)
    w, b = _randn(C, seed=1), _randn(C, seed=2)
    r = torch.randn(B, C, H, W, generator=gen(3))

    def first_grads(norm) -> tuple[torch.Tensor, ...]:  # inner gradient, create_graph
        return torch.autograd.grad((norm().tanh() * r).sum(), (x, w, b), create_graph=True)
    return Case(lambda: first_grads(lambda: batch_norm_train(x, w, b)),
                lambda: first_grads(lambda: F.batch_norm(x, None, None, w, b, training=True)),
                [x, w, b])


MAPS = [dict(B=64, C=64, H=64, W=32), dict(B=64, C=256, H=64, W=32)]

SPECS = [
    Spec("distances.euclidean_distance", euclidean, BD, dict(B=8, D=8), "torch.cdist"),
    Spec("distances.squared_euclidean_distance", sqeuclidean, BD, dict(B=8, D=8),
         "torch.cdist(...).pow(2)"),
    Spec("distances.cosine_distance", cosine, BD, dict(B=8, D=8),
         "1 - F.cosine_similarity broadcast to (B, B, D)"),
    Spec("sampling.BackdoorAdjustment(hardest)", backdoor_hardest, BD, dict(B=12, D=8),
         "torch.cdist + topk, pairs concatenated row by row (k = 10)"),
    Spec("sampling.BackdoorAdjustment(mixup)", backdoor_mixup, BD, dict(B=12, D=8), None),
    Spec("memory.IDPool.update", pool_update, BD, dict(B=8, D=8, N=40),
         "per-sample loop of eq 6, then eq 7 on the row"),
    Spec("memory.IDPool.topk", pool_topk, BD, dict(B=8, D=8, N=40),
         "recompute every r_hat from eq 7, normalise, mask, topk"),
    Spec("meta_norm.batch_norm_train (second order)", norm_second_order, MAPS,
         dict(B=4, C=3, H=4, W=2), "F.batch_norm (PyTorch's generic double backward)"),
]
