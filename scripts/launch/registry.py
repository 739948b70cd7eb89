"""The methods a comparison runs: recipe, Method class, how a budget of N steps maps to its
stage flags, its untrained reference, and its two views (as the paper built it; its DG terms
on the AGG base)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One method of the comparison.

    Attributes:
        name: the name tables show.
        recipe: the module under ``recipes/``.
        cls: the Method class in it.
        budget: flags giving the method N optimiser steps of its retrieval network (its extra
            stages sized from N, as the leaderboard always split them).
        untrained: flags of the same network with no training (every step count 0).
        views: flags per view: ``paper`` (the paper's base) and ``agg`` (its DG terms on AGG's
            base: CE_eps + triplet + BNNeck); a view equal to another is ``None``.
        note: the extra compute beyond the N steps.
    """

    name: str
    recipe: str
    cls: str
    budget: Callable[[int], list[str]]
    untrained: list[str]
    views: dict[str, list[str] | None] = field(default_factory=lambda: {"paper": []})
    note: str = "-"

    def method(self) -> Any:
        """The Method class (its ``space`` and ``Config``)."""
        return getattr(importlib.import_module(f"recipes.{self.recipe}"), self.cls)

    def study(self, view: str) -> str:
        """The Optuna study's name."""
        return f"{self.recipe}-{view}"

    def steps(self, spec: dict[str, Any]) -> int:
        """This method's budget in a comparison: ``spec["steps"]``, or CDVM's own
        ``spec["cdvm_steps"]`` (its step costs about 11 AGG steps)."""
        return spec.get("cdvm_steps") or spec["steps"] if self.name == "CDVM" else spec["steps"]


def _s(*flags: Any) -> list[str]:
    return [str(f) for f in flags]


REGISTRY = [
    Entry("AGG", "baseline", "Baseline", lambda n: _s("--steps", n), _s("--steps", 0),
          note="the baseline every method is compared to"),
    Entry("DIR-ReID", "dir_reid", "DIRReID", lambda n: _s("--variant", "full", "--steps", n),
          _s("--steps", 0), {"paper": [], "agg": ["--base", "agg"]},
          "f_V, a second backbone, in every step"),
    Entry("DDAN", "ddan", "DDAN", lambda n: _s("--steps", n, "--stage1-steps", max(1, n // 5)),
          _s("--steps", 0, "--stage1-steps", 0), {"paper": [], "agg": None},
          "stage-1 baseline of N/5 steps (central domain)"),
    Entry("CDVM", "cdvm", "CDVM", lambda n: _s("--init-steps", n // 2, "--steps", n - n // 2),
          _s("--init-steps", 0, "--steps", 0), {"paper": [], "agg": ["--lambda-cent", "0"]},
          "N/2 plain steps (pretrained stand-in), then meta-train + meta-test passes per step "
          "(second order)"),
    Entry("episodic", "episodic", "Episodic",
          lambda n: _s("--init-steps", n // 5, "--steps", n - n // 5),
          _s("--init-steps", 0, "--steps", 0, "--stage1-steps", 0),
          {"paper": [], "agg": ["--base", "agg"]}, "one extractor per source domain"),
    Entry("ADIN", "adin", "ADIN",
          lambda n: _s("--source", -1, "--skew", 0, "--nuisance", "camera",
                       "--warmup-steps", n // 2, "--steps", n - n // 2),
          _s("--source", -1, "--skew", 0, "--nuisance", "camera", "--warmup-steps", 0,
             "--nuisance-steps", 0, "--steps", 0),
          {"paper": [], "agg": ["--base", "agg"]}, "nuisance-head steps on frozen features"),
]
BY_NAME = {e.name: e for e in REGISTRY}
