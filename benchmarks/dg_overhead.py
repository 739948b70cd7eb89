"""DG overhead per recipe: one training step with all of a method's blocks vs the plain step.

For the AGG baseline and the five methods (``recipes/*.py``), times one call of the recipe's
own ``train_step`` (model, losses and optimisers wired from the recipe's classes as its
``main`` does; a fixed random P x K batch, no data loading, augmentation off) beside the plain
step of the same backbone: forward, a linear ID classifier, cross-entropy, backward and an
Adam step. Setting of the issue: MobileNetV2 (width 1.0), B = 64, 256 x 128 images, 1,000
identities in 4 source domains. CDVM's model is written around a ResNet stem, so CDVM is timed
on ``resnet_tiny`` beside the plain step of ``resnet_tiny``.

A method may need more than one backbone pass per step by design (DIR-ReID's two encoders,
CDVM's meta-train and meta-test passes, episodic's frozen per-domain extractors, DDAN's re-run
mapping stage): ``passes`` counts them in plain steps (see ``passes_note`` of each row), and

    overhead_excl_passes = (DG step - passes x plain step) / plain step

is what the blocks add beyond those passes (goal of the issue: <= 0.10).

The process first makes glibc keep freed memory (``keep_freed_memory``, as the CUDA caching
allocator does on a GPU) and calls each step 3 times untimed: with glibc's defaults every
large tensor is a fresh ``mmap``, page faults grow faster than the working set, and DIR-ReID's
two-encoder step read +47 % instead of +19 % (``--system-allocator`` measures that setting).

    OMP_NUM_THREADS=2 python -m benchmarks.dg_overhead           # issue setting (recorded)
    OMP_NUM_THREADS=2 python -m benchmarks.dg_overhead --system-allocator --out dg_overhead_system
    python -m benchmarks.dg_overhead --quick                     # tiny sizes, seconds
    python -m benchmarks.dg_overhead --recipes ddan adin         # a subset
    python -m benchmarks.dg_overhead --gpu                       # CUDA, bf16 autocast

``--gpu`` (CUDA only) times every recipe at the papers' size twice, on MobileNetV2 1.0 and on
ResNet-50 (CDVM on ResNet-50 both times), 256 x 128, B = 64, under bf16 autocast, and writes
``dg_overhead_gpu.json``.

Writes ``benchmarks/results/dg_overhead.json`` (``dg_overhead_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch

from benchmarks._meta import keep_freed_memory, write_results
from benchmarks.dg_overhead_cases import GPU, ISSUE, QUICK, RECIPES, Case, Setting
from benchmarks.dg_overhead_recipes import BUILDERS

GOAL = 0.10  # overhead beyond the method's own backbone passes (issue 11)

NOT_PER_STEP = {  # compute a method needs outside its training step (not timed here)
    "ddan": "stage 1: a baseline trained for the central domain, source features, W1 matrix",
    "episodic": "stage 1: one triplet-trained extractor per source domain (frozen after)",
    "adin": "warm-up steps, f_N-only steps on frozen f_E, identity validation every N steps",
    "cdvm": "none", "dir_reid": "none", "baseline": "none",
}


class _CPUClock:
    """Calls ``fn`` and keeps the process CPU seconds (all threads) of every call: less
    disturbed than wall time by other jobs on a shared machine."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.cpu = fn, []

    def __call__(self) -> Any:
        c0 = time.process_time()
        out = self.fn()
        self.cpu.append(time.process_time() - c0)
        return out

    def median(self) -> float:
        """Median CPU seconds per call, the warm-up call left out when there are others."""
        return statistics.median(self.cpu[1:] or self.cpu)


def _timed(step: Any) -> float:
    """Wall seconds of one call (device synchronised before and after)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - t0


def run_case(case: Case, *, min_run_time: float, warmup: int = 1,
             rounds: int = 5) -> dict[str, Any]:
    """Time the plain step and the DG step of one case, interleaved; return its row.

    ``warmup`` calls of each step come first (the case's ``ablations``, the DG step with blocks
    switched off, once). Then rounds of (one plain call, one DG call, one call of each
    ablation), each call timed alone (a step takes 0.5-15 s: one call is far above timer
    resolution; ``torch.utils.benchmark`` would add two warm-up calls per measurement), until
    the DG step has had ``min_run_time`` seconds and at least ``rounds`` rounds: a slow drift
    of the machine's speed hits all steps of a round alike, and each ratio is the median of
    the per-round ratios. (Timing the two steps back to back in blocks let the first case of
    a process read 0.73-0.81 of its plain step.)"""
    load = os.getloadavg()[0]
    for i in range(warmup):  # first calls of a process map fresh memory (page faults)
        for step in (case.plain_step, case.dg_step, *(case.ablations.values() if i == 0 else ())):
            step()
    plain_clock, dg_clock = _CPUClock(case.plain_step), _CPUClock(case.dg_step)
    t_plain: list[float] = []
    t_dg: list[float] = []
    t_abl: dict[str, list[float]] = {name: [] for name in case.ablations}
    while len(t_plain) < rounds or sum(t_dg) < min_run_time:
        for clock, times in ((plain_clock, t_plain), (dg_clock, t_dg)):
            times.append(_timed(clock))
        for name, step in case.ablations.items():  # same rounds: same drift
            t_abl[name].append(_timed(step))
    q = statistics.quantiles
    plain, dg = ({"median_s": statistics.median(t), "iqr_s": q(t, n=4)[2] - q(t, n=4)[0],
                  "runs": len(t)} for t in (t_plain, t_dg))
    per_round = [d / p for d, p in zip(t_dg, t_plain)]
    cpu_round = [d / p for d, p in zip(dg_clock.cpu, plain_clock.cpu)]
    ratio = statistics.median(per_round)
    cpu_ratio = statistics.median(cpu_round)
    excl = ratio - case.passes
    return {"recipe": case.recipe, "backbone": case.backbone,
            "plain_median_s": plain["median_s"], "plain_iqr_s": plain["iqr_s"],
            "plain_runs": plain["runs"], "dg_median_s": dg["median_s"], "dg_iqr_s": dg["iqr_s"],
            "dg_runs": dg["runs"], "ratio": ratio, "passes": case.passes,
            "passes_note": case.passes_note, "passes_detail": case.passes_detail,
            "ablation_ratios": {name: statistics.median(a / p for a, p in zip(t, t_plain))
                                for name, t in t_abl.items()},
            "overhead_excl_passes": excl,
            "meets_goal": excl <= GOAL, "plain_cpu_s": plain_clock.median(),
            "dg_cpu_s": dg_clock.median(), "cpu_ratio": cpu_ratio,
            "overhead_excl_passes_cpu": cpu_ratio - case.passes,
            "not_per_step": NOT_PER_STEP[case.recipe],
            "ratio_per_round": per_round, "timing": "interleaved rounds (plain, DG)",
            "load_1min_before": load, "load_1min_after": os.getloadavg()[0]}


def _amp(step: Any) -> Any:
    def wrapped() -> Any:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return step()
    return wrapped


def run(recipes: Sequence[str], setting: Setting, *, min_run_time: float, warmup: int = 1,
        rounds: int = 5, verbose: bool = False, gpu: bool = False) -> list[dict[str, Any]]:
    """Build and time every recipe in ``recipes`` at ``setting``; one row each (``gpu``: on
    CUDA under bf16 autocast)."""
    unknown = [r for r in recipes if r not in BUILDERS]
    if unknown:
        raise ValueError(f"recipes: expected names from {', '.join(RECIPES)}, got {unknown}")
    if min_run_time <= 0:
        raise ValueError(f"min_run_time: expected a value > 0, got {min_run_time}")
    rows = []
    for name in recipes:
        torch.manual_seed(0)
        with torch.device("cuda" if gpu else "cpu"):
            case = BUILDERS[name](setting)
            if gpu:
                case.plain_step, case.dg_step = _amp(case.plain_step), _amp(case.dg_step)
                case.ablations = {k: _amp(v) for k, v in case.ablations.items()}
            rows.append(run_case(case, min_run_time=min_run_time, warmup=warmup, rounds=rounds)
                        | {"device": "cuda" if gpu else "cpu", "amp": "bf16" if gpu else "none"})
        if verbose:
            print(format_row(rows[-1]), flush=True)
        del case
        gc.collect()
    return rows


def format_row(row: dict[str, Any]) -> str:
    """One line of the console table."""
    return (f"{row['recipe']:<9} {row['backbone']:<12} {row['plain_median_s']:9.3f} "
            f"{row['dg_median_s']:9.3f} {row['ratio']:6.2f} {row['passes']:6.2f} "
            f"{row['overhead_excl_passes']:+8.1%}  {'yes' if row['meets_goal'] else 'no'}"
            f"   (CPU time: {row['cpu_ratio']:.2f}, {row['overhead_excl_passes_cpu']:+.1%})")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (a test), min_run_time 0.05")
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), metavar="RECIPE",
                   help=f"subset of: {', '.join(RECIPES)}")
    p.add_argument("--min-run-time", type=float, default=None,
                   help="seconds per measurement after the warm-up calls (default 10; a step "
                        "at the issue setting takes 10-60 s on 2 CPU cores: 1-2 calls)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                   help="torch threads (default: OMP_NUM_THREADS or 2)")
    p.add_argument("--out", default=None, help="results name (default dg_overhead[_quick])")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed calls of each step first (default 3; 0 with --quick): the "
                        "heap grows to a DG step's working set over 2-3 calls")
    p.add_argument("--rounds", type=int, default=None,
                   help="at least this many timed rounds (default 5; 3 with --quick)")
    p.add_argument("--system-allocator", action="store_true",
                   help="leave glibc malloc as it is (default: keep freed memory, see "
                        "benchmarks/_meta.py keep_freed_memory)")
    p.add_argument("--gpu", action="store_true", help="CUDA, papers' size, bf16 autocast")
    a = p.parse_args(argv)
    if a.gpu and not torch.cuda.is_available():
        raise SystemExit("dg_overhead --gpu: no CUDA device")
    if a.threads < 1:
        raise ValueError(f"--threads: expected >= 1, got {a.threads}")
    torch.set_num_threads(a.threads)
    allocator = "system allocator" if a.system_allocator else keep_freed_memory()
    warmup = a.warmup if a.warmup is not None else (0 if a.quick else 3)
    rounds = a.rounds if a.rounds is not None else (3 if a.quick else 5)
    if warmup < 0:
        raise ValueError(f"--warmup: expected >= 0, got {warmup}")
    if rounds < 1:
        raise ValueError(f"--rounds: expected >= 1, got {rounds}")
    settings = [QUICK] if a.quick else list(GPU) if a.gpu else [ISSUE]
    mrt = a.min_run_time if a.min_run_time is not None else (
        0.05 if a.quick else 1.0 if a.gpu else 10.0)
    load0, t0 = list(os.getloadavg()), time.perf_counter()
    print(f"{'recipe':<9} {'backbone':<12} {'plain s':>9} {'DG s':>9} {'ratio':>6} "
          f"{'passes':>6} {'excl.':>8}  <= {GOAL:.0%}")
    rows = [r for s in settings for r in run(a.recipes, s, min_run_time=mrt, warmup=warmup,
                                              rounds=rounds, verbose=True, gpu=a.gpu)]
    name = "quick" if a.quick else "gpu" if a.gpu else "issue"
    extra = {"setting": {**asdict(settings[0]), "name": name},
             "settings": [asdict(s) for s in settings],
             "goal_overhead_excl_passes": GOAL, "min_run_time_s": mrt,
             "warmup_calls": warmup, "min_rounds": rounds, "allocator": allocator,
             "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
             "augmentation": "off (identity): the step times the model, losses and optimiser",
             "wall_s": time.perf_counter() - t0, "load_average_1_5_15min_at_start": load0,
             "load_average_1_5_15min_at_end": list(os.getloadavg()),
             "recipes_meeting_goal": [r["recipe"] for r in rows if r["meets_goal"]]}
    path = write_results(a.out or ("dg_overhead" if name == "issue" else f"dg_overhead_{name}"),
                         rows, extra)
    print(f"load average {os.getloadavg()}; {extra['wall_s']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
