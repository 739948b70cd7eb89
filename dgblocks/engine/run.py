"""``Run``: the glue a recipe needs around its algorithm (see docs/engine.md).

::

    cfg, run = setup(Config, description=__doc__)       # flags, seeds, DDP, output paths
    bench = run.benchmark()                              # --data / --data-root / --protocol
    batches = run.batches(bench.train, batch_size=64, sampler="identity", num_instances=4)
    model, opt = ..., ...
    run.register(model=model, opt=opt)                   # everything resume must restore
    for step, (x, pid, cam, dom, ts) in run.steps(batches, total=cfg.steps):
        loss = train_step(...)
        run.log(loss=loss)
    run.finish(encode=model)                             # evaluate, table, JSON, PNGs

A checkpoint is written every ``--ckpt-every`` steps and at the end of each phase; ``--resume``
restores every registered object, ``run.state``, the sampler position and every RNG just
before the first step that was not finished, so a resumed run ends where an uninterrupted one
does. Phases already finished are skipped.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dgblocks.engine.accel import autocast, compile_module, sync_debug, sync_debug_step
from dgblocks.engine.batches import Batches, index_sampler, move_to
from dgblocks.engine.checkpoint import load_latest_checkpoint, previous_path, save_checkpoint
from dgblocks.engine.config import SharedArgs, config_dict, parse_config
from dgblocks.engine.distributed import init_distributed, wrap_ddp
from dgblocks.engine.logging import MetricsLogger
from dgblocks.engine.progress import progress_bar
from dgblocks.engine.resume import check_resume_config, install_error_handler
from dgblocks.engine.seeding import rng_state, seed_everything, set_rng_state

__all__ = ["Run", "setup"]

_SLEEP = float(os.environ.get("DGBLOCKS_TEST_STEP_SLEEP", "0") or 0)  # test hook (SIGKILL test)


class _GeneratorState:
    def __init__(self, g: torch.Generator) -> None:
        self.g = g

    def state_dict(self) -> dict[str, Tensor]:
        return {"state": self.g.get_state()}

    def load_state_dict(self, s: dict[str, Tensor]) -> None:
        self.g.set_state(s["state"])


def setup(config_cls: type | None, argv: list[str] | None = None, *, name: str | None = None,
          description: str | None = None) -> tuple[Any, Run]:
    """Parse the recipe's dataclass config and the shared flags; start the run.

    From the command line (``argv=None``), a user mistake (a :class:`~dgblocks.DGBlocksError`
    from validation, data loading or resume) prints one line and exits with status 2."""
    name = name or Path(sys.argv[0]).stem or "run"
    if argv is None:
        install_error_handler(name)
    cfg, args = parse_config(config_cls, argv, description=description)
    return cfg, Run(cfg, args, name=name)


class Run:
    """One training run: device, DDP, seeds, checkpoints, logging, evaluation and outputs."""

    def __init__(self, cfg: Any, args: SharedArgs, *, name: str = "run") -> None:
        self.cfg, self.args, self.name = cfg, args, name
        self.dist = init_distributed(args.device)
        self.device, self.is_main = self.dist.device, self.dist.is_main
        seed_everything(args.seed, deterministic=args.deterministic, threads=args.threads)
        self.out = Path(args.out or f"runs/{name}/results.json")
        self.ckpt_path = self.out.with_suffix(".ckpt.pt")
        self.state: dict[str, Any] = {}
        self.objects: dict[str, Any] = {}
        self.done_phases: dict[str, int] = {}
        self.phase, self.step, self.total = "", 0, 0
        self.bench = None
        self.image_size: tuple[int, int] | None = None
        self.t0 = time.time()
        self._ckpt: dict[str, Any] | None = None
        self.effective: dict[str, Any] = {}  # settings that ran other than configured
        # the settings as given (a recipe may resolve "0: automatic" fields later): resume
        # compares these; states of objects a resumed run no longer registers are carried on
        self.given = {"config": config_dict(cfg) if cfg is not None else {},
                      "shared": config_dict(args)}
        self._carried: dict[str, Any] = {}
        if self.is_main:
            for stale in self.out.parent.glob(f".{self.ckpt_path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
        path = self.ckpt_path if args.resume == "auto" else Path(args.resume)
        resume = bool(args.resume) and (args.resume != "auto" or path.exists()
                                        or previous_path(path).exists())
        metrics_file = self.out.with_suffix(".metrics.jsonl")
        if self.is_main and not resume and metrics_file.exists():
            metrics_file.unlink()  # a fresh run (or one killed before a checkpoint) starts afresh
        self.logger = MetricsLogger(metrics_file if self.is_main else None)
        if resume:
            self._ckpt, path = load_latest_checkpoint(path)
            check_resume_config(self._ckpt.get("given", {}), self.given, args, path)
            self._carried = dict(self._ckpt["objects"])
            self.state = dict(self._ckpt["state"])
            self.done_phases = dict(self._ckpt["done_phases"])
            self.logger.truncate(self._ckpt["phase"], self._ckpt["step"],
                                 set(self.done_phases), lines=self._ckpt.get("log_lines"))
            self.print(f"resuming from {path} (phase {self._ckpt['phase']!r}, "
                       f"step {self._ckpt['step']})")

    # ---------------------------------------------------------------- set-up helpers
    def print(self, *a: Any, **kw: Any) -> None:
        """``print`` on rank 0 only."""
        if self.is_main:
            print(*a, **kw, flush=True)

    def benchmark(self, cfg: Any = None, **kwargs: Any) -> Any:
        """``dgblocks.protocols.build_benchmark`` from ``--data --data-root --protocol --smoke
        --seed``, at ``cfg.image_size`` (0 0: 64 x 32 embedded, 256 x 128 real data);
        keyword arguments (``image_size=...``) override."""
        from dgblocks.protocols import build_benchmark

        a = self.args
        size = tuple(getattr(cfg, "image_size", None) or (0, 0))
        if not all(size):
            size = (256, 128) if a.data == "real" else (64, 32)
        kw = {"root": a.data_root or None, "protocol": a.protocol or None, "smoke": a.smoke,
              "seed": a.seed, "image_size": size} | kwargs
        if a.check_data:  # list every problem of the data, then exit (1: some found)
            from dgblocks.data.check import check_data

            problems = check_data(lambda: build_benchmark(data=a.data, **kw), progress=self.print)
            self.print("\n".join([f"--check-data: {len(problems)} problem(s)", *problems]))
            raise SystemExit(1 if problems else 0)
        self.bench = build_benchmark(data=a.data, **kw)
        self.image_size = size if self.bench.task == "reid" else None
        return self.bench

    def batches(self, dataset: Any, *, batch_size: int,
                sampler: str | Callable[[torch.Generator], Any] = "identity",
                num_instances: int = 4, seed: int | None = None, **kwargs: Any) -> Batches:
        """Resumable, rank-sharded batches: ``"identity"`` (P x K), ``"domain"`` (equal per
        domain), ``"random"``, or ``sampler(generator) -> indices`` called each epoch."""
        if not callable(sampler):
            sampler = index_sampler(sampler, dataset, batch_size, num_instances)
        kwargs.setdefault("pin_memory", self.device.type == "cuda")
        if batch_size != getattr(self.cfg, "batch_size", batch_size):  # recorded, not hidden
            self.effective.setdefault("batch_size", batch_size)
            self.print(f"batch size {batch_size} (--batch-size {self.cfg.batch_size} rounded "
                       "to what the sampler can draw; recorded as effective.batch_size)")
        seed = self.args.seed if seed is None else seed
        return Batches(dataset, batch_size=batch_size, sampler=sampler, seed=seed,
                       rank=self.dist.rank, world_size=self.dist.world_size,
                       workers=self.args.workers, **kwargs)

    def prepare(self, module: nn.Module, *submodules: str) -> nn.Module:
        """``module`` on the device; with ``--compile`` its forward (or, when named, the
        forwards of ``submodules``, e.g. ``"enc.encoder_s"``) compiled in place."""
        module = module.to(self.device)
        if self.args.compile:
            for m in [module.get_submodule(n) for n in submodules] or [module]:
                compile_module(m, backend=self.args.compile_backend)
        return module

    def ddp(self, module: nn.Module, **kwargs: Any) -> nn.Module:
        """The module prepared (:meth:`prepare`) and wrapped in DDP when distributed."""
        return wrap_ddp(self.prepare(module), device=self.device, **kwargs)

    def autocast(self) -> Any:
        """The ``--amp`` autocast context (``run.steps`` runs every step inside it)."""
        return autocast(self.device, self.args.amp)

    def to_device(self, batch: Any) -> Any:
        """Tensors of ``batch`` (nested lists, tuples, dicts) on the device, asynchronously."""
        return move_to(batch, self.device)

    def register(self, **objects: Any) -> None:
        """Objects whose ``state_dict`` a checkpoint holds: modules, optimisers, schedulers,
        ``torch.Generator`` s, pools, schedules. Registered after a resume, an object gets its
        saved state at once (and again just before the first resumed step)."""
        for name, obj in objects.items():
            if isinstance(obj, nn.parallel.DistributedDataParallel):
                obj = obj.module
            if isinstance(obj, torch.Generator):
                obj = _GeneratorState(obj)
            if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
                raise ValueError(f"{name}: expected an object with state_dict/load_state_dict, "
                                 f"got {type(obj).__name__}")
            self.objects[name] = obj
            if self._ckpt is not None and name in self._ckpt["objects"]:
                obj.load_state_dict(self._ckpt["objects"][name])

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``run.state[key]``, computed once: a value derived between phases (DDAN's central
        domain) is saved with the checkpoint instead of being recomputed from a later model."""
        if key not in self.state:
            self.state[key] = compute()
        return self.state[key]

    # ---------------------------------------------------------------- the loop
    @property
    def progress(self) -> float:
        """Fraction of the current phase done, in [0, 1] (the GRL warm-start's ``p``)."""
        return self.step / max(self.total, 1)

    def skip(self, phase: str) -> bool:
        """True when ``phase`` was finished before this (resumed) run started; the state the
        checkpoint saved at its end is then restored, if the checkpoint was taken there."""
        if phase not in self.done_phases:
            return False
        if self._ckpt is not None and self._ckpt["phase"] == phase:
            self._restore(self._ckpt)
        self.print(f"phase {phase!r} already finished: skipped")
        return True

    def resumes_in(self, phase: str) -> bool:
        """True when the checkpoint being resumed was taken inside ``phase``."""
        return self._ckpt is not None and self._ckpt["phase"] == phase

    def finish_phase(self, phase: str, total: int) -> None:
        """Mark ``phase`` finished without running it (a stage-cache hit) and checkpoint."""
        self.phase, self.step, self.total = phase, total, total
        self.done_phases[phase] = total
        self.save(phase, total)

    def steps(self, batches: Batches, total: int, *, phase: str = "train",
              on_end: Callable[[], None] | None = None,
              before_save: Callable[[], None] | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(step, batch)`` for ``step`` in ``[start, total)``, batches on the device; the
        loop body runs under the ``--amp`` autocast. ``on_end()`` runs after the last step,
        before the phase's final checkpoint; ``before_save()`` before every checkpoint (a
        check that may raise to keep a bad state off the disk)."""
        start = 0
        ck = self._ckpt
        if ck is not None and ck["phase"] == phase:  # the checkpoint was taken in this phase
            self._restore(ck)
            if phase not in self.done_phases:
                start = int(ck["step"])
                batches.load_state_dict(ck["batches"])
        if phase in self.done_phases:
            self.print(f"phase {phase!r} already finished: skipped")
            return
        self.phase, self.total = phase, total
        bar = progress_bar(total=total, initial=start, desc=f"{self.name}:{phase}",
                           enabled=self.is_main)
        debug = sync_debug_step()
        every = max(self.args.ckpt_every, 1)
        for step in range(start, total):
            self.step = step
            batch = move_to(next(batches), self.device)
            with self.autocast(), sync_debug(self.device, step == debug):
                yield step, batch
            if _SLEEP:
                time.sleep(_SLEEP)
            done = step + 1
            self.step = done
            if done % every == 0 and done < total:
                if before_save is not None:
                    before_save()
                self.save(phase, done, batches)
            bar.update(1)
        bar.close()
        self.step = total
        if on_end is not None:
            on_end()
        if before_save is not None:
            before_save()
        self.done_phases[phase] = total
        self.save(phase, total, batches)

    def logs_now(self) -> bool:
        """Whether :meth:`log` at the current step writes a record."""
        return self.step % self.args.log_every == 0 or self.step == self.total - 1

    def log(self, *, every: int | None = None, **metrics: Any) -> None:
        """Log ``metrics`` at the current step every ``--log-every`` steps (rank 0)."""
        every = every or self.args.log_every
        if self.step % every == 0 or self.step == self.total - 1:
            self.logger.log(self.step, self.phase, **metrics)

    def save(self, phase: str, step: int, batches: Batches | None = None) -> None:
        """Write the checkpoint (rank 0): objects, ``state``, sampler position, RNGs."""
        if not self.is_main:
            return
        save_checkpoint(self.ckpt_path, {
            "phase": phase, "step": step, "done_phases": dict(self.done_phases),
            "objects": self._carried | {n: o.state_dict() for n, o in self.objects.items()},
            "batches": batches.state_dict() if batches is not None else {},
            "rng": rng_state(), "state": self.state, "log_lines": self.logger.lines,
            "config": config_dict(self.cfg) if self.cfg is not None else {},
            "given": self.given})

    def _restore(self, ck: dict[str, Any]) -> None:
        for name, obj in self.objects.items():
            if name in ck["objects"]:
                obj.load_state_dict(ck["objects"][name])
        set_rng_state(ck["rng"])
        self._ckpt = None

    def restore_finished(self) -> None:
        """Restore a checkpoint whose phase never came up (called by :meth:`finish`)."""
        if self._ckpt is not None:
            self._restore(self._ckpt)

    def finish(self, encode: Callable[[Tensor], Tensor], **kwargs: Any) -> dict[str, Any]:
        """Evaluate on the unseen targets, print the table, write the results JSON and PNGs.

        See :func:`dgblocks.engine.evaluation.finish_run` for the keyword arguments.
        """
        from dgblocks.engine.evaluation import finish_run

        self.restore_finished()
        if self.effective:
            kwargs["extra"] = {"effective": dict(self.effective)} | (kwargs.get("extra") or {})
        return finish_run(self, encode, **kwargs)
