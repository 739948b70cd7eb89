"""benchmarks/eval_streaming.py: the problem is deterministic and sliced correctly; ``--small``
runs both child processes end to end (slow: two interpreters)."""

import pytest
import torch

from benchmarks.eval_streaming import SMALL, main, problem


def test_problem_is_deterministic_and_clustered():
    size = {**SMALL, "num_q": 50, "num_g": 5000}  # more than one 4,096-row slice
    a, b = problem(**size), problem(**size)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    qf, gf, qp, gp, _, _ = a
    assert qf.shape == (50, SMALL["dim"]) and gf.shape == (5000, SMALL["dim"])
    centre = gf[gp == gp[0]].mean(0)  # the images of an identity scatter around one centre
    assert (gf[gp == gp[0]] - centre).pow(2).sum(1).mean() < (gf - centre).pow(2).sum(1).mean()


@pytest.mark.slow
def test_small_run_agrees_and_measures_both_paths():
    out = main(["--small", "--threads", "1"])
    assert out["identical_results"]
    assert [r["path"] for r in out["rows"]] == ["full", "streaming"]
    for r in out["rows"]:
        assert r["seconds"] > 0 and r["peak_rss_gb"] >= r["rss_after_setup_gb"] > 0
