"""Run a recipe over variants x seeds and write a mean +- std table (resumable).

Each run writes its own results JSON (``<out>/<variant>/seed<k>.json``); a run whose JSON is
already there is skipped, so an interrupted sweep continues where it stopped. The table has,
per variant, the mean and standard deviation over seeds of each metric per target domain, the
average over targets and the worst target, then each variant's paired difference to the
``--reference`` variant (default: the first) over the same seeds with a 95% t interval.

    python -m scripts.launch sweep recipes/baseline.py --seeds 0 1 2 --out runs/agg \\
        --variant agg="" --variant agg_dualnorm="--backbone dualnorm" \\
        --md docs/results/agg.md --title "AGG baseline"

``--parallel N`` runs N at a time (give each ``--threads 1`` in ``--common`` on a small
machine); each run's output goes to ``<json>.log``. The machinery is ``dgblocks.engine.sweep``.
Only the table is written to ``--md`` (between markers, so the rest of a hand-written results
page is kept); the per-run JSONs carry config, commit, seeds and machine.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from dgblocks.engine.sweep import Job, paired_table, provenance, run_grid, table, write_md

__all__ = ["parse_variants", "table", "write_md", "main"]


def parse_variants(items: list[str]) -> dict[str, list[str]]:
    variants: dict[str, list[str]] = {}
    for item in items:
        name, sep, flags = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--variant: expected NAME=\"FLAGS\", got {item!r}")
        variants[name] = shlex.split(flags)
    return variants


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe")
    p.add_argument("--variant", action="append", default=[], help='NAME="FLAGS" (repeat)')
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--common", default="",
                   help="flags passed to every run; write --common=\"--smoke ...\"")
    p.add_argument("--out", required=True, type=Path, help="folder of per-run JSONs")
    p.add_argument("--parallel", type=int, default=1, help="runs at a time")
    p.add_argument("--metrics", nargs="+", default=["R1", "mAP"])
    p.add_argument("--md", type=Path, help="markdown file to write the table into")
    p.add_argument("--name", default=None, help="table id inside --md (default: out folder)")
    p.add_argument("--title", default="Results")
    p.add_argument("--reference", default=None,
                   help="variant the others are compared with (paired difference over the "
                        "same seeds, 95%% interval); default: the first variant")
    args = p.parse_args(argv)
    variants = parse_variants(args.variant) or {"default": []}
    common = shlex.split(args.common)
    if "--stage-cache" not in common:  # one cache: runs sharing an earlier stage train it once
        common += ["--stage-cache", str(args.out / "stage_cache")]
    jobs = [Job(name, seed, args.recipe, (*common, *flags), args.out / name / f"seed{seed}.json")
            for name, flags in variants.items() for seed in args.seeds]
    results = run_grid(jobs, parallel=args.parallel)
    if not results:
        raise SystemExit("no run finished")
    reference = args.reference or next(iter(results))
    body = (table(results, args.metrics) + "\n\nAverage over the targets and paired difference "
            f"to `{reference}` (same seeds; `*`: the 95% interval excludes 0):\n\n"
            + paired_table(results, reference, metrics=args.metrics) + "\n\n"
            + provenance(results))
    print(body)
    if args.md:
        command = shlex.join([sys.argv[0] if argv is None else "scripts/launch/sweep.py",
                              *(sys.argv[1:] if argv is None else argv)])
        write_md(args.md, args.name or args.out.name, args.title, "python " + command, body)


if __name__ == "__main__":
    main()
