"""One Optuna study per method and view: storage, sampler, pruner, the trial objective and the
workers that share a study.

A trial samples the method's search space (its ``space``, declared beside its ``Config``),
trains the recipe in-process for the budget with ``--source-val-every``, reports the
source-validation mAP at each check (a successive-halving pruner stops hopeless trials), and
returns the final source-validation mAP: selection never looks at the targets. The target
scores are kept as the trial's user attributes, for the oracle shown beside.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

from dgblocks.methods.search import Choice, LogUniform, Uniform, as_flags, sample_space
from scripts.launch.registry import BY_NAME, Entry

DONE = ("COMPLETE", "PRUNED")


def storage(url: str, out: Path) -> Any:
    """An Optuna storage: ``url`` (``sqlite:///...``, any RDB URL, or a ``.log`` journal file)
    or, by default, SQLite under ``out``. RDB storages get a heartbeat, so the trial of a
    killed worker is marked failed (and replaced) instead of blocking the count."""
    import optuna

    if not url:
        out.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(out / 'search.db').resolve()}"
    if url.endswith((".log", ".journal")) and "://" not in url:
        from optuna.storages.journal import JournalFileBackend

        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(url))
    return optuna.storages.RDBStorage(url, heartbeat_interval=20, grace_period=60)


def study(entry: Entry, view: str, store: Any, seed: int = 0) -> Any:
    """The study of ``entry``'s ``view`` (created on first use; shared by every worker)."""
    import optuna

    return optuna.create_study(
        study_name=entry.study(view), storage=store, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource="auto", reduction_factor=3))


def _suggest(trial: Any):
    def suggest(name: str, d: Any) -> Any:
        if isinstance(d, LogUniform):
            return trial.suggest_float(name, d.low, d.high, log=True)
        if isinstance(d, Uniform):
            return trial.suggest_float(name, d.low, d.high)
        if isinstance(d, Choice):
            return trial.suggest_categorical(name, list(d.options))
        raise TypeError(f"{name}: not a distribution: {d!r}")
    return suggest


def space_of(entry: Entry, view: str) -> dict[str, Any]:
    """The method's space, less the fields its view fixes (CDVM's AGG view: no centre loss)."""
    fixed = {f[2:].replace("-", "_") for f in entry.views.get(view) or [] if f.startswith("--")}
    return {k: v for k, v in entry.method().space.items() if k not in fixed}


def trial_argv(entry: Entry, view: str, params: dict[str, Any], spec: dict[str, Any],
               out: Path, seed: int = 0) -> list[str]:
    """The recipe's flags for one run: common flags, the budget, the view, the parameters,
    and one stage cache for the whole search (a trial that changes none of what an earlier
    stage reads, e.g. DDAN's stage 1 under a stage-2 weight, loads it instead of training it;
    the cache key holds every setting the stage reads, so nothing else is ever reused)."""
    cache = [] if "--stage-cache" in spec["common"] else [
        "--stage-cache", str(Path(spec["out"]) / "stage_cache")]
    return [*spec["common"], *entry.budget(entry.steps(spec)), *(entry.views.get(view) or []),
            *as_flags(params), "--seed", str(seed), "--out", str(out), "--no-plots",
            "--threads", "1", "--overwrite", *cache]


def objective(entry: Entry, view: str, spec: dict[str, Any]):
    """The trial function: train, report source-val mAP, return the final one."""
    import optuna

    from dgblocks.engine import NonFiniteLoss, train

    def run(trial: Any) -> float:
        params = sample_space(space_of(entry, view), _suggest(trial))
        out = Path(spec["out"]) / "trials" / entry.study(view) / f"trial{trial.number}.json"

        def report(step: int, scores: dict[str, float]) -> None:
            trial.report(scores["mAP"], step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        every = max(1, entry.steps(spec) * spec["val_every"] // spec["steps"])
        argv = trial_argv(entry, view, params, spec, out) + ["--source-val-every", str(every)]
        t0 = time.time()
        try:
            res = train(entry.method(), argv, name=entry.recipe, on_validation=report)
        except NonFiniteLoss as err:  # a diverging setting: the worst score, not a failure
            trial.set_user_attr("diverged", str(err)[:200])
            return 0.0
        except ValueError as err:     # a setting the method refuses, or a broken run
            trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:300])
            raise
        trial.set_user_attr("seconds", round(time.time() - t0, 1))
        trial.set_user_attr("target", res["summary"]["average"])
        trial.set_user_attr("source_val", res["source_val"]["summary"]["average"])
        return float(res["source_val"]["summary"]["average"]["mAP"])
    return run


def _worker(name: str, view: str, spec: dict[str, Any], url: str, index: int = 0) -> None:
    import optuna

    os.environ["TQDM_DISABLE"] = "1"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    entry = BY_NAME[name]  # each worker its own sampler seed: no two draw the same settings
    seed = (spec["seed"] * 1000 + index) * 100_003 + os.getpid()   # (other machines too)
    st = study(entry, view, storage(url, Path(spec["out"])), seed % 2**31)
    total = spec["trials"]
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    failed = (optuna.trial.TrialState.FAIL,)
    if len(st.get_trials(deepcopy=False, states=states)) < total:  # failures: a bug, stop
        st.optimize(objective(entry, view, spec), gc_after_trial=True,
                    callbacks=[optuna.study.MaxTrialsCallback(total, states=states),
                               optuna.study.MaxTrialsCallback(total, states=failed)],
                    catch=(ValueError,))


def search(name: str, view: str, spec: dict[str, Any], url: str, workers: int,
           log: Any = print) -> Any:
    """Run ``spec["trials"]`` trials (the study's total, whoever runs them) with ``workers``
    processes here; a killed search continues where it stopped. Returns the study."""
    entry = BY_NAME[name]
    store = storage(url, Path(spec["out"]))
    st = study(entry, view, store, spec["seed"])
    t0 = time.time()
    if workers <= 1:
        _worker(name, view, spec, url)
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=(name, view, spec, url, k)) for k in
                 range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        bad = [p.exitcode for p in procs if p.exitcode]
        if bad:
            log(f"{entry.study(view)}: {len(bad)} worker(s) ended with {bad}")
    trials = st.get_trials(deepcopy=False)
    counts = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    log(f"{entry.study(view)}: {counts} in {time.time() - t0:.0f} s")
    if counts["FAIL"] >= spec["trials"]:
        fail = next(t for t in reversed(trials) if t.state.name == "FAIL")
        raise RuntimeError(f"{entry.study(view)}: {counts['FAIL']} trials failed; the last: "
                           f"{fail.user_attrs.get('error', 'see the log above')}")
    return st


def best(st: Any, by: str = "source_val") -> Any:
    """The selected trial: the best final source-validation mAP (``by="target"``: the oracle,
    the best average target R-1, an upper bound no honest selection can use)."""
    done = [t for t in st.get_trials(deepcopy=False) if t.state.name == "COMPLETE"
            and t.value is not None and not math.isnan(t.value)]
    if not done:
        return None
    if by == "target":
        return max(done, key=lambda t: t.user_attrs.get("target", {}).get("R1", -1))
    return max(done, key=lambda t: t.value)
