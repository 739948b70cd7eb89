"""The one metric summary: mean and sample std over repeats; average and worst over targets.

Every place that reports a summary goes through these two functions: the per-target mean and
std over evaluation splits (:func:`dgblocks.eval.summarize_splits`), the ``summary`` of the
results JSON (``finish_run``), the printed table (:func:`dgblocks.eval.format_table`), the
sweep and leaderboard tables over seeds (:mod:`dgblocks.engine.sweep`) and the leaderboard's
error bars. The conventions (why: ``docs/decisions.md``, "One metric summary"):

- std is the sample standard deviation (``ddof=1``), and 0 for a single value;
- "worst" is taken per metric: the lowest value of that metric over the targets, with the
  target it comes from (worst-domain accuracy, WDA). Different metrics may name different
  targets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dgblocks._checks import ValueRangeError

__all__ = ["mean_std", "summarize", "METRIC_KEYS"]

#: The metrics a summary reports, in table order (ReID ranking metrics, then accuracy).
METRIC_KEYS = ("R1", "R5", "R10", "mAP", "acc")


def number(v: Any, name: str) -> float:
    """``v`` as a finite float; a bool, a non-number or NaN/Inf raises naming ``name``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
        raise ValueRangeError(f"{name}: expected a number, got {type(v).__name__} {v!r}")
    x = float(v)
    if not math.isfinite(x):  # a NaN would be skipped by min() and poison the mean silently
        raise ValueRangeError(f"{name}: expected a finite number, got {x}")
    return x


def check_metric_table(metrics: Any, *, name: str = "metrics") -> None:
    """Check ``{target: {metric: value}}``: a non-empty mapping of mappings."""
    if not isinstance(metrics, Mapping) or not metrics:
        raise ValueRangeError(f"{name}: expected a non-empty mapping {{target: {{metric: value}}}},"
                              f" got {metrics!r}")
    for t, m in metrics.items():
        if not isinstance(m, Mapping):
            raise ValueRangeError(f"{name}[{t!r}]: expected a mapping {{metric: value}},"
                                  f" got {type(m).__name__}")


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    r"""Mean and sample standard deviation of ``values``.

    $$ \bar x = \frac{1}{n}\sum_i x_i, \qquad
       s = \sqrt{\frac{1}{n-1}\sum_i (x_i - \bar x)^2}\ \ (n \ge 2), \qquad s = 0\ \ (n = 1) $$

    Shape:
        values: n >= 1 numbers; output: two floats.

    Invariants:
        - ``s == 0`` for one value or for equal values; ``s >= 0``
        - shifting every value by ``c`` shifts the mean by ``c`` and leaves ``s`` unchanged

    Example:
        >>> mean_std([10.0, 12.0, 14.0])
        (12.0, 2.0)
        >>> mean_std([5.0])
        (5.0, 0.0)
    """
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValueRangeError(f"values: expected an iterable of numbers, got"
                              f" {type(values).__name__} {values!r}")
    xs = [number(v, "values") for v in values]
    if not xs:
        raise ValueRangeError("values: expected at least one value, got none")
    mean = math.fsum(xs) / len(xs)
    if len(xs) == 1:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def summarize(metrics: Mapping[str, Mapping[str, float]],
              keys: Sequence[str] | None = None) -> dict[str, Any]:
    r"""Average and worst target of each metric (worst-domain accuracy, WDA).

    $$ \mathrm{average}_k = \frac{1}{|T|}\sum_{t \in T} m_{t,k}, \qquad
       \mathrm{worst}_k = \min_{t \in T} m_{t,k} $$

    over the targets ``T`` that report metric ``k``; ``worst_domain[k]`` is the arg-min (the
    first target on ties).

    Args:
        metrics: ``{target: {metric: value}}`` (what :func:`evaluate_benchmark` returns; the
            ``_std`` and ``num_splits`` entries are ignored).
        keys: the metrics to summarise; default: those of :data:`METRIC_KEYS` that any
            target reports.

    Returns:
        ``{"average": {k: float}, "worst": {k: float}, "worst_domain": {k: target}}``.

    Shape:
        metrics: one or more targets; output: one entry per reported key.

    Invariants:
        - ``worst[k] <= average[k]``; both equal the value when there is one target
        - ``metrics[worst_domain[k]][k] == worst[k]``

    Example:
        >>> summarize({"a": {"R1": 50.0, "mAP": 30.0}, "b": {"R1": 70.0, "mAP": 20.0}})
        ... # doctest: +NORMALIZE_WHITESPACE
        {'average': {'R1': 60.0, 'mAP': 25.0}, 'worst': {'R1': 50.0, 'mAP': 20.0},
         'worst_domain': {'R1': 'a', 'mAP': 'b'}}
    """
    if isinstance(metrics, Mapping) and not metrics:
        raise ValueRangeError("metrics: expected at least one target, got none")
    check_metric_table(metrics)
    if isinstance(keys, str) or keys is not None and not all(isinstance(k, str) for k in keys):
        raise ValueRangeError(f"keys: expected a sequence of metric names, got {keys!r}")
    if keys is None:
        keys = [k for k in METRIC_KEYS if any(k in m for m in metrics.values())]
    out: dict[str, Any] = {"average": {}, "worst": {}, "worst_domain": {}}
    for k in keys:
        vals = {t: number(m[k], f"metrics[{t!r}][{k!r}]") for t, m in metrics.items() if k in m}
        if vals:
            worst = min(vals, key=vals.__getitem__)
            out["average"][k] = mean_std(vals.values())[0]
            out["worst"][k] = vals[worst]
            out["worst_domain"][k] = worst
    return out
