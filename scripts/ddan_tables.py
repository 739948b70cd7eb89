"""DDAN's Table 2 (Wasserstein distances, with the "All domains" row) and Table 4 (cosine
similarity of the domains' mean features) from the JSONs of a DDAN sweep.

Every ``recipes/ddan.py`` run records the W1 matrix of the stage-1 features by each OT method
(``ot``), the cosine similarity of the source domains' mean test features at its end
(``cosine``) and, for ``--central all`` runs, how far each domain's features moved from the
stage-1 baseline to the pairwise-aligned model (``ot_all_domains``). This prints them as the
paper's tables, mean ± std over seeds:

    python scripts/ddan_tables.py runs/results/ddan_t5 --md ddan_tables.md

``OUT/<variant>/seed<k>.json`` as written by ``python -m scripts.launch sweep``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _runs(out: Path) -> dict[str, list[dict[str, Any]]]:
    found = {v.name: [json.loads(p.read_text()) for p in sorted(v.glob("seed*.json"))]
             for v in sorted(out.iterdir()) if v.is_dir()}
    found = {k: v for k, v in found.items() if v and "cosine" in v[0]}
    if not found:
        raise ValueError(f"out: no DDAN results JSONs under {str(out)!r}")
    return found


def _ms(x: Any) -> str:
    a = np.asarray(x, dtype=float)
    return f"{a.mean():.3f} ± {a.std(ddof=1) if a.size > 1 else 0.0:.3f}"


def table2(runs: dict[str, list[dict[str, Any]]], ot: str = "emd") -> str:
    """W1 between the stage-1 features of the source domains (row sums: eq 3), and the "All
    domains" row (each domain's W1 between stage-1 and pairwise-aligned features)."""
    any_runs = next(iter(runs.values()))
    names = any_runs[0]["domain_names"]
    with_ot = [r for rs in runs.values() for r in rs if r.get("ot")]
    by_seed = {r["seed"]: np.asarray(r["ot"][ot]["distances"]) for r in with_ot}
    if not by_seed:
        raise ValueError("out: no run recorded the stage-1 W1 matrix (an aligned variant)")
    mats = np.stack(list(by_seed.values()))
    head = "| central domain | " + " | ".join(names) + " | sum |"
    lines = [head, "| --- " * (len(names) + 2) + "|"]
    for i, n in enumerate(names):
        lines.append(f"| {n} | " + " | ".join(_ms(mats[:, i, j]) for j in range(len(names)))
                     + f" | {_ms(mats[:, i].sum(1))} |")
    alls = [np.asarray(r["ot_all_domains"]) for rs in runs.values() for r in rs
            if r.get("ot_all_domains")]
    if alls:
        a = np.stack(alls)
        lines.append("| All domains | " + " | ".join(_ms(a[:, j]) for j in range(len(names)))
                     + f" | {_ms(a.sum(1))} |")
    seeds = ", ".join(str(s) for s in sorted(by_seed))
    central = ", ".join(names[int(np.argmin(by_seed[s].sum(1)))] for s in sorted(by_seed))
    return "\n".join(lines) + f"\n\n{ot} W1, seeds {seeds}; central domain per seed: {central}."


def table4(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Mean (and lowest) cosine similarity between two source domains' mean features, per
    variant: how close the domains' centres sit in the test feature."""
    lines = ["| variant | seeds | mean cosine between domains | lowest pair |",
             "| --- | --- | --- | --- |"]
    for v, rs in runs.items():
        off = []
        low = []
        for r in rs:
            c = np.asarray(r["cosine"])
            mask = ~np.eye(len(c), dtype=bool)
            off.append(c[mask].mean())
            low.append(c[mask].min())
        lines.append(f"| {v} | {len(rs)} | {_ms(off)} | {_ms(low)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the sweep's --out folder")
    ap.add_argument("--ot", default="emd", help="OT method of Table 2 (emd, sinkhorn, sliced)")
    ap.add_argument("--md", default="", help="markdown file to write the tables into")
    args = ap.parse_args(argv)
    runs = _runs(Path(args.out))
    text = (f"Table 2 analogue\n\n{table2(runs, args.ot)}\n\nTable 4 analogue\n\n"
            f"{table4(runs)}\n")
    print(text)
    if args.md:
        Path(args.md).write_text(text)
    return text


if __name__ == "__main__":
    main()
