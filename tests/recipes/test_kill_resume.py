"""Every recipe resumes bit-identically after SIGKILL: final metrics, every registered state
(weights, optimisers, schedulers, samplers' generators, CDVM's meta split) and the metrics
log equal an uninterrupted run's. Baseline runs by default; all six with ``-m slow``."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dgblocks.engine import load_checkpoint, read_jsonl

ROOT = Path(__file__).resolve().parents[2]
BASE = ["--smoke", "--deterministic", "--threads", "1", "--no-plots", "--log-every", "1",
        "--ckpt-every", "1"]


def _env(**extra):
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **extra)


def _equal(a, b, where="objects"):
    """Recursive exact equality of two checkpoint states; returns the first difference."""
    if isinstance(a, torch.Tensor):
        return None if isinstance(b, torch.Tensor) and torch.equal(a, b) else where
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return where
        return next((d for k in a if (d := _equal(a[k], b[k], f"{where}.{k}"))), None)
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return where
        return next((d for i, (x, y) in enumerate(zip(a, b))
                     if (d := _equal(x, y, f"{where}[{i}]"))), None)
    return None if a == b else where


def _wait_for_checkpoints(proc, ckpt, count, log, timeout=600):
    seen, last, t0 = 0, None, time.time()
    while seen < count:
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {count} checkpoints:\n"
                                 f"{log.read_text()[-3000:]}")
        if time.time() - t0 > timeout:
            raise AssertionError(f"no checkpoint {count} in {timeout} s")
        try:
            m = ckpt.stat().st_mtime_ns
        except FileNotFoundError:
            m = None
        if m is not None and m != last:
            seen, last = seen + 1, m
        time.sleep(0.01)


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid`` (Linux ``/proc``; zombies count as gone)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def kill_and_resume(tmp_path, recipe, extra=(), *, after=1, delay=0.05, children=None):
    """Run ``recipe`` uninterrupted and, apart, SIGKILL it ``delay`` s after its ``after``-th
    checkpoint, then resume it; assert both end identically. ``extra`` may hold ``{out}``,
    replaced by each run's own folder (stage caches). ``children``, a list, receives the pids
    of the killed run's child processes (its loader workers) at the kill."""
    script = ROOT / "recipes" / f"{recipe}.py"

    def argv(name):
        d = tmp_path / name
        return [sys.executable, str(script), *BASE, "--out", str(d / "r.json"),
                *(a.format(out=d) for a in extra)]

    ref = subprocess.run(argv("ref"), capture_output=True, text=True, env=_env(), cwd=ROOT,
                         timeout=900)
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "kill" / "r.json"
    ckpt = out.with_suffix(".ckpt.pt")
    out.parent.mkdir(parents=True)
    log_path = tmp_path / "kill.log"
    with open(log_path, "w") as log:  # a file: a full pipe would block the run
        proc = subprocess.Popen(argv("kill"), env=_env(DGBLOCKS_TEST_STEP_SLEEP="0.2"),
                                cwd=ROOT, stdout=log, stderr=log)
        try:
            _wait_for_checkpoints(proc, ckpt, after, log_path)
            time.sleep(delay)
            if children is not None:
                children.extend(child_pids(proc.pid))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(ckpt)
    res = subprocess.run(argv("kill") + ["--resume", "auto"], capture_output=True, text=True,
                         env=_env(), cwd=ROOT, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming from" in res.stdout
    a, b = (json.loads((tmp_path / n / "r.json").read_text()) for n in ("ref", "kill"))
    assert a["metrics"] == b["metrics"], (killed_at["phase"], killed_at["step"])
    diff = _equal(load_checkpoint(tmp_path / "ref" / "r.ckpt.pt")["objects"],
                  load_checkpoint(ckpt)["objects"])
    assert diff is None, f"{diff} differs (killed at {killed_at['phase']} {killed_at['step']})"
    logs = [[(r["phase"], r["step"]) for r in read_jsonl(tmp_path / n / "r.metrics.jsonl")]
            for n in ("ref", "kill")]
    assert logs[0] == logs[1]  # no duplicate, no missing line
    return killed_at


CASES = {  # recipe: (extra flags, checkpoints before the kill: a point inside a later phase)
    "baseline": ((), 3),
    "dir_reid": ((), 2),
    "cdvm": ((), 1),  # step 1: not a multiple of the number of source domains
    "ddan": ((), 6),  # stage 2, after stage 1 (each run's stage cache beside its --out)
    "episodic": ((), 2),
    "adin": ((), 9),  # the alternation phase
}


@pytest.mark.parametrize("recipe", [
    pytest.param(r, marks=() if r == "baseline" else pytest.mark.slow) for r in CASES])
def test_sigkill_then_resume_is_bit_identical(tmp_path, recipe):
    extra, after = CASES[recipe]
    kill_and_resume(tmp_path, recipe, extra, after=after)


def exit_and_resume(tmp_path, recipe, point, extra=()):
    """Run ``recipe`` uninterrupted and, apart, end it right after the checkpoint of
    ``point`` ("phase:step", a phase's end), then resume it; assert both end identically."""
    script = ROOT / "recipes" / f"{recipe}.py"

    def argv(name):
        return [sys.executable, str(script), *BASE, "--out", str(tmp_path / name / "r.json"),
                *extra]

    ref = subprocess.run(argv("ref"), capture_output=True, text=True, env=_env(), cwd=ROOT,
                         timeout=900)
    assert ref.returncode == 0, ref.stderr[-3000:]
    cut = subprocess.run(argv("cut"), capture_output=True, text=True, cwd=ROOT, timeout=900,
                         env=_env(DGBLOCKS_TEST_EXIT_AFTER_SAVE=point))
    assert cut.returncode == 137, cut.stderr[-3000:]
    ck = load_checkpoint(tmp_path / "cut" / "r.ckpt.pt")
    assert f"{ck['phase']}:{ck['step']}" == point
    res = subprocess.run(argv("cut") + ["--resume", "auto"], capture_output=True, text=True,
                         env=_env(), cwd=ROOT, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = (json.loads((tmp_path / n / "r.json").read_text()) for n in ("ref", "cut"))
    assert a["metrics"] == b["metrics"], point
    diff = _equal(load_checkpoint(tmp_path / "ref" / "r.ckpt.pt")["objects"],
                  load_checkpoint(tmp_path / "cut" / "r.ckpt.pt")["objects"])
    assert diff is None, f"{diff} differs (cut after {point})"


BOUNDARIES = {  # recipe: the checkpoints that end a phase before its last (smoke budgets)
    "adin": ("warmup_id:4", "warmup_nuisance:3"),
    "ddan": ("stage1:4",),
    "episodic": ("Finit:2", "F0:4", "F1:4"),
}


@pytest.mark.parametrize("recipe,point", [
    pytest.param(r, p, marks=() if r == "adin" else pytest.mark.slow)
    for r, points in BOUNDARIES.items() for p in points])
def test_exit_at_a_phase_boundary_then_resume_is_bit_identical(tmp_path, recipe, point):
    exit_and_resume(tmp_path, recipe, point)


def test_resume_changed_applies_the_new_learning_rate(tmp_path):
    """``--resume-changed --lr`` warns, then trains on with the new rate from the restored
    step (before: the old rate went on while the results JSON recorded the new one)."""
    from dgblocks.engine import lr_factor

    script = ROOT / "recipes" / "baseline.py"
    argv = [sys.executable, str(script), *BASE, "--steps", "8", "--ckpt-every", "4",
            "--out", str(tmp_path / "r.json")]
    cut = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env=_env(DGBLOCKS_TEST_EXIT_AFTER_SAVE="train:4"))
    assert cut.returncode == 137, cut.stderr[-2000:]
    res = subprocess.run(argv + ["--resume", "auto", "--resume-changed", "--lr", "0.002"],
                         capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=600)
    assert res.returncode == 0 and "--lr 0.001 -> 0.002" in res.stderr, res.stderr[-2000:]
    logged = {r["step"]: r["lr"] for r in read_jsonl(tmp_path / "r.metrics.jsonl")}
    for step in (5, 6, 7):                  # the optimiser's rate after step-1 updates
        assert logged[step] == pytest.approx(0.002 * lr_factor(step + 1, total=8, warmup=0.1))
    assert logged[3] == pytest.approx(0.001 * lr_factor(4, total=8, warmup=0.1))
    assert json.loads((tmp_path / "r.json").read_text())["config"]["lr"] == 0.002
