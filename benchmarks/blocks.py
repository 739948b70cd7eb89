"""Microbenchmarks of every public block, each beside a naive reference timed in the same run.

For every block of ``dgblocks.losses`` and ``dgblocks.layers`` (plus ``distances``,
``sampling.BackdoorAdjustment`` and ``memory.IDPool``) at ReID sizes (batches of 64 and 256,
256- and 2048-D features, 18,530 identities, (64, C, 64, 32) feature maps), times one forward
pass plus, where the block has inputs or parameters requiring grad, one backward pass, with
``torch.utils.benchmark`` (median and IQR). Beside it, a reference: the plain torch formula,
the library function (``F.cross_entropy``, ``torch.cdist``) or the Python loop a first
implementation would use; ``ratio = reference / ours`` (> 1: ours is faster). Before timing,
both run once on the same inputs and ``max_rel_diff`` records how far apart their outputs and
gradients are (``max|ours - ref| / max|ref|``).

    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE python -m benchmarks.blocks   # full, ~10 min
    python -m benchmarks.blocks --quick                      # first size of each block only
    python -m benchmarks.blocks --quick --only Triplet       # blocks whose name contains it

Writes ``benchmarks/results/<out>.json`` (``blocks``; ``blocks_quick`` with ``--quick``), one
row per block and size; the row format is in benchmarks/README.md and in :data:`ROW_FORMAT`.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from benchmarks import blocks_layers, blocks_losses, blocks_misc
from benchmarks._meta import measure, summary, write_results
from benchmarks.blocks_case import Spec, agreement, step

SPECS: list[Spec] = [*blocks_losses.SPECS, *blocks_layers.SPECS, *blocks_misc.SPECS]

ROW_FORMAT = {
    "block": "public name under dgblocks (losses.TripletLoss, memory.IDPool.topk, ...)",
    "case": "the sizes as text, e.g. 'B=64 D=256'",
    "sizes": "the same sizes as a dict",
    "pass": "'forward+backward' or 'forward' (no input or parameter requires grad)",
    "ours_median_s": "median seconds per call of our block",
    "ours_iqr_s": "interquartile range of those seconds",
    "reference": "what the reference is, in words; null when there is none",
    "reference_median_s": "median seconds per call of the reference; null without one",
    "reference_iqr_s": "interquartile range; null without a reference",
    "ratio": "reference_median_s / ours_median_s (> 1: ours faster); null without one",
    "ours_cpu_s": "process CPU seconds per call (all threads), from a separate short loop",
    "reference_cpu_s": "the same for the reference; null without one",
    "cpu_ratio": "reference_cpu_s / ours_cpu_s: less hurt by other processes than ratio",
    "max_rel_diff": "max|ours - ref| / max|ref| over outputs and gradients; null without one",
}


def _cpu_per_call(fn: Callable[[], Any], leaves: Sequence[torch.Tensor],
                  seconds: float) -> float:
    # Process CPU time is less disturbed than wall time by other jobs on a shared machine.
    n, w0, c0 = 0, time.perf_counter(), time.process_time()
    while n < 1 or time.perf_counter() - w0 < seconds:
        step(fn, leaves)
        n += 1
    return (time.process_time() - c0) / n


def _case_text(size: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in size.items()) or "-"


def run(specs: Sequence[Spec], *, mode: str = "full", min_run_time: float = 1.0,
        verbose: bool = False) -> list[dict[str, Any]]:
    """Time every spec at its sizes (``mode``: ``"full"``, ``"quick"`` or ``"tiny"``)."""
    if mode not in ("full", "quick", "tiny"):
        raise ValueError(f"mode: expected 'full', 'quick' or 'tiny', got {mode!r}")
    rows = []
    for spec in specs:
        sizes = [spec.tiny] if mode == "tiny" else list(spec.sizes[:1] if mode == "quick"
                                                        else spec.sizes)
        for size in sizes:
            case = spec.build(**size)
            diff = agreement(case)
            glb = {"step": step, "fn": case.ours, "leaves": case.leaves}
            ours = summary(measure("step(fn, leaves)", glb, label=spec.block,
                                   sub_label=_case_text(size), description="dgblocks",
                                   min_run_time=min_run_time))
            ours["cpu_s"] = _cpu_per_call(case.ours, case.leaves, 0.3 * min_run_time)
            ref = None
            if case.reference is not None:
                glb = {"step": step, "fn": case.reference, "leaves": case.leaves}
                ref = summary(measure("step(fn, leaves)", glb, label=spec.block,
                                      sub_label=_case_text(size), description="reference",
                                      min_run_time=min_run_time))
                ref["cpu_s"] = _cpu_per_call(case.reference, case.leaves, 0.3 * min_run_time)
            row = {"block": spec.block, "case": _case_text(size), "sizes": dict(size),
                   "pass": "forward+backward" if case.leaves else "forward",
                   "ours_median_s": ours["median_s"], "ours_iqr_s": ours["iqr_s"],
                   "reference": spec.reference if ref is not None else None,
                   "reference_median_s": ref["median_s"] if ref else None,
                   "reference_iqr_s": ref["iqr_s"] if ref else None,
                   "ratio": ref["median_s"] / ours["median_s"] if ref else None,
                   "ours_cpu_s": ours["cpu_s"],
                   "reference_cpu_s": ref["cpu_s"] if ref else None,
                   "cpu_ratio": ref["cpu_s"] / ours["cpu_s"] if ref else None,
                   "max_rel_diff": diff}
            rows.append(row)
            if verbose:
                print(_format(row), flush=True)
            del case
            gc.collect()
    return rows


def _format(row: dict[str, Any]) -> str:
    ref = row["reference_median_s"]
    ref_txt = f"{1e3 * ref:10.3f}" if ref is not None else f"{'-':>10}"
    ratio = f"{row['ratio']:7.2f}" if row["ratio"] is not None else f"{'-':>7}"
    cpu = f"{row['cpu_ratio']:7.2f}" if row["cpu_ratio"] is not None else f"{'-':>7}"
    diff = f"{row['max_rel_diff']:.1e}" if row["max_rel_diff"] is not None else "-"
    return (f"{row['block']:<42} {row['case']:<24} {1e3 * row['ours_median_s']:10.3f}"
            f" {ref_txt} {ratio} {cpu}  {diff}")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="first (smallest) size of each block, min_run_time 0.05 s")
    parser.add_argument("--out", default=None,
                        help="results name under benchmarks/results/ (default: blocks or"
                             " blocks_quick)")
    parser.add_argument("--only", default=None, help="blocks whose name contains this text")
    parser.add_argument("--min-run-time", type=float, default=None,
                        help="seconds per measurement (default 1.0, 0.05 with --quick)")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    min_run_time = args.min_run_time if args.min_run_time is not None else (
        0.05 if args.quick else 1.0)
    if min_run_time <= 0:
        raise ValueError(f"--min-run-time: expected a value > 0, got {min_run_time}")
    specs = [s for s in SPECS if args.only is None or args.only in s.block]
    if not specs:
        raise ValueError(f"--only: no block name contains {args.only!r}")
    load_start, t0 = list(os.getloadavg()), time.perf_counter()
    print(f"{'block':<42} {'case':<24} {'ours ms':>10} {'ref ms':>10} {'ratio':>7}"
          f" {'cpu':>7}  max rel diff")
    rows = run(specs, mode="quick" if args.quick else "full", min_run_time=min_run_time,
               verbose=True)
    extra = {"mode": "quick" if args.quick else "full", "min_run_time_s": min_run_time,
             "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
             "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
             "wall_s": time.perf_counter() - t0,
             "load_average_1_5_15min_at_start": load_start,
             "load_average_1_5_15min_at_end": list(os.getloadavg()),
             "no_reference": sorted({r["block"] for r in rows if r["reference"] is None}),
             "row_format": ROW_FORMAT}
    path = write_results(args.out or ("blocks_quick" if args.quick else "blocks"), rows, extra)
    print(f"load average {os.getloadavg()}; {extra['wall_s']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
