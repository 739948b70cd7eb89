"""scripts/search.py: the whole protocol runs (smoke), workers share a study's trials without
running more than ``--trials``, a killed search resumes without repeating finished trials,
and the same command serves real data."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dgblocks.methods import check_space
from scripts.launch.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def _study(out, name="baseline-paper"):
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'search.db'}")


def _count(st, states=("COMPLETE", "PRUNED")):
    return sum(t.state.name in states for t in st.get_trials(deepcopy=False))


def test_every_method_declares_a_space_around_its_papers_values():
    for e in REGISTRY:
        cls = e.method()
        assert "lr" in cls.space and check_space(cls.space, cls.Config), e.name


def test_the_budget_is_the_leaderboards_and_cdvm_shares_it():
    from scripts import search
    from scripts.launch import leaderboard

    a = search.parse([])
    assert (a.steps, a.cdvm_steps) == (leaderboard.STEPS, leaderboard.CDVM_STEPS)
    assert leaderboard.CDVM_STEPS == 0 and search.spec_of(a)["cdvm_steps"] == a.steps
    q = search.parse(["--quick"])  # quick: CDVM fewer steps (15 minutes); smoke: the shared one
    assert q.steps == search.QUICK and q.trials == 2
    assert q.cdvm_steps == search.QUICK_CDVM == 42
    s = search.parse(["--smoke"])
    assert s.cdvm_steps == 0 and search.spec_of(s)["cdvm_steps"] == s.steps
    assert search.parse(["--cdvm-steps", "0"]).cdvm_steps == 0


def test_smoke_protocol_writes_the_page(tmp_path):
    from scripts import search

    search.main(["--smoke", "--methods", "AGG", "DDAN", "--workers", "1",
                 "--out", str(tmp_path)])
    page = (tmp_path / "leaderboard.md").read_text()
    assert "| AGG | paper |" in page and "| DDAN | paper |" in page and "oracle" in page
    assert "Selected (trial" in page and (tmp_path / "leaderboard").is_dir()
    assert _count(_study(tmp_path)) == 2 and (tmp_path / "final" / "baseline-paper").is_dir()


def test_trials_share_one_stage_cache_and_a_ddan_trial_reuses_stage_1(tmp_path):
    """Trials that change only stage-2 settings load DDAN's stage 1 from the search's cache."""
    from scripts.launch.search_study import BY_NAME, trial_argv
    from scripts.search import parse, spec_of

    spec = spec_of(parse(["--smoke", "--out", str(tmp_path)]))
    entry = BY_NAME["DDAN"]
    outs = []
    for k, lam in enumerate((0.1, 0.3)):
        argv = trial_argv(entry, "paper", {"lambda2": lam}, spec, tmp_path / f"t{k}" / "r.json")
        assert argv[argv.index("--stage-cache") + 1] == str(tmp_path / "stage_cache")
        run = subprocess.run([sys.executable, str(ROOT / "recipes" / "ddan.py"), *argv],
                             capture_output=True, text=True, cwd=ROOT, timeout=600,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append(run.stdout)
    assert "loaded from" not in outs[0] and "loaded from" in outs[1]


def test_two_workers_share_the_trials_without_running_more(tmp_path):
    from scripts.launch.search_study import search
    from scripts.search import parse, spec_of

    a = parse(["--smoke", "--trials", "4", "--out", str(tmp_path)])
    st = search("AGG", "paper", spec_of(a), "", workers=2)
    trials = [t for t in st.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED")]
    assert 4 <= len(trials) <= 5      # a worker checks the total after each trial: <= K-1 more
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)  # no duplicate


@pytest.mark.slow
def test_a_killed_search_resumes_and_repeats_nothing_finished(tmp_path):
    cmd = [sys.executable, str(ROOT / "scripts" / "search.py"), "--smoke", "--methods", "AGG",
           "--views", "paper", "--trials", "6", "--workers", "1", "--out", str(tmp_path)]
    env = dict(os.environ, DGBLOCKS_TEST_STEP_SLEEP="0.3")
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 300:                    # kill once two trials have finished
        time.sleep(1)
        try:
            if _count(_study(tmp_path)) >= 2:
                break
        except Exception:  # the study is not created yet
            continue
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    st = _study(tmp_path)
    finished = {t.number: t.value for t in st.get_trials(deepcopy=False)
                if t.state.name == "COMPLETE"}
    assert len(finished) >= 2
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=900)
    st = _study(tmp_path)
    after = {t.number: t.value for t in st.get_trials(deepcopy=False)
             if t.state.name == "COMPLETE"}
    assert all(after[n] == v for n, v in finished.items())      # kept, not rerun
    assert _count(st) == 6 and len(st.get_trials(deepcopy=False)) <= 6 + 1  # + one in flight


def test_real_data_protocol2_end_to_end(tmp_path):
    from scripts import search
    from tests.data import fake_trees as ft

    for make in (ft.market, ft.msmt17, ft.cuhksysu, ft.cuhk03):
        make(tmp_path / "data")
    search.main(["--smoke", "--methods", "AGG", "--views", "paper", "--workers", "1",
                 "--data", "real", "--data-root", str(tmp_path / "data"), "--protocol",
                 "protocol2:M", "--batch-size", "8", "--source-val-ids", "2",
                 "--out", str(tmp_path / "s")])
    page = (tmp_path / "s" / "leaderboard.md").read_text()
    assert "| AGG | paper | 2 / " in page


def test_curves_smoke_writes_the_curve_page(tmp_path):
    from scripts import search
    from scripts.launch.curves import curve, flat_step

    search.main(["--smoke", "--curves", "12", "--methods", "AGG", "--workers", "1",
                 "--out", str(tmp_path)])
    page = (tmp_path / "curves.md").read_text()
    assert "| AGG | 12 |" in page and (tmp_path / "curves.png").exists()
    val = curve(tmp_path / "curves" / "baseline-n12" / "seed0.metrics.jsonl", "val")
    assert [p[0] for p in val] == list(range(1, 13)) and (flat_step(val) or 0) <= 12
