"""benchmarks/dg_overhead.py at tiny sizes: every recipe's DG step trains what the recipe trains
(and leaves frozen extractors alone), and the timing rows are well-formed."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import torch

from benchmarks.dg_overhead import GOAL, main, run, run_case
from benchmarks.dg_overhead_cases import QUICK, RECIPES, load_recipe, make_batch
from benchmarks.dg_overhead_recipes import BUILDERS


@pytest.mark.parametrize("name", RECIPES)
def test_dg_step_trains_the_recipe_and_rows_are_well_formed(name):
    torch.manual_seed(0)
    case = BUILDERS[name](QUICK)
    groups = {g: [p for p in ps if p.requires_grad] for g, ps in case.trained.items()}
    assert all(groups.values()), groups.keys()
    before = {g: [p.detach().clone() for p in ps] for g, ps in groups.items()}
    frozen = [p.detach().clone() for p in case.frozen]
    row = run_case(case, min_run_time=0.01, warmup=0)    # >= 3 interleaved rounds
    for g, ps in groups.items():                         # every trained tensor moved
        unchanged = [i for i, (a, p) in enumerate(zip(before[g], ps)) if torch.equal(a, p)]
        assert not unchanged, f"{name}: {g} tensors {unchanged} did not change"
    assert all(torch.equal(a, p) for a, p in zip(frozen, case.frozen))
    assert (name == "episodic") == bool(case.frozen)
    assert row["recipe"] == name and row["dg_runs"] >= 1 and row["plain_runs"] >= 1
    for key in ("plain_median_s", "dg_median_s"):
        assert math.isfinite(row[key]) and row[key] > 0
    assert row["plain_runs"] == row["dg_runs"] == len(row["ratio_per_round"]) >= 3  # interleaved
    assert row["ratio"] == pytest.approx(statistics.median(row["ratio_per_round"]))
    assert row["overhead_excl_passes"] == pytest.approx(row["ratio"] - row["passes"])
    assert row["meets_goal"] == (row["overhead_excl_passes"] <= GOAL)
    assert 0 < row["dg_cpu_s"] and 0 < row["plain_cpu_s"]          # medians, warm-up left out
    assert row["overhead_excl_passes_cpu"] == pytest.approx(row["cpu_ratio"] - row["passes"])
    assert row["passes"] >= 1.0 and row["passes_note"]


def test_passes_follow_the_methods():
    # DIR-ReID: two encoders; episodic: F plus two forward-only extractors of the same size
    assert BUILDERS["dir_reid"](QUICK).passes == 2.0
    assert BUILDERS["episodic"](QUICK).passes == pytest.approx(1 + 2 / 3, rel=1e-3)
    assert 1.0 < BUILDERS["ddan"](QUICK).passes < 2.0     # the re-run mapping stage only
    # CDVM: FLOPs of its meta step grow as the architecture's pieces come back
    cdvm = BUILDERS["cdvm"](QUICK)
    detail = list(cdvm.passes_detail.values())
    assert 2.0 < detail[0] < detail[1] < detail[2] == cdvm.passes
    assert len(cdvm.ablations) == 5 and not BUILDERS["adin"](QUICK).ablations


def test_ablations_are_timed_in_the_same_rounds():
    torch.manual_seed(0)
    row = run_case(BUILDERS["cdvm"](QUICK), min_run_time=0.01, warmup=0, rounds=3)
    assert len(row["ablation_ratios"]) == 5
    assert all(math.isfinite(v) and v > 0 for v in row["ablation_ratios"].values())


def test_keep_freed_memory_says_what_it_set():
    import subprocess
    import sys

    code = "from benchmarks._meta import keep_freed_memory as k; print(k())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.startswith("glibc malloc keeping freed memory") or "system allocator" in out


def test_batch_is_p_by_k_and_domain_balanced():
    x, pid, _cam, dom, _ts = make_batch(QUICK)
    assert x.shape == (QUICK.batch, 3, *QUICK.size)
    assert torch.bincount(dom).tolist() == [QUICK.batch // QUICK.num_domains] * QUICK.num_domains
    assert all(c == 4 for c in torch.unique(pid, return_counts=True)[1].tolist())


def test_main_writes_json_and_bad_input_raises(tmp_path):
    main(["--quick", "--recipes", "adin", "--min-run-time", "0.01", "--threads", "1",
          "--system-allocator", "--out", str(tmp_path / "q")])
    saved = json.loads((tmp_path / "q.json").read_text())
    assert saved["setting"]["name"] == "quick" and [r["recipe"] for r in saved["rows"]] == ["adin"]
    assert len(saved["load_average_1_5_15min_at_end"]) == 3
    assert saved["allocator"] == "system allocator" and saved["min_rounds"] == 3
    with pytest.raises(ValueError, match="--rounds"):
        main(["--quick", "--recipes", "adin", "--rounds", "0", "--system-allocator"])
    with pytest.raises(ValueError, match="recipes"):
        run(["nope"], QUICK, min_run_time=0.01)
    with pytest.raises(ValueError, match="min_run_time"):
        run(["adin"], QUICK, min_run_time=0)
    with pytest.raises(ValueError, match="name"):
        load_recipe("nope")


def test_throughput_rows_and_ratios():
    from benchmarks.throughput import BASELINE, add_ratios, leaderboard, make_row

    assert BASELINE in leaderboard().METHODS            # the leaderboard's names and flags
    res = {"recipe": "x", "train_seconds": 10.0, "summary": {"average": {"mAP": 20.0}}}
    base = make_row(BASELINE, res, steps=30, batch=32, wall_s=12.0, data_s=2.0)
    slow = make_row("DDAN", {**res, "train_seconds": 20.0}, steps=30, batch=32, wall_s=25.0,
                    data_s=2.0)
    assert base["images_per_s"] == pytest.approx(96.0)
    assert base["images_per_s_excl_data"] == pytest.approx(120.0)
    assert base["average_mAP"] == 20.0
    rows = add_ratios([base, slow])
    assert rows[1]["ratio_vs_baseline"] == pytest.approx(0.5)
    assert rows[1]["ratio_vs_baseline_excl_data"] == pytest.approx(960 / 18 / 120)
    assert rows[0]["meets_gpu_goal_on_cpu"] and not rows[1]["meets_gpu_goal_on_cpu"]
    with pytest.raises(ValueError, match="steps"):
        make_row("DDAN", res, steps=0, batch=32, wall_s=1.0, data_s=0.0)
    with pytest.raises(ValueError, match="train_seconds"):
        make_row("DDAN", {"train_seconds": 0}, steps=1, batch=1, wall_s=1.0, data_s=0.0)
