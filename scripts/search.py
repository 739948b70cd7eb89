"""A fair comparison: the same hyper-parameter search for every method (AGG included), model
selection on the sources' held-out identities, then the selected settings over seeds, on
Optuna (Gulrajani & Lopez-Paz 2021's protocol, for ReID).

    python scripts/search.py                          # the whole protocol: search, seeds, page
    python scripts/search.py --quick                  # the 15-minute version
    python scripts/search.py --smoke                  # seconds: the whole path on tiny data
    python scripts/search.py --methods AGG DDAN --trials 12 --workers 2
    python scripts/search.py --storage sqlite:////shared/s.db --workers 8   # many machines
    python scripts/search.py --data real --data-root DIR --protocol protocol2:M

1. search: per method and view (``paper``: as its paper built it; ``agg``: its DG terms on
   AGG's base), an Optuna study (SQLite under ``--out`` by default; any RDB URL or a journal
   file shares it between machines). ``--trials`` is the study's total, whoever runs it; a
   killed search resumes and repeats nothing finished. Each trial trains for ``--steps``,
   reports the source-validation mAP every ``--val-every`` steps (successive halving prunes
   the hopeless ones) and is scored by its final source-validation mAP.
2. seeds: the selected setting of every study over ``--seeds`` (and each method's untrained
   network), as subprocesses, resumable.
3. the page: ``docs/results/leaderboard.md`` (``--md``) with the search spaces, trials,
   selected settings, source-val and target scores, the paired gap to AGG with 95% intervals,
   the oracle (target-selected) beside as an upper bound, and the Optuna plots.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python scripts/search.py`: recipes and scripts importable

from scripts.launch.leaderboard import CDVM_STEPS, STEPS  # noqa: E402
from scripts.launch.registry import BY_NAME, REGISTRY  # noqa: E402

QUICK = 100  # --quick: steps of every method but CDVM, which gets fewer (its meta step costs
QUICK_CDVM = 42  # about 11 AGG steps) so that the whole quick path stays under 15 minutes


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=[e.name for e in REGISTRY],
                   choices=list(BY_NAME), metavar="METHOD")
    p.add_argument("--views", nargs="+", default=["paper", "agg"], choices=("paper", "agg"))
    p.add_argument("--trials", type=int, default=None, help="trials per study, its total "
                   "(default 10; quick 2; smoke 2)")
    p.add_argument("--steps", type=int, default=None, help="the budget: steps of every method "
                   f"(default {STEPS}: where the curves flatten; quick {QUICK}; smoke 6)")
    p.add_argument("--val-every", type=int, default=0, help="source-val checks (0: steps/4)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds of the selected "
                   "settings (default 0-4; quick 0 1; smoke 0)")
    p.add_argument("--workers", type=int, default=2, help="processes here (one thread each)")
    p.add_argument("--storage", default="", help="Optuna storage URL or journal file")
    p.add_argument("--out", type=Path, default=Path("runs/search"))
    p.add_argument("--md", type=Path, default=None, help="page (default docs/results/"
                   "leaderboard.md; smoke and quick: <out>/leaderboard.md)")
    p.add_argument("--data", default="synthetic", choices=("synthetic", "real"))
    p.add_argument("--data-root", default="")
    p.add_argument("--protocol", default="")
    p.add_argument("--source-val-ids", type=int, default=100, help="real data: identities "
                   "held out of the sources for validation (selection)")
    p.add_argument("--backbone", default="resnet_tiny")
    p.add_argument("--batch-size", type=int, default=None, help="default 64; smoke 16")
    p.add_argument("--quick", action="store_true", help="the 15-minute version")
    p.add_argument("--smoke", action="store_true", help="seconds: tiny data, 2 trials, 1 seed")
    p.add_argument("--no-search", action="store_true", help="only seeds and page")
    p.add_argument("--curves", type=int, default=0, metavar="N", help="instead: learning "
                   "curves of every method at its defaults for N steps (page --md, default "
                   "docs/results/curves.md)")
    p.add_argument("--cdvm-steps", type=int, default=None, help="CDVM's budget (default 0: "
                   f"--steps, as every method; quick {QUICK_CDVM}: each of its meta steps costs "
                   "about 11 AGG steps)")
    a = p.parse_args(argv)
    smoke = {"trials": 2, "steps": 6, "seeds": [0], "batch_size": 16, "cdvm_steps": 0}
    quick = {"trials": 2, "steps": QUICK, "seeds": [0, 1], "batch_size": 64,
             "cdvm_steps": QUICK_CDVM}
    full = {"trials": 10, "steps": STEPS, "seeds": [0, 1, 2, 3, 4], "batch_size": 64,
            "cdvm_steps": CDVM_STEPS}
    mode = smoke if a.smoke else quick if a.quick else full
    for k, v in mode.items():       # a flag given on the command line wins
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.trials < 1 or a.steps < 1 or a.workers < 1:
        raise SystemExit("--trials, --steps, --workers: expected >= 1")
    a.val_every = a.val_every or max(1, a.steps // 4)
    page = "curves.md" if a.curves else "leaderboard.md"
    a.md = a.md or (a.out / page if a.smoke or a.quick else ROOT / "docs" / "results" / page)
    return a


def spec_of(a: argparse.Namespace) -> dict:
    """What every run shares (data, backbone, batch) and the search's settings."""
    common = ["--backbone", a.backbone, "--batch-size", str(a.batch_size), "--data", a.data]
    if a.data == "real":
        common += ["--data-root", a.data_root, "--source-val-ids", str(a.source_val_ids)]
        common += ["--protocol", a.protocol] if a.protocol else []
    common += ["--smoke"] if a.smoke else []
    return {"common": common, "steps": a.steps, "val_every": a.val_every, "trials": a.trials,
            "out": str(a.out), "seed": 0, "cdvm_steps": a.cdvm_steps or a.steps}


def main(argv: list[str] | None = None) -> dict:
    from scripts.launch.search_page import final_runs, write_page
    from scripts.launch.search_study import search

    a = parse(argv)
    spec, t0 = spec_of(a), time.time()
    cmd = " ".join(["python scripts/search.py", *(argv if argv is not None else sys.argv[1:])])
    if a.curves:
        from scripts.launch.curves import run_curves, summary, write_curves

        files = run_curves(a.methods, a.curves, spec, a.workers,
                           cdvm_steps=a.cdvm_steps or None)
        print("flat from:", summary(write_curves(files, a.md, cmd)))
        return {}
    studies = {}
    for name in a.methods:
        for view in a.views:
            if view not in BY_NAME[name].views or BY_NAME[name].views[view] is None:
                continue                        # e.g. DDAN's own base is AGG's
            if a.no_search:
                from scripts.launch.search_study import storage, study

                studies[(name, view)] = study(BY_NAME[name], view,
                                              storage(a.storage, a.out))
            else:
                studies[(name, view)] = search(name, view, spec, a.storage, a.workers)
    runs = final_runs(studies, spec, a.seeds, a.workers)
    write_page(a.md, studies, runs, spec, a.seeds, cmd, wall=time.time() - t0)
    print(f"wrote {a.md} ({time.time() - t0:.0f} s)")
    return runs


if __name__ == "__main__":
    main()
