"""Run a grid of recipe runs (variants x seeds) as subprocesses and tabulate mean +- std.

Used by ``scripts/launch/sweep.py`` (one recipe, several variants) and
``scripts/launch/leaderboard.py`` (several recipes on one protocol). Every run writes its
own results JSON; a run whose JSON is
already there is skipped, so an interrupted grid continues where it stopped. Runs go
``parallel`` at a time (each recipe is told ``--threads``), their output into ``<json>.log``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgblocks._checks import check_int
from dgblocks.eval.paired import paired_difference
from dgblocks.eval.summary import mean_std

BEGIN = "<!-- sweep:{name}:begin -->"
END = "<!-- sweep:{name}:end -->"


@dataclass(frozen=True)
class Job:
    """One run: ``python <script> <flags> --seed <seed> --out <out>``, tabulated as ``name``."""

    name: str
    seed: int
    script: str
    flags: tuple[str, ...]
    out: Path

    def command(self) -> list[str]:
        return [sys.executable, self.script, *self.flags, "--seed", str(self.seed),
                "--out", str(self.out), "--resume", "auto"]  # a killed run continues


def run_grid(jobs: Sequence[Job], *, parallel: int = 1, log: Callable[[str], None] = print,
             env: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run the jobs whose JSON is missing, ``parallel`` at a time; return the JSONs by name.

    A failed run is reported (with its log file) and left out of the results; the others go on.
    The order of names and of seeds in the result follows ``jobs``.
    """
    import json

    check_int(parallel, name="parallel", minimum=1)
    env = {**os.environ, "TQDM_DISABLE": "1", **(env or {})}
    todo = [j for j in jobs if not j.out.exists()]
    if len(todo) < len(jobs):
        log(f"{len(jobs) - len(todo)} of {len(jobs)} runs already done (their JSONs exist)")
    running: list[tuple[Job, subprocess.Popen, float, Any]] = []
    done = 0
    while todo or running:
        while todo and len(running) < parallel:
            job = todo.pop(0)
            job.out.parent.mkdir(parents=True, exist_ok=True)
            logf = open(job.out.with_suffix(".log"), "w")  # noqa: SIM115 (closed below)
            log(f"+ {shlex.join(job.command())}")
            proc = subprocess.Popen(job.command(), stdout=logf, stderr=subprocess.STDOUT, env=env)
            running.append((job, proc, time.time(), logf))
        time.sleep(0.2)
        for item in list(running):
            job, proc, t0, logf = item
            if proc.poll() is None:
                continue
            running.remove(item)
            logf.close()
            done += 1
            if proc.returncode != 0 or not job.out.exists():
                log(f"!! {job.name} seed {job.seed} failed (exit {proc.returncode}); see "
                    f"{job.out.with_suffix('.log')}")
            else:
                log(f"   [{done}] {job.name} seed {job.seed} done in {time.time() - t0:.0f} s")
    results: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        if job.out.exists():
            results.setdefault(job.name, []).append(json.loads(job.out.read_text()))
    return results


def format_mean_std(values: Sequence[float]) -> str:
    """``"mean ± std"`` with one decimal, from :func:`dgblocks.eval.summary.mean_std` (sample
    std; 0 for one value); ``n/a`` for none.

    Example:
        >>> format_mean_std([10.0, 12.0, 14.0])
        '12.0 ± 2.0'
    """
    if not values:
        return "n/a"
    mean, std = mean_std(values)
    return f"{mean:.1f} ± {std:.1f}"


def table(results: dict[str, list[dict[str, Any]]], metrics: Sequence[str],
          label: str = "variant") -> str:
    """Markdown: per name, mean ± std over seeds of each metric per target, and of the
    ``summary`` average and worst (:func:`dgblocks.eval.summarize`) of each run's JSON."""
    first = next(iter(results.values()))[0]
    targets = list(first["metrics"])
    head = [label, "seeds"]
    for t in [*targets, "average", "worst"]:
        head += [f"{t} {m}" for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, runs in results.items():
        row = [name, str(len(runs))]
        for t in targets:
            row += [format_mean_std([r["metrics"][t][m] for r in runs
                                     if m in r["metrics"].get(t, {})]) for m in metrics]
        for part in ("average", "worst"):
            row += [format_mean_std([r["summary"][part][m] for r in runs
                                     if m in r["summary"][part]]) for m in metrics]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def paired_table(results: dict[str, list[dict[str, Any]]], reference: str, *,
                 metrics: Sequence[str] = ("R1", "mAP"), part: str = "average",
                 label: str = "variant") -> str:
    """Markdown: per name, the ``summary[part]`` metrics (mean ± std over seeds) and the paired
    difference to ``reference`` over the seeds both have (:func:`dgblocks.eval.paired_difference`,
    95% t interval; ``*``: the interval excludes 0)."""
    if reference not in results:
        raise ValueError(f"reference: expected one of {list(results)}, got {reference!r}")

    def by_seed(runs: list[dict[str, Any]], m: str) -> dict[int, float]:
        return {int(r.get("seed", i)): r["summary"][part][m] for i, r in enumerate(runs)}

    head = [label, "seeds", *(f"{part} {m}" for m in metrics),
            *(f"{m} - {reference} (95% CI)" for m in metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, runs in results.items():
        row = [name, str(len(runs))]
        row += [format_mean_std(list(by_seed(runs, m).values())) for m in metrics]
        row += ["-" if name == reference else
                paired_difference(by_seed(runs, m), by_seed(results[reference], m)).format()
                for m in metrics]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def provenance(results: dict[str, list[dict[str, Any]]]) -> str:
    """One line: commits, machine, torch, threads, CUDA, seeds, wall time per run."""
    runs = [r for rs in results.values() for r in rs]
    commits = sorted({str(r.get("commit")) for r in runs})
    env = runs[0].get("environment", {})
    secs = [r.get("train_seconds", 0) + r.get("eval_seconds", 0) for r in runs]
    return (f"Commit(s): {', '.join(commits)}. Machine: {env.get('machine')}, "
            f"torch {env.get('torch')}, {env.get('threads')} threads, "
            f"CUDA: {env.get('cuda')}. Seeds: {sorted({r.get('seed') for r in runs})}. "
            f"Wall time per run: {min(secs):.0f}-{max(secs):.0f} s.")


def write_md(path: Path, name: str, title: str, command: str, body: str) -> None:
    """Put ``body`` under ``title`` and ``command`` between the markers of ``name`` in ``path``
    (replacing an earlier block of that name, keeping the rest of the file)."""
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
