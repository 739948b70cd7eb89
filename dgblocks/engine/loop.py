"""The one training loop: any :class:`dgblocks.methods.Method`, stage by stage.

::

    cfg, run = setup(Config, argv, name="mine")
    bench = run.benchmark()
    method = MyMethod(cfg, bench, seed=run.args.seed)
    fit(method, run)                 # stages, checkpoints, resume, stage caches, NaN guard
    run.finish(encode=method.encode)

or, for a recipe, :func:`train` does all four lines from the method's class.

Every stage: skipped when a resumed run had finished it; loaded from the stage cache when the
stage is cacheable and an earlier run with the same key produced it; otherwise re-seeded
(:func:`stage_seed`: from the run's seed and the stage's name, so a stage starts alike
whether the stages before it ran or came from the cache), given fresh batches of its own
order, and run for its steps.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dgblocks._checks import DGBlocksError
from dgblocks.engine.config_checks import ConfigError
from dgblocks.engine.context import LoopContext
from dgblocks.engine.distributed import gathered_encode, wrap_ddp
from dgblocks.engine.seeding import derive_seed, seed_everything
from dgblocks.engine.stage_cache import stage_cache

__all__ = ["fit", "train", "stage_seed", "source_validation", "NonFiniteLoss"]


class NonFiniteLoss(DGBlocksError):
    """A loss term became NaN or infinite: the run stops; its last checkpoint is finite."""


class _Guard:
    """Remembers, on the device, the first step at which each logged term was not finite
    (no host sync per step); :meth:`check` reads it (one sync) and raises."""

    def __init__(self) -> None:
        self.first: dict[str, Tensor] = {}

    def observe(self, step: int, logs: dict[str, Any]) -> None:
        for k, v in logs.items():
            if isinstance(v, Tensor) and v.is_floating_point():
                bad = ~torch.isfinite(v.detach()).all()
                prev = self.first.get(k)
                if prev is None:
                    prev = torch.full((), -1, dtype=torch.long, device=v.device)
                self.first[k] = torch.where(bad & (prev < 0), step, prev)
            elif isinstance(v, float) and not math.isfinite(v):
                self.first.setdefault(k, torch.tensor(step))

    def check(self, stage: str, method: Any, ckpt: Path) -> None:
        if self.first:
            steps = torch.stack([t.cpu() for t in self.first.values()]).tolist()
            bad = [(s, k) for s, k in zip(steps, self.first) if s >= 0]
            if bad:
                s, k = min(bad)
                raise NonFiniteLoss(f"stage {stage!r}, step {s}: loss term {k!r} is not finite "
                                    f"(NaN or inf); the run stops. Its last checkpoint "
                                    f"({ckpt}) holds finite weights: lower --lr or check the "
                                    "data, then --resume")
        params = [p.detach() for p in method.parameters()]
        if params and not bool(torch.stack([p.isfinite().all() for p in params]).all()):
            raise NonFiniteLoss(f"stage {stage!r}: the weights are not finite (NaN or inf) "
                                f"although every logged loss was; not saved. Last checkpoint: "
                                f"{ckpt}")


def stage_seed(seed: int, name: str) -> int:
    """The seed stage ``name`` starts from (its global RNGs and its batch order):
    ``derive_seed(seed, crc32(name))``. It depends on the run's seed and the stage's name
    only, so a stage starts alike whatever ran (or was loaded from the cache) before it and
    whatever the method built.

    Example:
        >>> stage_seed(0, "train") == stage_seed(0, "train") != stage_seed(0, "stage1")
        True
    """
    return derive_seed(seed, zlib.crc32(name.encode())) % 2**31


def _distribute(method: Any, run: Any) -> None:
    if run.dist.world_size > 1:
        if not method.distributed:
            raise DGBlocksError(f"{type(method).__name__}: single process only (no DDP wiring);"
                                f" got world size {run.dist.world_size}")
        for name in method.distributed:
            if getattr(method, name, None) is not None:
                method._ddp[name] = wrap_ddp(method.get_submodule(name), device=run.device,
                                             sync_bn=True)


def source_validation(method: Any, run: Any, *, targets: bool = False) -> dict[str, Any]:
    """R1 / mAP of ``method.encode`` on the benchmark's source-validation split (held-out
    identities of the sources: model selection never looks at the targets); the method is
    handed back in the mode it was in. ``{}`` when the benchmark has none. ``targets=True``
    scores the unseen targets instead (learning curves)."""
    from dgblocks.eval import evaluate_benchmark, summarize

    val = (run.bench.targets if targets else getattr(run.bench, "source_val", None)) or []
    if not val or getattr(run.bench, "task", "reid") != "reid":
        return {}
    mode = method.training
    method.eval()
    with torch.no_grad():
        metrics = evaluate_benchmark(gathered_encode(method.encode), val, progress=False,
                                     batch_size=run.args.eval_batch_size, device=run.device)
    method.train(mode)
    return {"metrics": metrics, "summary": summarize(metrics, ("R1", "R5", "R10", "mAP"))}


def _validate(method: Any, run: Any, stage: Any, on_validation: Any) -> None:
    res = source_validation(method, run)
    if res:
        avg = res["summary"]["average"]
        done = run.step + 1                           # after this many steps of the stage
        run.logger.log(done, f"val:{stage.name}", R1=avg["R1"], mAP=avg["mAP"])
        if run.args.curve_targets:                    # a learning curve, never a selection
            tgt = source_validation(method, run, targets=True)["summary"]["average"]
            run.logger.log(done, f"target:{stage.name}", R1=tgt["R1"], mAP=tgt["mAP"])
        if on_validation is not None:
            on_validation(done, avg)


def _run_stage(method: Any, run: Any, stage: Any, cache: Any, *, last: bool = False,
               on_validation: Any = None) -> None:
    """One stage from scratch (or from the checkpoint inside it): re-seed, batches, steps."""
    seed = stage_seed(run.args.seed, stage.name)
    if not run.resumes_in(stage.name):               # the one re-seeding rule
        seed_everything(seed, deterministic=run.args.deterministic, threads=run.args.threads)
    batches = run.batches(stage.data if stage.data is not None else run.bench.train,
                          batch_size=stage.batch_size, sampler=stage.sampler,
                          num_instances=stage.num_instances, seed=seed)
    method.stage, method.ctx._batches = stage, batches
    method.train()
    method.begin_stage(stage)
    guard = _Guard()

    def check() -> None:
        guard.check(stage.name, method, run.ckpt_path)

    every = run.args.source_val_every if last else 0
    try:
        for step, batch in run.steps(batches, total=stage.steps, phase=stage.name,
                                     on_end=lambda: method.end_stage(stage), before_save=check):
            logs = method.step(batch)
            guard.observe(step, logs)
            if run.logs_now():
                check()
            run.log(**logs, lr=method.lr())
            if every and (step + 1) % every == 0:  # a learning curve on held-out source ids
                _validate(method, run, stage, on_validation)
    finally:  # the workers stop before the next stage forks its own (which would inherit them)
        method.ctx.close_streams()
    if cache is not None and run.is_main:
        cache.save(method.stage_payload(stage))


def fit(method: Any, run: Any, *, on_validation: Any = None) -> None:
    """Train ``method`` through every stage of ``method.stages()`` (see the module docstring).

    Args:
        method: a :class:`dgblocks.methods.Method` built on ``run``'s benchmark.
        run: the :class:`dgblocks.engine.Run` from :func:`dgblocks.engine.setup`.
        on_validation: ``on_validation(step, {"R1": .., "mAP": .., ...})``, called with the
            source-validation scores every ``--source-val-every`` steps of the last stage (a search
            reports them to prune a trial; it may raise to stop the run).
    """
    run.prepare(method, *(method.compiled or [n for n, m in method.named_children()
                                              if next(m.parameters(), None) is not None]))
    _distribute(method, run)
    method.ctx = LoopContext(run)
    run.register(method=method)
    stages = method.stages()
    for k, stage in enumerate(stages):
        if run.skip(stage.name):                      # finished before a resume
            continue
        cache = stage_cache(run, method, stage) if stage.cache else None
        if cache is not None and not run.resumes_in(stage.name):
            payload = cache.load(map_location=run.device)
            if payload is not None:
                method.load_stage(stage, payload)
                run.print(f"stage {stage.name!r}: loaded from {cache.path}")
                run.finish_phase(stage.name, stage.steps)
                continue
        _run_stage(method, run, stage, cache, last=k == len(stages) - 1,
                   on_validation=on_validation)
    method.stage = None


def _steps_from_epochs(cfg: Any, bench: Any, run: Any) -> None:
    """``--steps -1 --epochs E``: E epochs of the training set the method trains on (after
    ``prepare_benchmark`` reshaped it: one source, a held-out domain, ...), in the papers' unit
    ``round(E x images / batch size)``."""
    if getattr(cfg, "steps", 0) != -1:
        return
    epochs, size = getattr(cfg, "epochs", 0), getattr(cfg, "batch_size", 0)
    if epochs <= 0:
        raise ConfigError("--steps: -1 trains for --epochs, which is 0; give --epochs E > 0 "
                          "or a number of steps")
    if size <= 0:
        raise ConfigError(f"--batch-size: --epochs needs a batch size, got {size}")
    cfg.steps = max(1, round(epochs * len(bench.train) / size))
    run.effective["steps"] = cfg.steps


def train(method_cls: type, argv: list[str] | None = None, *, config: type | None = None,
          name: str | None = None, description: str | None = None,
          on_validation: Any = None) -> dict[str, Any]:
    """A recipe's ``main``: parse flags into ``config`` (default ``method_cls.Config``), build
    the benchmark (``method_cls.prepare_benchmark`` may reshape it), the method, train it
    (:func:`fit`), evaluate on the unseen targets and write the results (``run.finish``).

    Returns:
        The results payload (metrics per target, summary, config, ...).
    """
    from dgblocks.engine.run import setup

    cfg, run = setup(config or method_cls.Config, argv, name=name, description=description)
    proto = getattr(method_cls, "default_protocol", None)  # real data without --protocol
    kw = {"protocol": proto} if proto and run.args.data == "real" and not run.args.protocol else {}
    bench = run.benchmark(cfg, **kw)
    if run.args.source_val_ids and not bench.source_val:   # real data: hold source ids out
        from dgblocks.protocols import hold_out_identities

        g = torch.Generator().manual_seed(run.args.seed)
        bench.train, val = hold_out_identities(bench.train, run.args.source_val_ids,
                                               generator=g, name="sources-val",
                                               arg="--source-val-ids")
        bench.source_val, bench.num_ids = [val], bench.train.num_ids
    bench = run.bench = method_cls.prepare_benchmark(cfg, bench, run.args)
    _steps_from_epochs(cfg, bench, run)
    method = method_cls(cfg, bench, seed=run.args.seed)
    run.print(method.describe())
    fit(method, run, on_validation=on_validation)
    method.eval()
    size = {"image_size": list(run.image_size) if run.image_size else None,
            "source_val": source_validation(method, run) or None}
    return run.finish(encode=method.encode, classify=method.classifier(),
                      extra=size | method.results(), title=method.describe())
