"""Run a recipe over variants x seeds and write a mean +- std table (resumable).

Each run writes its own results JSON (``<out>/<variant>/seed<k>.json``); a run whose JSON is
already there is skipped, so an interrupted sweep continues where it stopped. The table has,
per variant, the mean and standard deviation over seeds of each metric per target domain, the
average over targets and the worst target.

    python scripts/sweep.py recipes/baseline.py --seeds 0 1 2 --out runs/agg \\
        --variant agg="" --variant agg_dualnorm="--backbone dualnorm" \\
        --md docs/results/agg.md --title "AGG baseline"

Only the table is written to ``--md`` (between markers, so the rest of a hand-written results
page is kept); the per-run JSONs carry config, commit, seeds and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

BEGIN = "<!-- sweep:{name}:begin -->"
END = "<!-- sweep:{name}:end -->"


def parse_variants(items: list[str]) -> dict[str, list[str]]:
    variants: dict[str, list[str]] = {}
    for item in items:
        name, sep, flags = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--variant: expected NAME=\"FLAGS\", got {item!r}")
        variants[name] = shlex.split(flags)
    return variants


def run_all(recipe: str, variants: dict[str, list[str]], seeds: list[int], out: Path,
            common: list[str]) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {}
    for name, flags in variants.items():
        for seed in seeds:
            path = out / name / f"seed{seed}.json"
            if not path.exists():
                cmd = [sys.executable, recipe, *common, *flags, "--seed", str(seed),
                       "--out", str(path)]
                print("+", shlex.join(cmd), flush=True)
                t0 = time.time()
                proc = subprocess.run(cmd, env={**os.environ, "TQDM_DISABLE": "1"})
                if proc.returncode != 0 or not path.exists():
                    print(f"!! {name} seed {seed} failed (exit {proc.returncode})", flush=True)
                    continue
                print(f"   done in {time.time() - t0:.0f} s", flush=True)
            results.setdefault(name, []).append(json.loads(path.read_text()))
    return results


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {std:.1f}"


def table(results: dict[str, list[dict]], metrics: list[str]) -> str:
    first = next(iter(results.values()))[0]
    targets = list(first["metrics"])
    head = ["variant", "seeds"]
    for t in targets + ["average", "worst"]:
        head += [f"{t} {m}" for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, runs in results.items():
        row = [name, str(len(runs))]
        for t in targets:
            row += [_ms([r["metrics"][t][m] for r in runs if m in r["metrics"].get(t, {})])
                    for m in metrics]
        for part in ("average", "worst"):
            row += [_ms([r["summary"][part][m] for r in runs if m in r["summary"][part]])
                    for m in metrics]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def provenance(results: dict[str, list[dict]]) -> str:
    runs = [r for rs in results.values() for r in rs]
    commits = sorted({str(r.get("commit")) for r in runs})
    env = runs[0].get("environment", {})
    secs = [r.get("train_seconds", 0) + r.get("eval_seconds", 0) for r in runs]
    return (f"Commit(s): {', '.join(commits)}. Machine: {env.get('machine')}, "
            f"torch {env.get('torch')}, {env.get('threads')} threads, "
            f"CUDA: {env.get('cuda')}. Seeds: {sorted({r.get('seed') for r in runs})}. "
            f"Wall time per run: {min(secs):.0f}-{max(secs):.0f} s.")


def write_md(path: Path, name: str, title: str, command: str, body: str) -> None:
    block = (f"{BEGIN.format(name=name)}\n### {title}\n\n```bash\n{command}\n```\n\n{body}\n"
             f"{END.format(name=name)}")
    text = path.read_text() if path.exists() else ""
    b, e = BEGIN.format(name=name), END.format(name=name)
    if b in text and e in text:
        text = text[: text.index(b)] + block + text[text.index(e) + len(e):]
    else:
        text = (text.rstrip() + "\n\n" if text else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe")
    p.add_argument("--variant", action="append", default=[], help='NAME="FLAGS" (repeat)')
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--common", default="",
                   help="flags passed to every run; write --common=\"--smoke ...\"")
    p.add_argument("--out", required=True, type=Path, help="folder of per-run JSONs")
    p.add_argument("--metrics", nargs="+", default=["R1", "mAP"])
    p.add_argument("--md", type=Path, help="markdown file to write the table into")
    p.add_argument("--name", default=None, help="table id inside --md (default: out folder)")
    p.add_argument("--title", default="Results")
    args = p.parse_args(argv)
    variants = parse_variants(args.variant) or {"default": []}
    results = run_all(args.recipe, variants, args.seeds, args.out, shlex.split(args.common))
    if not results:
        raise SystemExit("no run finished")
    body = table(results, args.metrics) + "\n\n" + provenance(results)
    print(body)
    if args.md:
        command = shlex.join([sys.argv[0] if argv is None else "scripts/sweep.py",
                              *(sys.argv[1:] if argv is None else argv)])
        write_md(args.md, args.name or args.out.name, args.title, "python " + command, body)


if __name__ == "__main__":
    main()
