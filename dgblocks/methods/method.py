"""``Method``: one training algorithm, as the engine's one loop runs it (DomainBed's
``Algorithm.update``, with declared stages and exact resume).

A method is an ``nn.Module`` built from ``(cfg, bench)``. It owns its networks, losses,
optimisers, learning-rate schedules, random generators and clocks; ``update(batch)`` does one
optimisation step and returns logs (never summed into a loss); ``encode(x)`` is the retrieval
feature; ``state_dict()`` holds everything exact resume needs (optimiser, scheduler and
generator states travel as the module's extra state). A method with several stages (a
pre-training stage, a warm-up) declares them in :meth:`Method.stages`; the engine runs each
stage's steps, checkpoints, resumes, caches and re-seeds them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from dgblocks._checks import DGBlocksError, check_int
from dgblocks.engine.seeding import derive_seed
from dgblocks.layers import GradientReversal
from dgblocks.methods.context import LocalContext
from dgblocks.methods.optim import OptimizerSlot, build_optimizer
from dgblocks.methods.stage import Batch, Stage

__all__ = ["Batch", "Stage", "Method"]


class Method(nn.Module):
    """Base class of every training algorithm (see the module docstring and
    ``docs/new_method.md``).

    Args:
        cfg: the method's config (a dataclass; :class:`dgblocks.methods.TrainConfig` fields
            ``steps``, ``batch_size``, ``num_instances`` and the optimiser fields).
        bench: the :class:`dgblocks.data.Benchmark` it trains on (``num_ids``,
            ``num_domains``, ``task``, ``train``).
        seed: the run's seed (the method's own generators derive from it).

    Subclasses implement :meth:`update` and :meth:`encode`, build their networks in
    ``__init__`` and their optimisers in :meth:`configure_optimizers`; they may override
    :meth:`stages`, :meth:`begin_stage`, :meth:`end_stage` and :meth:`results`.
    """

    space: dict[str, Any] = {}         # search space of its Config (dgblocks.methods.search)
    compiled: tuple[str, ...] = ()     # sub-modules --compile compiles (): every child network
    distributed: tuple[str, ...] = ()  # sub-modules wrapped in DDP under torchrun (): 1 process

    def __init__(self, cfg: Any, bench: Any, *, seed: int = 0) -> None:
        super().__init__()
        if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
            raise DGBlocksError(f"cfg: expected a config dataclass instance, got "
                                f"{type(cfg).__name__}")
        if not isinstance(getattr(bench, "num_ids", None), int):
            raise DGBlocksError(f"bench: expected a Benchmark (with num_ids), got "
                                f"{type(bench).__name__}")
        self.cfg, self.bench, self.seed = cfg, bench, check_int(seed, name="seed")
        self.state: dict[str, Any] = {}   # plain values saved with the state_dict
        self.ctx: Any = LocalContext(self, seed=seed)  # the engine sets its loop's
        self.stage: Stage | None = None   # the stage being run (set by the engine)
        self._lr_of: tuple = (None, None)  # (stage, the first optimiser it stepped): lr()
        self._optims: dict[str, OptimizerSlot] | None = None
        self._generators: dict[str, torch.Generator] = {}
        self._generator_seeds: dict[str, int] = {}
        self._ddp: dict[str, nn.Module] = {}   # DDP wrappers of ``distributed`` (the engine)
        self._tracked: dict[str, Any] = {}     # non-module objects with a state_dict

    # ------------------------------------------------------------------ to override
    def stages(self) -> list[Stage]:
        """The stages, in order; default: one stage of ``cfg.steps`` P x K batches."""
        c = self.cfg
        return [Stage("train", c.steps, batch_size=c.batch_size,
                      num_instances=getattr(c, "num_instances", 4))]

    def update(self, batch: Batch) -> dict[str, Any]:
        """One optimisation step on ``batch``; returns logs (tensors are fine: the engine
        reads them every ``--log-every`` steps)."""
        raise NotImplementedError(f"{type(self).__name__}.update")

    def encode(self, x: Tensor) -> Tensor:
        """The retrieval feature of images ``x`` (B, C, H, W) in ``[0, 1]``, in eval mode."""
        raise NotImplementedError(f"{type(self).__name__}.encode")

    def configure_optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, Any]]:
        """``{name: (optimiser, scheduler or None)}``; built once, on first use."""
        return {}

    def begin_stage(self, stage: Stage) -> None:
        """Called before ``stage``'s first step (also when a run resumes inside it)."""

    def end_stage(self, stage: Stage) -> None:
        """Called after ``stage``'s last step, before its final checkpoint."""

    def results(self) -> dict[str, Any]:
        """Entries the results JSON gets beside the metrics (the ablation's name, ...)."""
        return {}

    def describe(self) -> str:
        """One line naming the method and its variant (printed, and the results' title)."""
        return type(self).__name__

    def classifier(self) -> Callable[[Tensor], Tensor] | None:
        """Images -> class logits for classification benchmarks (digits); ``None``: ReID."""
        return None

    @classmethod
    def prepare_benchmark(cls, cfg: Any, bench: Any, args: Any) -> Any:
        """The benchmark the method trains on, from the one the flags built (``args``: the
        shared flags): a leave-one-out split, one source, relabelled domains. Default: as is."""
        return bench

    # ------------------------------------------------------------------ provided
    @property
    def device(self) -> torch.device:
        """The device of the method's parameters (CPU when it has none)."""
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers of :meth:`configure_optimizers`, by name."""
        return {k: o.optimizer for k, o in self._built().items()}

    def _built(self) -> dict[str, OptimizerSlot]:
        if self._optims is None:
            self._optims = {}
            for name, (opt, sched) in self.configure_optimizers().items():
                self._optims[name] = OptimizerSlot(opt, sched)
        return self._optims

    def make_optimizer(self, params: Any, *, total: int | None = None, lr: float | None = None,
                       cfg: Any = None, **overrides: Any) -> tuple[torch.optim.Optimizer, Any]:
        """An optimiser over ``params`` and its schedule from the config's optimiser fields
        (``cfg`` defaults to the method's; :func:`dgblocks.methods.optim.build_optimizer`)."""
        return build_optimizer(params, self.cfg if cfg is None else cfg, total=total, lr=lr,
                               **overrides)

    def ddp(self, name: str) -> nn.Module:
        """Sub-module ``name``, through its DDP wrapper when the engine made one (call the
        networks of :attr:`distributed` through this in :meth:`update`)."""
        return self._ddp.get(name) or self.get_submodule(name)

    def minimize(self, loss: Tensor, name: str = "main") -> None:
        """``zero_grad``, ``backward``, ``step`` of optimiser ``name``, then its schedule."""
        if not isinstance(loss, Tensor) or loss.dim() != 0 or not loss.requires_grad:
            raise DGBlocksError(f"loss: expected a scalar tensor with a graph, got "
                                f"{type(loss).__name__}"
                                f"{tuple(loss.shape) if isinstance(loss, Tensor) else ''}")
        o = self._built().get(name) if isinstance(name, str) else None
        if o is None:
            raise DGBlocksError(f"name: expected one of the optimisers {list(self._built())}, "
                                f"got {name!r}")
        if self._lr_of[0] is not self.stage:
            self._lr_of = (self.stage, name)
        o.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        o.optimizer.step()
        if o.scheduler is not None:
            o.scheduler.step()

    def lr(self, name: str | None = None) -> float:
        """The current learning rate of optimiser ``name`` (default: the first one
        :meth:`minimize` stepped in the current stage, else the first: the training log's)."""
        built = self._built()
        if not built:
            return 0.0
        stage, first = self._lr_of
        if name is None and stage is self.stage and first in built:
            name = first
        if name is not None and (not isinstance(name, str) or name not in built):
            raise DGBlocksError(f"name: expected one of the optimisers {list(built)}, "
                                f"got {name!r}")
        return built[name or next(iter(built))].optimizer.param_groups[0]["lr"]

    def track(self, name: str, obj: Any) -> Any:
        """Save ``obj`` (not a module, with ``state_dict``/``load_state_dict``: a domain
        splitter, an alternation schedule) with the method's state_dict; returns it."""
        if not isinstance(name, str) or not name:
            raise DGBlocksError(f"name: expected a name, got {name!r}")
        if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
            raise DGBlocksError(f"obj: expected an object with state_dict/load_state_dict, got "
                                f"{type(obj).__name__}")
        self._tracked[name] = obj
        return obj

    @contextlib.contextmanager
    def seeded(self, *parts: int) -> Iterator[None]:
        """Run the block (a network's construction) from the torch seed
        ``derive_seed(seed, *parts)``, leaving the global RNG as it was: a network whose
        stage may come from the stage cache starts the same whatever was built before it."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, *parts) % 2**63)
            yield

    def generator(self, name: str, seed: int | None = None, *,
                  device: str | torch.device | None = None) -> torch.Generator:
        """The method's own random generator ``name`` on ``device`` (default: the method's;
        created on first use, seeded with ``seed``, default the run's seed); saved with the
        state_dict."""
        if not isinstance(name, str) or not name:
            raise DGBlocksError(f"name: expected a generator name, got {name!r}")
        g = self._generators.get(name)
        if g is None:
            dev = torch.device(device) if device is not None else self.device
            g = torch.Generator(device=dev) if dev.type != "meta" else torch.Generator()
            self._generator_seeds[name] = self.seed if seed is None else int(seed)
            g.manual_seed(self._generator_seeds[name])
            self._generators[name] = g
        return g

    def step(self, batch: Any) -> dict[str, Any]:
        """What the engine calls: the stage's update on ``batch``, then the clocks."""
        stage = self.stage
        fn = stage.update if stage is not None and stage.update is not None else self.update
        logs = fn(batch if isinstance(batch, Batch) or len(batch) != 5 else Batch(*batch))
        if stage is None or stage.clocks:
            self.advance_clocks()
        if isinstance(self.ctx, LocalContext):
            self.ctx.step += 1
        return logs

    def clocks(self) -> Iterator[nn.Module]:
        """The schedules :meth:`advance_clocks` steps: every gradient reversal's."""
        return (m for m in self.modules() if isinstance(m, GradientReversal))

    def advance_clocks(self) -> None:
        """Advance every clock once (after each optimisation step of a clocked stage)."""
        for m in self.clocks():
            m.step()

    # ------------------------------------------------------------------ state
    def stage_payload(self, stage: Stage) -> dict[str, Any]:
        """What the stage cache keeps of ``stage``: the state of each sub-module and the
        :attr:`state` value named in ``stage.cache``."""
        out: dict[str, Any] = {}
        for name in stage.cache:
            if name in self.state:
                out[name] = self.state[name]
            else:
                out[name] = self.get_submodule(name).state_dict()
        return out

    def load_stage(self, stage: Stage, payload: dict[str, Any]) -> None:
        """Restore what :meth:`stage_payload` kept (a stage-cache hit)."""
        for name in stage.cache:
            if name not in payload:
                raise DGBlocksError(f"payload: the cached stage {stage.name!r} has no {name!r}")
            try:
                self.get_submodule(name).load_state_dict(payload[name])
            except AttributeError:
                self.state[name] = payload[name]

    def get_extra_state(self) -> dict[str, Any]:
        built = self._built()
        return {"optimizers": {k: o.optimizer.state_dict() for k, o in built.items()},
                "schedulers": {k: o.scheduler.state_dict() for k, o in built.items()
                               if o.scheduler is not None},
                "generators": {k: g.get_state() for k, g in self._generators.items()},
                "generator_seeds": dict(self._generator_seeds),
                "generator_devices": {k: g.device.type for k, g in self._generators.items()},
                "tracked": {k: o.state_dict() for k, o in self._tracked.items()},
                "state": dict(self.state)}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or "optimizers" not in state:
            raise DGBlocksError(f"state: expected a {type(self).__name__} extra state with "
                                f"'optimizers', got {type(state).__name__}")
        built = self._built()
        for k, s in state["optimizers"].items():
            if k not in built:
                raise DGBlocksError(f"state: optimiser {k!r} is not one of {list(built)}")
            built[k].load(s, state["schedulers"].get(k))
        for k, s in state.get("generators", {}).items():
            old = self._generators.pop(k, None)
            dev = old.device if old is not None else state.get("generator_devices", {}).get(k)
            if dev is not None and torch.device(dev).type != "cpu":
                dev = self.device  # a device generator follows the method (cuda:N)
            self.generator(k, state.get("generator_seeds", {}).get(k), device=dev).set_state(s)
        for k, s in state.get("tracked", {}).items():
            if k not in self._tracked:
                raise DGBlocksError(f"state: tracked object {k!r} is not one of "
                                    f"{list(self._tracked)}")
            self._tracked[k].load_state_dict(s)
        self.state = dict(state.get("state", {}))
