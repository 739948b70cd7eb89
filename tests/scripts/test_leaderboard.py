"""Leaderboard: every method gets the same backbone, budget, batch, data and seeds; the page
and plot are written from the runs' JSONs; a real smoke run of every method is `slow`."""

from pathlib import Path

import pytest

from scripts.launch import leaderboard as lb


def _flag(flags, name):
    return flags[flags.index(name) + 1]


def test_every_method_same_backbone_batch_data_and_seeds(tmp_path):
    args = lb.parse(["--steps", "100", "--seeds", "3", "4", "--out", str(tmp_path)])
    jobs = [j for j in lb.jobs(args) if not j.name.endswith(lb.OWN)]
    assert len(jobs) == 2 * len(lb.METHODS) and {j.seed for j in jobs} == {3, 4}
    for j in jobs:
        assert _flag(j.flags, "--backbone") == "resnet_tiny"
        assert _flag(j.flags, "--batch-size") == "64" and _flag(j.flags, "--data") == "synthetic"
        assert _flag(j.flags, "--threads") == "1"
    steps = {Path(j.script).stem: j.flags for j in jobs if j.name != "untrained (reference)"}
    untrained = [j for j in jobs if j.name == "untrained (reference)"]
    assert _flag(untrained[0].flags, "--steps") == "0" and "untrained" in str(untrained[0].out)
    budget = {"baseline": int(_flag(steps["baseline"], "--steps")),   # retrieval-net steps
              "episodic": int(_flag(steps["episodic"], "--init-steps"))
              + int(_flag(steps["episodic"], "--steps")),
              "adin": int(_flag(steps["adin"], "--warmup-steps"))
              + int(_flag(steps["adin"], "--steps"))}
    assert set(budget.values()) == {100}
    assert _flag(steps["adin"], "--source") == "-1"               # all sources, like the rest
    cdvm = {j.name: j for j in jobs if Path(j.script).stem == "cdvm" and j.seed == 3}
    assert {int(_flag(j.flags, "--init-steps")) + int(_flag(j.flags, "--steps"))
            for j in cdvm.values()} == {100}                    # the shared budget
    plain = cdvm["CDVM plain (its paper's baseline)"]             # Table 4's baseline row
    assert {"--no-dis", "--no-aug", "--no-attr"} <= set(plain.flags)
    assert len({j.out.parent for j in cdvm.values()}) == 2        # own folders, no clash


def test_cdvm_budget_zero_is_the_shared_one_and_long_gives_everyone_the_same(tmp_path):
    args = lb.parse(["--steps", "100", "--cdvm-steps", "0", "--out", str(tmp_path)])
    assert {int(_flag(j.flags, "--steps")) for j in lb.jobs(args) if j.name == "CDVM"} == {50}
    args = lb.parse(["--long", "--out", str(tmp_path)])
    assert args.cdvm_steps == 0 and args.steps == 2 * lb.STEPS and args.device == "cuda"
    with pytest.raises(SystemExit, match="--cdvm-steps"):
        lb.parse(["--cdvm-steps", "3"])


def test_each_method_gets_its_own_untrained_network(tmp_path):
    args = lb.parse(["--steps", "100", "--seeds", "0", "--out", str(tmp_path)])
    own = {j.name.removesuffix(lb.OWN): j for j in lb.jobs(args) if j.name.endswith(lb.OWN)}
    assert set(own) == set(lb.ENTRY) - {"baseline (AGG)"}  # AGG's is the reference row
    for name, j in own.items():
        flags = list(j.flags)
        last = {f: flags[len(flags) - 1 - flags[::-1].index(f) + 1]
                for f in flags if f.endswith("steps")}  # argparse: the last one wins
        assert set(last.values()) == {"0"}, (name, last)
        assert "-n0-" in str(j.out) and _flag(flags, "--backbone") == "resnet_tiny"


def test_own_untrained_table_flags_methods_under_the_bar():
    results = {"baseline (AGG)": [_fake(30, 0)], "untrained (reference)": [_fake(5, 0)],
               "ADIN": [_fake(10, 0)]}
    rows = lb.own_untrained(results, {"ADIN": [_fake(5, 0)]})
    assert "| baseline (AGG) | 31.0 | 6.0 | 5.2 | yes |" in rows
    assert "| ADIN | 11.0 | 6.0 | 1.8 | **no** |" in rows


def test_real_data_flags(tmp_path):
    args = lb.parse(["--data-root", "/data", "--out", str(tmp_path)])
    for j in lb.jobs(args):
        assert _flag(j.flags, "--data") == "real" and _flag(j.flags, "--data-root") == "/data"
        assert _flag(j.flags, "--protocol") == "protocol1" and "--image-size" not in j.flags


def _fake(r1, seed):
    m = {"t1": {"R1": r1, "mAP": r1 + 5}, "t2": {"R1": r1 + 2, "mAP": r1 + 9}}
    return {"seed": seed, "benchmark": "synthetic_reid", "targets": ["t1", "t2"], "metrics": m,
            "summary": {"average": {"R1": r1 + 1, "mAP": r1 + 7}, "worst": {"R1": r1,
                                                                           "mAP": r1 + 5}},
            "train_seconds": 10.0, "eval_seconds": 1.0}


def test_page_ranks_by_average_and_writes_plot(tmp_path, monkeypatch):
    fake = {"baseline (AGG)": [_fake(10, 0), _fake(12, 1)], "ADIN": [_fake(30, 0), _fake(32, 1)],
            "untrained (reference)": [_fake(3, 0), _fake(3, 1)]}
    monkeypatch.setattr(lb, "run_grid", lambda jobs, parallel: fake)
    md = tmp_path / "lb.md"
    lb.main(["--methods", "baseline (AGG)", "ADIN", "untrained (reference)", "--seeds", "0", "1",
             "--steps", "50", "--out", str(tmp_path), "--md", str(md)])
    text = md.read_text()
    ranking = text.split("## Ranking")[1].split("## Paired")[0]
    paired = text.split("## Paired")[1].split("## Per unseen")[0]
    assert "| ADIN | 2 |" in paired and "+20.0" in paired  # ADIN - AGG: 31 - 11 per seed
    assert "not run yet: no GPU" in text
    assert ranking.index("| ADIN |") < ranking.index("| baseline (AGG) |")
    # steps, seeds, wall, average R-1 and its ratio to the untrained network's (32 / 4 = 8.0)
    assert "| ADIN | `recipes/adin.py` | 50 | 2 | 11.0 ± 0.0 | 32.0 ± 1.4 | 8.0 |" in ranking
    assert "t1 R1" in text and (tmp_path / "lb.png").stat().st_size > 1000


def test_missing_method_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.setattr(lb, "run_grid", lambda jobs, parallel: {"ADIN": [_fake(1, 0)]})
    with pytest.raises(SystemExit, match="baseline"):
        lb.main(["--methods", "baseline (AGG)", "ADIN", "--out", str(tmp_path)])


def test_bad_steps():
    with pytest.raises(SystemExit, match="--steps"):
        lb.parse(["--steps", "2"])


@pytest.mark.slow
def test_smoke_every_method_runs(tmp_path):
    res = lb.main(["--smoke", "--out", str(tmp_path), "--no-plot"])
    assert set(res) == set(lb.METHODS)
    assert all(r[0]["summary"]["average"]["R1"] >= 0 for r in res.values())


def test_stability_flags_a_seed_below_half_the_median():
    rows = lb.stability({"ok": [10.0, 9.0, 8.0], "bad": [10.0, 10.0, 4.0]})
    assert rows[2].endswith("| no |") and "| 0.89 |" in rows[2]
    assert rows[3].endswith("| **yes** |") and "| 0.40 |" in rows[3]
