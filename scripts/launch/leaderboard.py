"""Every method at its own defaults on one protocol, backbone and budget (the fair comparison,
with a search per method, is ``scripts/search.py``).

No paper compares these methods with the same backbone, data, protocol and seeds; this does.
Every method runs its own recipe (``recipes/<method>.py``) as a subprocess with the same

    backbone  ``--backbone`` (default resnet_tiny: the one that learns from scratch on CPU),
    images    the benchmark's size (synthetic: 64 x 32),
    protocol  all source domains -> the unseen target domains (synthetic; or Protocol-1),
    budget    ``--steps`` optimiser steps of the retrieval network at ``--batch-size``,
    seeds     ``--seeds``,

and the recipe's own defaults otherwise (its losses, weights, optimiser). What a method adds
beyond those steps (DDAN's stage-1 baseline for the central domain, episodic's per-domain
extractors, ADIN's nuisance-head steps) is extra compute the method needs, listed in the table
with each method's wall time. Runs go ``--parallel`` at a time with one thread each, are
resumable (a run whose JSON exists is skipped) and write ``docs/results/defaults.md`` (R-1
and mAP per unseen domain, average and worst domain, mean and std over seeds) and a bar plot.

    python -m scripts.launch leaderboard            # synthetic, 3 seeds, about 55 min on 2 cores
    python -m scripts.launch leaderboard --long     # GPU: 3,840 x 64 for all, 5 seeds, own page
    python -m scripts.launch leaderboard --smoke               # every method for a few steps
    python -m scripts.launch leaderboard --data-root DIR       # real Protocol-1 data (a GPU run)
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dgblocks.backbones import BACKBONES
from dgblocks.engine.results import environment, git_commit
from dgblocks.engine.sweep import Job, format_mean_std, paired_table, run_grid, table
from dgblocks.eval.summary import mean_std
from scripts.launch.registry import BY_NAME

HERE = Path(__file__).resolve().parents[2] / "recipes"

# method -> (recipe, flags given N = --steps): each method's split of N is the search's
# (scripts/launch/registry.py); what each flag means: docs/recipes/leaderboard.md
METHODS: dict[str, tuple[str, Callable[[int], list]]] = {
    "untrained (reference)": ("baseline.py", lambda n: ["--steps", 0]),
    "baseline (AGG)": ("baseline.py", BY_NAME["AGG"].budget),
    "DIR-ReID": ("dir_reid.py", BY_NAME["DIR-ReID"].budget),
    "DDAN": ("ddan.py", lambda n: ["--ablation", "full", *BY_NAME["DDAN"].budget(n)]),
    "CDVM": ("cdvm.py", BY_NAME["CDVM"].budget),
    "CDVM plain (its paper's baseline)": ("cdvm.py", lambda n: [
        *BY_NAME["CDVM"].budget(n), "--no-dis", "--no-aug", "--no-attr"]),
    "episodic": ("episodic.py", lambda n: ["--method", "episodic", *BY_NAME["episodic"].budget(n)]),
    "ADIN": ("adin.py", BY_NAME["ADIN"].budget),
}
EXTRA = {  # compute beyond the retrieval network's N steps
    "untrained (reference)": "no training: the backbone's random features (what training adds)",
    "baseline (AGG)": "-",
    "DIR-ReID": "f_V (a second backbone) in every step",
    "DDAN": "stage-1 baseline of N/5 steps (central domain + ID-pool init)",
    "CDVM": "N/2 plain steps (pretrained stand-in), then N/2 meta steps (meta-train + "
            "meta-test passes, second order)",
    "CDVM plain (its paper's baseline)": "as CDVM, without dis / aug / attr (Table 4's "
                                         "baseline row); CDVM's steps",
    "episodic": "one extractor per source domain (recipe default steps each)",
    "ADIN": "nuisance-head steps on frozen features",
}

# leaderboard row -> its entry in the search's registry (its own untrained network's flags)
ENTRY = {"baseline (AGG)": "AGG", "DIR-ReID": "DIR-ReID", "DDAN": "DDAN", "CDVM": "CDVM",
         "episodic": "episodic", "ADIN": "ADIN"}
OWN = " (untrained)"  # suffix of a method's own untrained network in the results
STEPS = 1920  # the budget: docs/recipes/leaderboard.md, "The budget"
CDVM_STEPS = 0  # 0: CDVM runs --steps like every method (at its former 800 it still rose)
FOLDERS = {"untrained (reference)": "untrained", "CDVM plain (its paper's baseline)": "cdvm_plain"}


def budget(args, name: str) -> int:
    """The steps N of ``name``: ``--steps``, CDVM's rows ``--cdvm-steps`` (0: ``--steps``)."""
    return args.cdvm_steps if name.startswith("CDVM") and args.cdvm_steps > 0 else args.steps


def parse(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=STEPS, help="optimiser steps of every method "
                   "(default: where the source-validation curves flatten, docs/results/curves.md)")
    p.add_argument("--cdvm-steps", type=int, default=CDVM_STEPS, help="CDVM's budget "
                   "(default 0: --steps, as every method; a smaller one makes it cheaper: each "
                   "of its meta steps costs about 11 AGG steps)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step")
    p.add_argument("--backbone", default="resnet_tiny", choices=BACKBONES)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                   metavar="METHOD", help=f"subset of: {', '.join(METHODS)}")
    p.add_argument("--parallel", type=int, default=2, help="runs at a time (1 thread each)")
    p.add_argument("--data-root", default="", help="real data: Protocol-1 datasets under DIR")
    p.add_argument("--protocol", default="protocol1", help="with --data-root")
    p.add_argument("--smoke", action="store_true", help="tiny data, a few steps, one seed")
    p.add_argument("--long", action="store_true", help="the long budget for a GPU machine: "
                   f"{2 * STEPS:,} steps x 64 for every method (CDVM included), 5 seeds, "
                   "--device cuda, 16 runs at a time")
    p.add_argument("--device", default="cpu", help="device of every run (cpu | cuda)")
    p.add_argument("--threads", type=int, default=1, help="--threads of every run")
    p.add_argument("--recipe-flags", default="", help="more flags for every run, one string "
                   "(\"--amp bf16 --compile\")")
    p.add_argument("--out", type=Path, default=Path("runs/leaderboard"),
                   help="per-run JSONs and logs (resumable)")
    p.add_argument("--md", type=Path, default=None,
                   help="results page (default docs/results/defaults.md; smoke: <out>/)")
    p.add_argument("--no-plot", action="store_true", help="skip the bar plot")
    args = p.parse_args(argv)
    if args.steps < 5:
        raise SystemExit(f"--steps: expected >= 5, got {args.steps}")
    if args.cdvm_steps < 0 or 0 < args.cdvm_steps < 5:
        raise SystemExit(f"--cdvm-steps: expected 0 or >= 5, got {args.cdvm_steps}")
    if args.smoke:
        args.steps, args.cdvm_steps, args.seeds = 10, 0, args.seeds[:1]
    if args.long:
        args.steps, args.cdvm_steps, args.batch_size = 2 * STEPS, 0, 64
        args.seeds = [0, 1, 2, 3, 4]
        args.device, args.parallel = "cuda", 16
        args.md = args.md or Path("docs/results/leaderboard_long.md")
    if args.md is None:
        args.md = (args.out / "leaderboard.md" if args.smoke
                   else Path("docs/results/defaults.md"))
    return args


def jobs(args) -> list[Job]:
    common = ["--threads", str(args.threads), "--no-plots", "--batch-size",
              str(args.batch_size), "--device", args.device, *shlex.split(args.recipe_flags)]
    common += (["--data", "real", "--data-root", args.data_root, "--protocol", args.protocol]
               if args.data_root else ["--data", "synthetic"])
    common += ["--smoke"] if args.smoke else []
    data = "real" if args.data_root else ("smoke" if args.smoke else "synthetic")
    out = []
    # the slowest first (CDVM's second-order steps), so the parallel slots finish together
    for name in sorted(args.methods, key=lambda n: not n.startswith("CDVM")):
        script, flags = METHODS[name]
        slug = script.removesuffix(".py")
        folder = FOLDERS.get(name, slug)
        n = budget(args, name)
        tail = ["--backbone", args.backbone]  # after the step flags, trained or untrained
        if slug in ("ddan", "episodic"):  # stage 1 shared across seeds' reruns (keyed by seed)
            tail += ["--stage-cache", str(args.out / "cache" / slug)]
        if slug == "adin" and not args.data_root:
            tail += ["--image-size", "64", "32"]
        extra = [str(f) for f in flags(n)] + tail
        for seed in args.seeds:
            path = args.out / data / f"{args.backbone}-n{n}-b{args.batch_size}" / folder
            out.append(Job(name, seed, str(HERE / script), (*common, *extra),
                           path / f"seed{seed}.json"))
        if name in ENTRY and name != "baseline (AGG)":  # AGG's is the reference row
            flags0 = [*flags(n), *BY_NAME[ENTRY[name]].untrained, *tail]
            path = args.out / data / f"{args.backbone}-n0-b{args.batch_size}" / folder
            out += [Job(name + OWN, seed, str(HERE / script), (*common, *map(str, flags0)),
                        path / f"seed{seed}.json") for seed in args.seeds]
    return out


def plot(results: dict[str, list[dict]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(results)
    targets = list(next(iter(results.values()))[0]["metrics"])
    cols = [*targets, "average", "worst"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=False)
    for ax, metric in zip(axes, ("R1", "mAP")):
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            vals = np.array([[r["metrics"][t][metric] for t in targets]
                             + [r["summary"]["average"][metric], r["summary"]["worst"][metric]]
                             for r in results[name]])
            mean, std = np.array([mean_std(col) for col in vals.T]).T
            ax.bar(np.arange(len(cols)) + i * width, mean, width, yerr=std,
                   label=name, capsize=2)
        ax.set_xticks(np.arange(len(cols)) + 0.4 - width / 2, cols, rotation=20)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"{metric}, mean ± std over seeds")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


AGG, UNTRAINED = "baseline (AGG)", "untrained (reference)"


def untrained_ratio(avg: dict[str, list[float]]) -> str:
    """One sentence: AGG's average R-1 over the untrained network's (is training doing work?)."""
    if AGG not in avg or UNTRAINED not in avg:
        return ""
    a, u = (sum(avg[k]) / len(avg[k]) for k in (AGG, UNTRAINED))
    return f"AGG reaches {a / u:.1f}x the untrained network's average R-1 ({a:.1f} vs {u:.1f})."


def stability(avg: dict[str, list[float]]) -> list[str]:
    """Per method: every seed's average R-1, the median and whether the worst seed falls
    below half the median (a collapsing seed)."""
    out = ["| method | average R-1 per seed | median | worst / median | collapse |",
           "|" + " --- |" * 5]
    for n, v in avg.items():
        med = statistics.median(v)
        ratio = min(v) / med if med > 0 else float("nan")
        out.append(f"| {n} | {', '.join(f'{x:.1f}' for x in v)} | {med:.1f} | {ratio:.2f} | "
                   f"{'**yes**' if ratio < 0.5 else 'no'} |")
    return out


def own_untrained(results: dict[str, list[dict]], own: dict[str, list[dict]]) -> list[str]:
    """Per method: its average R-1 against its own network's untrained one (same seeds), the
    ratio and the 2.5x bar; AGG's own untrained network is the reference row."""
    own = {AGG: results[UNTRAINED], **own} if UNTRAINED in results else own
    out = ["| method | average R-1 | its untrained network | ratio | >= 2.5x |",
           "|" + " --- |" * 5]
    for n, rs in results.items():
        if n not in own:
            continue
        a = sum(r["summary"]["average"]["R1"] for r in rs) / len(rs)
        u = sum(r["summary"]["average"]["R1"] for r in own[n]) / len(own[n])
        ratio = a / u if u > 0 else float("inf")
        out.append(f"| {n} | {a:.1f} | {u:.1f} | {ratio:.1f} | "
                   f"{'yes' if ratio >= 2.5 else '**no**'} |")
    return out


def page(args, results: dict[str, list[dict]], png: Path | None, wall: float,
         own: dict[str, list[dict]] | None = None) -> str:
    first = next(iter(results.values()))[0]
    commits = ", ".join(sorted({str(r.get("commit"))[:12] for rs in results.values() for r in rs}))
    env = environment()
    flags = sys.argv[1:]
    if flags[:1] == ["leaderboard"]:  # run as python -m scripts.launch leaderboard ...
        flags = flags[1:]
    cmd = " ".join(["python -m scripts.launch leaderboard", shlex.join(flags)]).strip()
    avg = {n: [r["summary"]["average"]["R1"] for r in rs] for n, rs in results.items()}
    total = sum(r.get("train_seconds", 0) + r.get("eval_seconds", 0)
                for rs in results.values() for r in rs)
    ranked = sorted(avg, key=lambda n: -sum(avg[n]) / len(avg[n]))
    base = (sum(avg[UNTRAINED]) / len(avg[UNTRAINED])) if UNTRAINED in avg else 0.0
    cost = ["| method | recipe | steps | seeds | wall per run (s) | average R-1 | x untrained | "
            "average mAP | worst R-1 | extra compute beyond the N steps |", "|" + " --- |" * 10]
    for n in ranked:
        rs = results[n]
        secs = [r.get("train_seconds", 0) + r.get("eval_seconds", 0) for r in rs]
        ms = format_mean_std
        ratio = f"{sum(avg[n]) / len(avg[n]) / base:.1f}" if base > 0 else "-"
        steps = 0 if n == UNTRAINED else budget(args, n)
        cost.append(f"| {n} | `recipes/{METHODS[n][0]}` | {steps} | {len(rs)} | {ms(secs)} | "
                    f"{ms(avg[n])} | {ratio} | "
                    f"{ms([r['summary']['average']['mAP'] for r in rs])} | "
                    f"{ms([r['summary']['worst']['R1'] for r in rs])} | {EXTRA[n]} |")
    data = (f"real data under `{args.data_root}`, {args.protocol}" if args.data_root else
            f"`{first['benchmark']}`{' (smoke)' if args.smoke else ''}: all source domains -> "
            f"{', '.join(first['targets'])}")
    lines = [
        "# Leaderboard: every method on one protocol", "",
        "Generated by `python -m scripts.launch leaderboard` (do not edit by hand; rerun it). "
        "How the methods are made comparable: [the recipe page](../recipes/leaderboard.md).", "",
        f"- data: {data}", f"- backbone: `{args.backbone}`, {args.steps} optimiser steps of "
        f"batch {args.batch_size} for every method"
        + (f" but CDVM ({args.cdvm_steps}: its own budget)"
           if 0 < args.cdvm_steps != args.steps else "") + f", seeds {args.seeds}",
        f"- command: `{cmd}`: {wall / 60:.1f} min for the runs this invocation had to do "
        f"({args.parallel} at a time, 1 thread each); the runs' own train + eval times add up "
        f"to {total / 60:.1f} min (about {total / 60 / args.parallel:.1f} min at "
        f"{args.parallel} at a time, without process start-up)",
        f"- runs at commit(s) {commits}; "
        f"page at commit {git_commit()}, {env.get('machine')}, {os.cpu_count()} CPUs, torch "
        f"{env.get('torch')}, CUDA: {env.get('cuda')}", "",
        "## Ranking (by average R-1 over the unseen domains)", "", *cost, "",
        "## Paired difference to AGG (same seeds)", "",
        "Each method minus AGG per seed, averaged, with a 95% t interval; `*`: the interval "
        "excludes 0, a significant gap at this budget. " + untrained_ratio(avg), "",
        paired_table(results, AGG, label="method") if AGG in results else "(AGG not run)", "",
        "## Against each method's own untrained network", "",
        "Every method's network untrained (every step count 0; same flags otherwise, same "
        "seeds): is training doing the work? The bar is 2.5x.", "",
        *own_untrained(results, own or {}), "",
        "## Seeds: does any collapse?", "",
        "A collapsing seed ends below half the method's median over seeds.", "",
        *stability(avg), "",
        "## Per unseen domain (R-1 / mAP, %, mean ± std over seeds)", "",
        table(results, ["R1", "mAP"], label="method"), "",
    ]
    if png is not None:
        lines += [f"![leaderboard]({png.name})", ""]
    lines += ["## Long budget (GPU)", "",
              f"`python -m scripts.launch leaderboard --long` ({2 * STEPS:,} steps "
              "x 64 for every method, CDVM included, 5 seeds, on CUDA) writes "
              "`docs/results/leaderboard_long.md` beside this page; "
              + ("see [the long-budget table](leaderboard_long.md)."
                 if (args.md.parent / "leaderboard_long.md").exists()
                 else "not run yet: no GPU was available to this work."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    grid = jobs(args)
    t0 = time.time()
    done = run_grid(grid, parallel=args.parallel)
    wall = time.time() - t0
    results = {n: done[n] for n in args.methods if n in done}
    own = {n: done[n + OWN] for n in args.methods if n + OWN in done}
    missing = [n for n in args.methods if n not in results]
    if missing:
        raise SystemExit(f"leaderboard: no finished run for {', '.join(missing)} "
                         f"(logs under {args.out})")
    png = None if args.no_plot else plot(
        results, args.md.with_suffix(".png"),
        f"{args.backbone}, {args.steps} steps x {args.batch_size}, seeds {args.seeds}")
    text = page(args, results, png, wall, own)
    args.md.parent.mkdir(parents=True, exist_ok=True)
    args.md.write_text(text)
    print(text)
    print(f"wrote {args.md}" + (f" and {png}" if png else ""))
    return results


if __name__ == "__main__":
    main()
