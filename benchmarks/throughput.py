"""End-to-end training throughput (images/s) of every recipe, beside the AGG baseline.

Runs each method of the leaderboard (``python -m scripts.launch leaderboard``) exactly as
the leaderboard does (its flags for
N steps: same backbone ``resnet_tiny``, batch 32, embedded synthetic data, all sources ->
unseen targets), one after the other, as subprocesses with ``--threads`` threads and
``--no-plots``, with fresh stage-1 caches. From each results JSON:

    images_per_s = N x batch / train_seconds

``train_seconds`` (``dgblocks.engine``) runs from the start of the run to the start of the
evaluation: building the synthetic benchmark, the models, every training phase and the
checkpoints. So it includes what a method needs beyond its N steps (DDAN's stage-1 baseline
and W1 matrix; episodic's per-domain extractors and F's initialisation; ADIN's f_N steps and
identity validations): the price of the method, not only of its step. ``data_seconds``, the
time to build the benchmark measured once in this process, gives a second figure without it.
``ratio_vs_baseline`` = images_per_s / the AGG baseline's (the issue's goal, >= 0.9, is for a
GPU; these are CPU numbers).

    OMP_NUM_THREADS=2 python -m benchmarks.throughput             # N = 30 steps, ~3-8 min
    OMP_NUM_THREADS=1 python -m benchmarks.throughput --threads 1   # the recorded run
    python -m benchmarks.throughput --steps 10 --methods DDAN     # a subset
    python -m benchmarks.throughput --device cuda --amp bf16 --out throughput_gpu
    python -m benchmarks.throughput --device cuda --amp bf16 --compile --out throughput_gpu_compile

On a GPU the recipes augment on the device (``dgblocks.data.transforms`` on CUDA tensors).

Writes ``benchmarks/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._meta import write_results

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.90  # images/s of a method vs the plain backbone (issue 11, on a GPU)
BASELINE = "baseline (AGG)"


def leaderboard() -> Any:
    """``scripts.launch.leaderboard`` (its METHODS and jobs define the setting)."""
    from scripts.launch import leaderboard as lb

    return lb


def data_seconds(seed: int = 0) -> float:
    """Seconds to build the embedded synthetic benchmark (part of every train_seconds)."""
    from dgblocks.protocols import build_benchmark

    t0 = time.perf_counter()
    build_benchmark(data="synthetic", seed=seed)
    return time.perf_counter() - t0


def make_row(name: str, result: dict[str, Any], *, steps: int, batch: int, wall_s: float,
             data_s: float) -> dict[str, Any]:
    """One row from a recipe's results JSON (``train_seconds``) and its process wall time."""
    if steps < 1 or batch < 1:
        raise ValueError(f"steps, batch: expected >= 1, got {steps}, {batch}")
    train = float(result["train_seconds"])
    if train <= 0:
        raise ValueError(f"result: expected train_seconds > 0, got {train}")
    images = steps * batch
    return {"method": name, "recipe": result.get("recipe"), "steps": steps, "batch": batch,
            "images": images, "train_seconds": train, "eval_seconds": result.get("eval_seconds"),
            "process_wall_s": wall_s, "images_per_s": images / train,
            "images_per_s_excl_data": images / max(train - data_s, 1e-9),
            "average_mAP": result.get("summary", {}).get("average", {}).get("mAP")}


def add_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``ratio_vs_baseline`` (and without data generation) against the AGG baseline's row."""
    base = next((r for r in rows if r["method"] == BASELINE), None)
    for r in rows:
        r["ratio_vs_baseline"] = r["images_per_s"] / base["images_per_s"] if base else None
        r["ratio_vs_baseline_excl_data"] = (r["images_per_s_excl_data"]
                                            / base["images_per_s_excl_data"] if base else None)
        r["meets_gpu_goal_on_cpu"] = (r["ratio_vs_baseline"] >= GOAL) if base else None
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: see the module docstring."""
    lb = leaderboard()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="N, the leaderboard's step budget")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--backbone", default="resnet_tiny")
    trained = [n for n in lb.METHODS if n != "untrained (reference)"]  # that one has no steps
    p.add_argument("--methods", nargs="+", default=trained, choices=trained, metavar="METHOD",
                   help=f"subset of: {', '.join(lb.METHODS)}")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--out", default="throughput", help="results name under benchmarks/results/")
    p.add_argument("--device", default="cpu", help="passed to every recipe (cuda: a GPU run)")
    p.add_argument("--amp", default="none", choices=("none", "bf16"))
    p.add_argument("--compile", action="store_true", help="every recipe with --compile "
                   "(CDVM with --first-order: torch.compile has no double backward)")
    a = p.parse_args(argv)
    if a.threads < 1:
        raise ValueError(f"--threads: expected >= 1, got {a.threads}")
    load0, t0 = list(os.getloadavg()), time.perf_counter()
    data_s = data_seconds()
    rows, failed = [], {}
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(a.threads)}
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        flags = f"--amp {a.amp}" + (" --compile" if a.compile else "")
        args = lb.parse(["--steps", str(a.steps), "--batch-size", str(a.batch_size),
                         "--backbone", a.backbone, "--seeds", "0", "--out", tmp,
                         "--threads", str(a.threads), "--device", a.device,
                         "--recipe-flags", flags, "--methods", *a.methods])
        for job in lb.jobs(args):
            cmd = job.command() + (["--first-order"] if a.compile and job.name == "CDVM" else [])
            w0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            wall = time.perf_counter() - w0
            if proc.returncode != 0:
                failed[job.name] = proc.stderr[-2000:]
                print(f"{job.name}: failed\n{proc.stderr[-2000:]}", flush=True)
                continue
            result = json.loads(job.out.read_text())
            rows.append(make_row(job.name, result, steps=a.steps, batch=a.batch_size,
                                 wall_s=wall, data_s=data_s))
            print(f"{job.name:<16} {rows[-1]['train_seconds']:8.1f} s "
                  f"{rows[-1]['images_per_s']:8.1f} img/s  (process {wall:.0f} s)", flush=True)
    rows = add_ratios(rows)
    extra = {"setting": {"steps": a.steps, "batch_size": a.batch_size, "backbone": a.backbone,
                         "threads": a.threads, "data": "synthetic", "seeds": [0],
                         "flags": {n: [str(f) for f in lb.METHODS[n][1](a.steps)]
                                   for n in a.methods},
                         "extra_compute": {n: lb.EXTRA[n] for n in a.methods}},
             "data_seconds": data_s, "goal_ratio_vs_baseline_gpu": GOAL, "device": a.device,
             "amp": a.amp, "compile": a.compile,
             "failed": failed, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
             "wall_s": time.perf_counter() - t0, "load_average_1_5_15min_at_start": load0,
             "load_average_1_5_15min_at_end": list(os.getloadavg())}
    path = write_results(a.out, rows, extra)
    print(f"load average {os.getloadavg()}; {extra['wall_s']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
