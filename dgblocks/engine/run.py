"""``Run``: the glue around a method: flags, device, DDP, seeds, output checks, checkpoints,
the step loop, logging and the end of a run (see docs/engine.md).

Recipes never drive it by hand: :func:`dgblocks.engine.train` and :func:`dgblocks.engine.fit`
do. A checkpoint is written every ``--ckpt-every`` steps and at the end of each phase;
``--resume`` restores every registered object, the sampler position and every RNG just before
the first step that was not finished, so a resumed run ends where an uninterrupted one does.
Phases already finished are skipped.
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
from dgblocks.engine.checkpoint import previous_path
from dgblocks.engine.config import SharedArgs, config_dict, parse_config
from dgblocks.engine.distributed import init_distributed
from dgblocks.engine.logging import MetricsLogger
from dgblocks.engine.outputs import check_outputs
from dgblocks.engine.progress import progress_bar
from dgblocks.engine.resume import install_error_handler
from dgblocks.engine.run_state import RunState
from dgblocks.engine.seeding import seed_everything

__all__ = ["Run", "setup"]

_SLEEP = float(os.environ.get("DGBLOCKS_TEST_STEP_SLEEP", "0") or 0)  # test hook (SIGKILL test)
_EXIT_AFTER = os.environ.get("DGBLOCKS_TEST_EXIT_AFTER_SAVE", "")  # test hook: "phase:step"


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
        self.stage_cache = Path(args.stage_cache) if args.stage_cache else (
            self.out.parent / "stage_cache")
        self.phase, self.step, self.total = "", 0, 0
        self.bench = None
        self.image_size: tuple[int, int] | None = None
        self.t0 = time.time()
        self.effective: dict[str, Any] = {}  # settings that ran other than configured
        # the settings as given (a method may resolve "0: automatic" fields later): resume
        # compares these
        self.ckpt = RunState(self.ckpt_path, {"config": config_dict(cfg) if cfg is not None
                                              else {}, "shared": config_dict(args)})
        path = self.ckpt_path if args.resume == "auto" else Path(args.resume)
        resume = bool(args.resume) and (args.resume != "auto" or path.exists()
                                        or previous_path(path).exists())
        if self.is_main:                   # nothing trains before the outputs are known good
            check_outputs(self.out, resume=bool(args.resume), overwrite=args.overwrite,
                          stage_cache=self.stage_cache)
            for stale in self.out.parent.glob(f".{self.ckpt_path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
        metrics_file = self.out.with_suffix(".metrics.jsonl")
        if self.is_main and not resume and metrics_file.exists():
            metrics_file.unlink()  # --overwrite, or a run killed before its first checkpoint
        self.logger = MetricsLogger(metrics_file if self.is_main else None)
        if resume:
            ck, path = self.ckpt.open(path, args)
            self.logger.truncate(ck["phase"], ck["step"], set(self.ckpt.done_phases),
                                 lines=ck.get("log_lines"))
            self.print(f"resuming from {path} (phase {ck['phase']!r}, step {ck['step']})")

    @property
    def objects(self) -> dict[str, Any]:
        """The registered objects, by name."""
        return self.ckpt.objects

    @property
    def done_phases(self) -> dict[str, int]:
        """Phases finished, with their step counts (saved in every checkpoint)."""
        return self.ckpt.done_phases

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

    def autocast(self) -> Any:
        """The ``--amp`` autocast context (``run.steps`` runs every step inside it)."""
        return autocast(self.device, self.args.amp)

    def to_device(self, batch: Any) -> Any:
        """Tensors of ``batch`` (nested lists, tuples, dicts) on the device, asynchronously."""
        return move_to(batch, self.device)

    def register(self, **objects: Any) -> None:
        """Objects whose ``state_dict`` a checkpoint holds: modules, optimisers, schedulers,
        ``torch.Generator`` s, batch streams. Registered after a resume, an object gets its
        saved state at once (and again just before the first resumed step)."""
        self.ckpt.register(**objects)

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
        if self.ckpt.resumes_in(phase):
            self.ckpt.restore()
        self.print(f"phase {phase!r} already finished: skipped")
        return True

    def resumes_in(self, phase: str) -> bool:
        """True when the checkpoint being resumed was taken inside ``phase``."""
        return self.ckpt.resumes_in(phase)

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
        if self.ckpt.resumes_in(phase):  # the checkpoint was taken in this phase
            ck = self.ckpt.restore()
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
        """Write the checkpoint (rank 0): objects, phases, sampler position, RNGs; the metrics
        written so far are flushed to disk first."""
        if self.is_main:
            self.logger.sync()
            self.ckpt.save(phase, step, batches=batches, log_lines=self.logger.lines,
                           config=config_dict(self.cfg) if self.cfg is not None else {})
            if _EXIT_AFTER == f"{phase}:{step}":  # a kill right after this checkpoint
                os._exit(137)

    def finish(self, encode: Callable[[Tensor], Tensor], **kwargs: Any) -> dict[str, Any]:
        """Evaluate on the unseen targets, print the table, write the results JSON and PNGs.

        See :func:`dgblocks.engine.evaluation.finish_run` for the keyword arguments.
        """
        from dgblocks.engine.evaluation import finish_run

        self.ckpt.restore()  # a checkpoint whose phase never came up
        if self.effective:
            kwargs["extra"] = {"effective": dict(self.effective)} | (kwargs.get("extra") or {})
        return finish_run(self, encode, **kwargs)
