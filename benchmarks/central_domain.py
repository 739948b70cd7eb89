"""central_domain on 5 domains x 20,000 x 1,280-D features (MobileNetV2-sized), every method.

Features: non-negative (post-ReLU) Gaussian embeddings, one mean per domain, shifted from a
shared mean by different amounts, so that the domains sit at different distances from each
other as in DDAN Table 2. Reports:

- the time of ``central_domain`` per method: ``sliced`` on every sample (200 projections),
  ``sinkhorn`` and ``emd`` on their default subsample (2,000 per domain); the fast methods are
  timed with ``torch.utils.benchmark``, exact EMD once (it takes tens of seconds);
- beside ``sliced``, the reference POT call ``ot.sliced_wasserstein_distance`` per pair (it
  re-projects both domains for each of the 10 pairs, where dgblocks projects each domain once);
- whether ``sinkhorn`` and ``sliced`` choose the same central domain as exact EMD, on 3 random
  subsamples of 1,000 per domain (same subsample for the three methods).

    python -m benchmarks.central_domain
"""

from __future__ import annotations

import itertools
import os
import time

import ot
import torch

from benchmarks._meta import measure, summary, write_results
from dgblocks.domains import central_domain, central_from_distances, wasserstein_matrix

G, N, D = 5, 20_000, 1280
SHIFTS = [0.5, 0.45, 0.9, 0.8, 0.25]  # distance of each domain's mean from the shared mean


def features(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(D, generator=g)
    out = []
    for s in SHIFTS:
        direction = torch.nn.functional.normalize(torch.randn(D, generator=g), dim=0)
        mean = base + s * direction * D**0.5
        out.append(torch.relu(mean + torch.randn(N, D, generator=g)))
    return out


def pot_sliced_reference(feats: list[torch.Tensor], n_projections: int = 200) -> int:
    xs = [torch.nn.functional.normalize(f, dim=1).numpy() for f in feats]
    d = torch.zeros(G, G, dtype=torch.float64)
    for a, b in itertools.combinations(range(G), 2):
        d[a, b] = d[b, a] = float(ot.sliced_wasserstein_distance(
            xs[a], xs[b], n_projections=n_projections, p=1, seed=0))
    return central_from_distances(d)


def cpu_seconds(fn, *args, **kwargs) -> tuple[float, float]:
    """Wall and process-CPU seconds of one call (CPU time is less hurt by a loaded machine)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn(*args, **kwargs)
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    feats = features()
    rows = []
    glb = dict(central_domain=central_domain, feats=feats)
    for method in ("sliced", "sinkhorn"):
        m = measure(f"central_domain(feats, method={method!r})", glb, label="central_domain",
                    sub_label=f"{G}x{N}x{D}", description=method, min_run_time=10.0)
        res = central_domain(feats, method=method)
        wall, cpu = cpu_seconds(central_domain, feats, method=method)
        rows.append({"method": method, "samples_per_domain": N if method == "sliced" else 2000,
                     "central": res.index, **summary(m), "one_run_wall_s": wall,
                     "one_run_cpu_s": cpu})
    m = measure("pot_sliced_reference(feats)", dict(pot_sliced_reference=pot_sliced_reference,
                                                    feats=feats),
                label="central_domain", sub_label=f"{G}x{N}x{D}",
                description="POT sliced per pair", min_run_time=10.0)
    rows.append({"method": "reference: ot.sliced_wasserstein_distance per pair",
                 "samples_per_domain": N, "central": pot_sliced_reference(feats), **summary(m)})
    w0, c0 = time.perf_counter(), time.process_time()
    res = central_domain(feats, method="emd")
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rows.append({"method": "emd", "samples_per_domain": 2000, "central": res.index,
                 "median_s": wall, "iqr_s": None, "runs": 1, "one_run_wall_s": wall,
                 "one_run_cpu_s": cpu})

    agreement = []
    for seed in range(3):
        sub = {m: wasserstein_matrix(feats, method=m, max_samples=1000, seed=seed)
               for m in ("emd", "sinkhorn", "sliced")}
        chosen = {m: central_from_distances(d) for m, d in sub.items()}
        agreement.append({"seed": seed, "max_samples": 1000, **{f"central_{m}": c
                                                                for m, c in chosen.items()},
                          "sinkhorn_agrees": chosen["sinkhorn"] == chosen["emd"],
                          "sliced_agrees": chosen["sliced"] == chosen["emd"],
                          "row_sums_emd": sub["emd"].sum(1).tolist()})
    fast = max(r["median_s"] for r in rows if r["method"] in ("sliced", "sinkhorn"))
    extra = {"problem": {"domains": G, "samples": N, "dim": D, "shifts": SHIFTS},
             "load_average_1_5_15min_at_end": list(os.getloadavg()),
             "agreement_with_emd_on_subsamples": agreement,
             "goal_fast_methods_under_10s": fast <= 10.0,
             "sliced_speedup_vs_pot_per_pair": rows[2]["median_s"] / rows[0]["median_s"]}
    path = write_results("central_domain", rows, extra)
    for r in rows:
        cpu = r.get("one_run_cpu_s")
        cpu_txt = "" if cpu is None else f"  (one run: cpu {cpu:.2f} s)"
        print(f"{r['method']:<52} central={r['central']}  {r['median_s']:.2f} s{cpu_txt}")
    print(f"load average {os.getloadavg()}")
    for a in agreement:
        print(a)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
