"""Optimisers from a method's config, and their restore on resume (the configured
hyper-parameters win over the saved ones, so ``--resume-changed --lr`` applies)."""

from __future__ import annotations

from typing import Any

import torch

from dgblocks._checks import DGBlocksError, check_int, check_nonnegative
from dgblocks.engine.lr import lr_factor

__all__ = ["build_optimizer", "OptimizerSlot"]


def build_optimizer(params: Any, cfg: Any, *, total: int | None = None, lr: float | None = None,
                    **overrides: Any) -> tuple[torch.optim.Optimizer, Any]:
    """An optimiser over ``params`` and its ``LambdaLR`` schedule, from the config's optimiser
    fields (:class:`dgblocks.methods.OptimConfig`: ``optimizer``, ``lr``, ``weight_decay``,
    ``momentum``, ``schedule``, ``warmup``, ``milestones``) over ``total`` steps (default
    ``cfg.steps``); ``overrides`` replace config fields (``schedule="constant"``).

    Example:
        >>> from dgblocks.methods import TrainConfig
        >>> opt, sched = build_optimizer(torch.nn.Linear(2, 1).parameters(),
        ...                              TrainConfig(steps=10, lr=0.1))
        >>> type(opt).__name__, opt.param_groups[0]["lr"]
        ('Adam', 0.1)
    """
    get = lambda k, d=None: overrides.get(k, getattr(cfg, k, d))  # noqa: E731
    lr = get("lr") if lr is None else lr
    check_nonnegative(lr, name="lr")
    total = get("steps") if total is None else total
    check_int(total, name="total", minimum=0)
    params = list(params)  # frozen ones too: a parameter without a gradient is skipped
    kind = get("optimizer", "adam")
    if kind == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=get("momentum", 0.9),
                              weight_decay=get("weight_decay", 0.0))
    elif kind == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=get("weight_decay", 0.0))
    else:
        raise DGBlocksError(f"optimizer: expected 'adam' or 'sgd', got {kind!r}")
    kw = dict(total=total,
              schedule=get("schedule", "cosine"), warmup=get("warmup", 0.1),
              milestones=tuple(get("milestones", (2 / 3,))))
    lr_factor(0, **kw)  # validate now, not at the first step
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, **kw))


class OptimizerSlot:
    """An optimiser, its schedule (or ``None``) and the hyper-parameters it was configured
    with; :meth:`load` restores a saved state but keeps those hyper-parameters."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: Any = None) -> None:
        self.optimizer, self.scheduler = optimizer, scheduler
        self.hyper = [{k: v for k, v in g.items() if k != "params"}
                      for g in optimizer.param_groups]

    def load(self, state: dict[str, Any], scheduler_state: dict[str, Any] | None) -> None:
        """Restore the optimiser (and schedule) state; the configured learning rate, weight
        decay and momentum apply from the restored step on (``--resume-changed``)."""
        o, sched = self.optimizer, self.scheduler
        o.load_state_dict(state)
        if scheduler_state is not None and sched is not None:
            sched.load_state_dict(scheduler_state)
        for g, h in zip(o.param_groups, self.hyper):
            g.update({n: v for n, v in h.items() if n not in ("lr", "initial_lr")})
        if sched is None:
            for g, h in zip(o.param_groups, self.hyper):
                g["lr"] = h["lr"]
            return
        new = [h.get("initial_lr", h["lr"]) for h in self.hyper]
        for g, old, base in zip(o.param_groups, sched.base_lrs, new):
            if base != old:  # the schedule's factor kept (unchanged: bit for bit as saved)
                g["lr"] = base * (g["lr"] / old) if old else base
            g["initial_lr"] = base
        sched.base_lrs = new
        sched._last_lr = [g["lr"] for g in o.param_groups]
