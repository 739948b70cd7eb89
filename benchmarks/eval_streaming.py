"""Evaluation at MSMT17's size: the full distance matrix beside streaming rank_features.

Problem: 11,659 queries x 82,161 gallery images (MSMT17's test split), 2,048-d float32
features, 3,060 identities over 15 cameras; features are noisy identity clusters (random
centres plus Gaussian noise), so the ranking is mediocre, like a domain-generalisation model's.
Two ways to the same numbers, each in its own child process (so that its peak resident memory
is the child's ``ru_maxrss``), launched one after the other by this one run:

- ``full``: today's path, ``pairwise_distance(qf, gf)`` (the whole (Q, G) float32 matrix)
  then ``evaluate_ranking``;
- ``streaming``: ``rank_features(qf, gf, ...)``, a block of queries at a time.

Each child builds the same problem from the same seed (the gallery in slices, so that building
it holds no second copy), records its resident memory before the timed call, times the call
once (a full-size call takes minutes; its process CPU time is recorded beside the wall time,
as it is less disturbed by other jobs on a shared machine), and prints its metrics with a hash
of the per-query AP; the parent checks that both children agree exactly. Targets: streaming
under 2.5 GB resident and no slower than the full path.

    OMP_NUM_THREADS=2 python -m benchmarks.eval_streaming --threads 2   # full size, minutes
    python -m benchmarks.eval_streaming --small      # 600 x 4,000 x 64: seconds, no JSON
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks._meta import write_results

ROOT = Path(__file__).resolve().parents[1]
# noise: standard deviation per dimension around unit-variance identity centres; at full size
# 3.7 gives about R-1 0.5 and mAP 0.13 (a 300-query probe), a weak domain-generalised model
FULL = {"num_q": 11659, "num_g": 82161, "dim": 2048, "num_ids": 3060, "num_cams": 15,
        "noise": 3.7}
SMALL = {"num_q": 600, "num_g": 4000, "dim": 64, "num_ids": 150, "num_cams": 15, "noise": 1.0}
GOAL_GB = 2.5


def problem(num_q: int, num_g: int, dim: int, num_ids: int, num_cams: int, noise: float,
            seed: int = 0):
    """Features and labels of a clustered ReID problem, built in place slice by slice."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_ids, dim, generator=g)
    q_pids = torch.randint(0, num_ids, (num_q,), generator=g)
    g_pids = torch.randint(0, num_ids, (num_g,), generator=g)
    q_cams = torch.randint(0, num_cams, (num_q,), generator=g)
    g_cams = torch.randint(0, num_cams, (num_g,), generator=g)
    feats = []
    for pids in (q_pids, g_pids):
        f = torch.empty(pids.numel(), dim)
        for s in range(0, pids.numel(), 4096):
            sl = slice(s, s + 4096)
            f[sl] = torch.randn(f[sl].shape, generator=g).mul_(noise).add_(centres[pids[sl]])
        feats.append(f)
    return feats[0], feats[1], q_pids, g_pids, q_cams, g_cams


def _rss_gb() -> float:
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    return kb / 2**20


def _cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def child(path: str, size: dict[str, int]) -> dict[str, Any]:
    """Run one path on the problem; the measurements as a dict (printed as JSON)."""
    from dgblocks.distances import pairwise_distance
    from dgblocks.eval import evaluate_ranking, rank_features

    prob = problem(**size)
    rss_setup = _rss_gb()
    t0, c0 = time.perf_counter(), _cpu_seconds()
    if path == "full":
        r = evaluate_ranking(pairwise_distance(prob[0], prob[1]), *prob[2:])
    else:
        r = rank_features(*prob)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {"path": path, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_gb": peak_gb,
            "rss_after_setup_gb": rss_setup, "mAP": r.mAP, "mINP": r.mINP,
            "R1": float(r.cmc[0]), "cmc": r.cmc.tolist(), "valid_queries": r.num_valid_queries,
            "ap_sha256": hashlib.sha256(r.ap.tobytes()).hexdigest()}


def run_child(path: str, small: bool, threads: int) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "benchmarks.eval_streaming", "--child", path,
           "--threads", str(threads)] + (["--small"] if small else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{path} child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="a seconds-long problem; no JSON")
    p.add_argument("--threads", type=int, default=2, help="torch and OpenMP threads (<= 2 here)")
    p.add_argument("--child", choices=("full", "streaming"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    size = SMALL if a.small else FULL
    torch.set_num_threads(a.threads)
    if a.child:
        print(json.dumps(child(a.child, size)), flush=True)
        return {}
    load_before = os.getloadavg()
    rows = [run_child(path, a.small, a.threads) for path in ("full", "streaming")]
    full, stream = rows
    same = all(full[k] == stream[k] for k in ("cmc", "mAP", "mINP", "ap_sha256"))
    if not same:
        raise SystemExit(f"mismatch: full {full['mAP']!r} vs streaming {stream['mAP']!r}")
    for r in rows:
        del r["cmc"]
    out = {"problem": size, "threads": a.threads,
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "identical_results": same,
           "goal_peak_rss_gb": GOAL_GB,
           "speedup": full["seconds"] / stream["seconds"],
           "cpu_speedup": full["cpu_seconds"] / max(stream["cpu_seconds"], 1e-9),
           "memory_ratio": full["peak_rss_gb"] / stream["peak_rss_gb"],
           "meets_goal": stream["peak_rss_gb"] < GOAL_GB and stream["seconds"] <= full["seconds"],
           "load_avg_1_5_15_before": list(load_before),
           "load_avg_1_5_15_after": list(os.getloadavg())}
    for r in rows:
        print(f"{r['path']:>9}: {r['seconds']:.2f} s ({r['cpu_seconds']:.1f} s CPU), peak RSS "
              f"{r['peak_rss_gb']:.2f} GB "
              f"(after building the problem {r['rss_after_setup_gb']:.2f} GB)")
    print(f"identical results: {same} (mAP {full['mAP']:.4f}, R1 {full['R1']:.4f}); speed-up "
          f"{out['speedup']:.2f}x; load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    if not a.small:
        print(f"wrote {write_results('eval_streaming', rows, out)}")
    return {"rows": rows, **out}


if __name__ == "__main__":
    main()
