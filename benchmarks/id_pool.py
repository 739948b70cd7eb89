"""IDPool at DDAN scale: 20,000 identities x 2048-D, batches of 64 (5 domains, k = 8).

Reports the pool's memory (all buffers) and the time per batch of ``update`` and ``topk``,
each beside a straightforward reference run in the same process:

- update: eq 6 applied sample by sample in a Python loop, then eq 7 on the touched rows;
- topk: recompute every $\\hat r$ from eq 7, normalise, score, mask with the central/peripheral
  rule and take the top k (what a first implementation does on every call).

    python -m benchmarks.id_pool
"""

from __future__ import annotations

import os

import torch

from benchmarks._meta import measure, summary, write_results
from dgblocks.memory import IDPool

N, D, G, B, K, CENTRAL = 20_000, 2048, 5, 64, 8, 4


def filled_pool() -> IDPool:
    pool = IDPool(num_ids=N, dim=D, num_domains=G, k=K, central=CENTRAL)
    g = torch.Generator().manual_seed(0)
    dom_of = torch.arange(N) % G
    for start in range(0, N, 2000):
        lab = torch.arange(start, min(start + 2000, N))
        pool.update(torch.randn(len(lab), D, generator=g), labels=lab, domains=dom_of[lab])
    pool.end_epoch()
    return pool


def update_reference(pool: IDPool, f: torch.Tensor, labels: torch.Tensor,
                     domains: torch.Tensor) -> None:
    with torch.no_grad():
        for row, lab, dom in zip(f, labels.tolist(), domains.tolist()):
            t = int(pool.counts[lab])
            pool.running[lab] = (t * pool.running[lab] + row) / (t + 1)
            pool.counts[lab] += 1
            pool.bank[lab] = pool.alpha * pool.prev[lab] + (1 - pool.alpha) * pool.running[lab]
            pool.seen[lab] = True
            pool.id_domain[lab] = dom


def topk_reference(pool: IDPool, f: torch.Tensor, domains: torch.Tensor,
                   labels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        active = (pool.counts > 0).unsqueeze(1)
        r_hat = torch.where(active, pool.alpha * pool.prev + (1 - pool.alpha) * pool.running,
                            pool.prev)
        sim = torch.nn.functional.normalize(f, dim=1) @ torch.nn.functional.normalize(
            r_hat, dim=1).t()
        pid_dom = pool.id_domain.unsqueeze(0)
        dom = domains.unsqueeze(1)
        own = torch.arange(N).unsqueeze(0) == labels.unsqueeze(1)
        allowed = torch.where(dom == CENTRAL, (pid_dom == dom) & ~own, pid_dom != dom)
        allowed &= pool.seen.unsqueeze(0)
        return sim.masked_fill(~allowed, float("-inf")).topk(K, dim=1).indices


def main() -> None:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    pool = filled_pool()
    mem_mb = sum(b.numel() * b.element_size() for b in pool.buffers()) / 2**20
    g = torch.Generator().manual_seed(1)
    f = torch.randn(B, D, generator=g)
    labels = torch.randint(0, N, (B,), generator=g)
    domains = labels % G
    ours = pool.topk(f, domains, labels=labels).index
    if not torch.equal(ours, topk_reference(pool, f, domains, labels)):
        raise SystemExit("topk disagrees with the reference")
    glb = dict(pool=pool, f=f, labels=labels, domains=domains, update_reference=update_reference,
               topk_reference=topk_reference)
    cases = [("update", "pool.update(f, labels=labels, domains=domains)", "dgblocks"),
             ("update", "update_reference(pool, f, labels, domains)", "per-sample loop"),
             ("topk", "pool.topk(f, domains, labels=labels)", "dgblocks"),
             ("topk", "topk_reference(pool, f, domains, labels)", "recompute r_hat")]
    rows = []
    for op, stmt, impl in cases:
        m = measure(stmt, glb, label="IDPool", sub_label=op, description=impl, min_run_time=3.0)
        rows.append({"op": op, "impl": impl, "batch": B, **summary(m)})
    extra = {"problem": {"num_ids": N, "dim": D, "domains": G, "batch": B, "k": K},
             "memory_mb": mem_mb,
             "load_average_1_5_15min_at_end": list(os.getloadavg()),
             "update_speedup": rows[1]["median_s"] / rows[0]["median_s"],
             "topk_speedup": rows[3]["median_s"] / rows[2]["median_s"]}
    path = write_results("id_pool", rows, extra)
    print(f"memory {mem_mb:.0f} MiB")
    for r in rows:
        print(f"{r['op']:<7} {r['impl']:<16} {1e3 * r['median_s']:.2f} ms / batch of {B}")
    print(f"load average {os.getloadavg()}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
