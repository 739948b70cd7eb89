import sys

import pytest

from dgblocks.engine.sweep import Job, format_mean_std, run_grid

SCRIPT = """
import argparse, json, sys
p = argparse.ArgumentParser(); p.add_argument("--r1", type=float); p.add_argument("--fail",
    action="store_true"); p.add_argument("--seed", type=int); p.add_argument("--out")
p.add_argument("--resume")
a = p.parse_args()
if a.fail:
    sys.exit(3)
m = {"t": {"R1": a.r1 + a.seed}}
json.dump({"seed": a.seed, "metrics": m, "summary": {"average": m["t"], "worst": m["t"]}},
          open(a.out, "w"))
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "fake_recipe.py"
    path.write_text(SCRIPT)
    return str(path)


def test_run_grid_parallel_failure_and_resume(tmp_path, script):
    jobs = [Job(name, seed, script, flags, tmp_path / name / f"seed{seed}.json")
            for name, flags in (("a", ("--r1", "10")), ("bad", ("--fail",)))
            for seed in (0, 1, 2)]
    lines: list[str] = []
    res = run_grid(jobs, parallel=2, log=lines.append)
    assert list(res) == ["a"] and [r["seed"] for r in res["a"]] == [0, 1, 2]
    assert [r["metrics"]["t"]["R1"] for r in res["a"]] == [10.0, 11.0, 12.0]
    assert sum("failed (exit 3)" in s for s in lines) == 3
    assert (tmp_path / "bad" / "seed0.log").exists()
    lines.clear()                                   # resume: nothing of "a" reruns
    run_grid(jobs[:3], parallel=2, log=lines.append)
    assert lines == ["3 of 3 runs already done (their JSONs exist)"]


def test_run_grid_rejects_bad_parallel(tmp_path):
    with pytest.raises(ValueError, match="parallel"):
        run_grid([], parallel=0)


def test_job_command_and_format_mean_std(tmp_path):
    job = Job("x", 4, "r.py", ("--a", "1"), tmp_path / "o.json")
    assert job.command() == [sys.executable, "r.py", "--a", "1", "--seed", "4", "--out",
                             str(tmp_path / "o.json"), "--resume", "auto"]
    assert format_mean_std([]) == "n/a" and format_mean_std([5.0]) == "5.0 ± 0.0"
