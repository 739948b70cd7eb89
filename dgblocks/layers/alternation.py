r"""ADIN's alternating schedule (Yuan et al., WACV 2020, section 3.3) as a small state machine.

After the warm-up, training alternates between an *adversarial* phase ($f_E$ minimises
$L_I + \beta L_{adv}$, $f_N$ re-trained on the nuisance labels) and an *identity* phase
($f_E, f_I$ minimise $L_I$). The switch is driven by the identity validation error $e$
(held-out identities), with hysteresis between two thresholds $i_{target} < i_{trigger}$:

$$ \text{adversarial} \xrightarrow{\;e > i_{trigger}\;} \text{identity}
   \xrightarrow{\;e < i_{target}\;} \text{adversarial} $$

With ``relative=True`` both thresholds are offsets from the best (lowest) error measured so
far, so the identity phase starts when the adversary has cost ``i_trigger`` of the best
identity accuracy and ends when it is back within ``i_target`` of it.

The whole state (thresholds, current phase, steps spent per phase, every validation check and
every switch) is in :meth:`AlternatingSchedule.state_dict`, so a resumed run continues in the
phase it stopped in, and the log can be plotted with
:func:`dgblocks.viz.plot_alternation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dgblocks._checks import ValueRangeError, check_choice, check_int
from dgblocks._module_checks import check_state_mapping

__all__ = ["AlternatingSchedule", "PHASES"]

PHASES = ("adversarial", "identity")


def _finite(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueRangeError(f"{name}: expected a finite number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueRangeError(f"{name}: expected a finite number, got {v}")
    return v


def _records(state: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    # a list of dicts: the checks / switches logs of state_dict()
    rec = state[key]
    if isinstance(rec, (str, bytes)) or not isinstance(rec, Sequence) or not all(
            isinstance(r, Mapping) for r in rec):
        raise ValueRangeError(f"state[{key!r}]: expected a list of dicts (the log of"
                              f" state_dict()), got {rec!r:.60}")
    return [dict(r) for r in rec]


class AlternatingSchedule:
    r"""Phase of ADIN's alternation, switched by the identity validation error.

    Call :meth:`tick` once per training step (it counts the step in the current phase) and
    :meth:`update` whenever a validation error is measured; :attr:`phase` tells the training
    step which objective to optimise.

    Args:
        i_target: below this error the identity phase hands back to the adversarial phase.
        i_trigger: above this error the adversarial phase hands over to the identity phase;
            must be larger than ``i_target`` (hysteresis).
        start: the phase right after the warm-up (``"adversarial"``, as in ADIN).
        min_steps: steps a phase runs at least before it may switch (0: switch at once).
        relative: thresholds are offsets from the best error so far (the first error only
            sets the reference).

    Example:
        >>> s = AlternatingSchedule(i_target=0.2, i_trigger=0.3)
        >>> s.phase
        'adversarial'
        >>> s.update(0.35, step=10)
        'identity'
        >>> s.update(0.25, step=20), s.update(0.15, step=30)
        ('identity', 'adversarial')
        >>> s.segments(40)
        [(0, 10, 'adversarial'), (10, 30, 'identity'), (30, 40, 'adversarial')]
    """

    def __init__(self, *, i_target: float, i_trigger: float, start: str = "adversarial",
                 min_steps: int = 0, relative: bool = False) -> None:
        self.i_target = _finite(i_target, "i_target")
        self.i_trigger = _finite(i_trigger, "i_trigger")
        if not self.i_target < self.i_trigger:
            raise ValueRangeError(f"i_trigger: expected a value > i_target={self.i_target}, "
                                  f"got {self.i_trigger}")
        self.start = check_choice(start, PHASES, name="start")
        self.min_steps = check_int(min_steps, name="min_steps", minimum=0)
        self.relative = bool(relative)
        self.best = math.inf
        self.phase = start
        self.since = 0                      # step at which the current phase began
        self.steps = dict.fromkeys(PHASES, 0)
        self.checks: list[dict[str, Any]] = []
        self.switches: list[dict[str, Any]] = []

    def tick(self, n: int = 1) -> str:
        """Count ``n`` training steps in the current phase; returns the phase."""
        self.steps[self.phase] += check_int(n, name="n", minimum=0)
        return self.phase

    def update(self, error: float, *, step: int) -> str:
        """Record the validation ``error`` measured at ``step``; switch if a threshold is crossed.

        Returns the phase the next training steps run in.
        """
        err = _finite(error, "error")
        last = self.checks[-1]["step"] if self.checks else 0
        check_int(step, name="step", minimum=last)  # a step back would garble segments()
        lo, hi = self.thresholds()
        self.checks.append({"step": step, "error": err, "phase": self.phase, "i_target": lo,
                            "i_trigger": hi})
        self.best = min(self.best, err)
        if step - self.since < self.min_steps or math.isinf(lo):
            return self.phase
        if self.phase == "adversarial" and err > hi:
            self._switch("identity", step, err, hi)
        elif self.phase == "identity" and err < lo:
            self._switch("adversarial", step, err, lo)
        return self.phase

    def thresholds(self) -> tuple[float, float]:
        """The current ``(i_target, i_trigger)`` (shifted by the best error if relative)."""
        off = self.best if self.relative else 0.0
        return off + self.i_target, off + self.i_trigger

    def _switch(self, to: str, step: int, err: float, threshold: float) -> None:
        self.switches.append({"step": step, "from": self.phase, "to": to, "error": err,
                              "threshold": threshold})
        self.phase, self.since = to, step

    def segments(self, end: int) -> list[tuple[int, int, str]]:
        """``(first_step, last_step_exclusive, phase)`` of every phase run up to ``end``."""
        check_int(end, name="end", minimum=0)
        bounds = [(0, self.start)] + [(e["step"], e["to"]) for e in self.switches]
        out = []
        for (a, phase), (b, _) in zip(bounds, bounds[1:] + [(end, "")]):
            if b > a:
                out.append((a, b, phase))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"i_target": self.i_target, "i_trigger": self.i_trigger, "start": self.start,
                "min_steps": self.min_steps, "relative": self.relative, "best": self.best,
                "phase": self.phase, "since": self.since,
                "steps": dict(self.steps), "checks": [dict(c) for c in self.checks],
                "switches": [dict(s) for s in self.switches]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; every entry is checked before anything changes."""
        check_state_mapping(state, keys=("phase", "since", "steps", "checks", "switches"))
        phase = check_choice(state["phase"], PHASES, name="state['phase']")
        i_target = _finite(state.get("i_target", self.i_target), "state['i_target']")
        i_trigger = _finite(state.get("i_trigger", self.i_trigger), "state['i_trigger']")
        if not i_target < i_trigger:
            raise ValueRangeError(f"state['i_trigger']: expected a value > i_target={i_target},"
                                  f" got {i_trigger}")
        start = check_choice(state.get("start", self.start), PHASES, name="state['start']")
        min_steps = check_int(state.get("min_steps", self.min_steps), name="state['min_steps']",
                              minimum=0)
        relative = state.get("relative", self.relative)
        if not isinstance(relative, bool):
            raise ValueRangeError(f"state['relative']: expected a bool, got {relative!r}")
        best = state.get("best", self.best)
        if isinstance(best, bool) or not isinstance(best, (int, float)) or math.isnan(best):
            raise ValueRangeError(f"state['best']: expected a number (inf before any check),"
                                  f" got {best!r}")
        since = check_int(state["since"], name="state['since']", minimum=0)
        steps = state["steps"]
        check_state_mapping(steps, name="state['steps']")
        steps = {p: check_int(steps.get(p, 0), name=f"state['steps'][{p!r}]", minimum=0)
                 for p in PHASES}
        checks, switches = _records(state, "checks"), _records(state, "switches")
        for i, s in enumerate(switches):
            check_int(s.get("step"), name=f"state['switches'][{i}]['step']", minimum=0)
            check_choice(s.get("to"), PHASES, name=f"state['switches'][{i}]['to']")
        self.phase, self.i_target, self.i_trigger, self.start = phase, i_target, i_trigger, start
        self.min_steps, self.relative, self.since = min_steps, relative, since
        self.best = float(best)
        self.steps, self.checks, self.switches = steps, checks, switches

    def __repr__(self) -> str:
        return (f"AlternatingSchedule(i_target={self.i_target:.4g}, "
                f"i_trigger={self.i_trigger:.4g}, phase={self.phase!r}, "
                f"switches={len(self.switches)})")
