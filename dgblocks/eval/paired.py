r"""Paired comparison of two methods over the same seeds: mean difference and its t interval.

Two methods run on the same seeds share the data order, the initial weights of what they have
in common and the evaluation draws, so the per-seed differences vary far less than either
method does; the question "is method A better than AGG here?" is answered by the paired
difference, not by two overlapping mean ± std bars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from dgblocks._checks import ValueRangeError
from dgblocks.eval.summary import number as _number

__all__ = ["PairedDifference", "paired_difference"]


class PairedDifference(NamedTuple):
    """Mean of the per-seed differences ``a - b``, its ``confidence`` interval, the seeds used,
    and whether the interval excludes 0 (a significant gap at that level)."""

    mean: float
    low: float
    high: float
    n: int
    significant: bool

    def format(self, digits: int = 1) -> str:
        """``"+2.3 [+0.4, +4.2]*"`` (``*``: the interval excludes 0); one seed: ``"+2.3 (n=1)"``.

        Example:
            >>> PairedDifference(2.25, 0.4, 4.1, 3, True).format()
            '+2.2 [+0.4, +4.1]*'
        """
        if self.n < 2:
            return f"{self.mean:+.{digits}f} (n=1)"
        star = "*" if self.significant else ""
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]{star}"


def paired_difference(a: Sequence[float] | Mapping[int, float],
                      b: Sequence[float] | Mapping[int, float], *,
                      confidence: float = 0.95) -> PairedDifference:
    r"""Paired difference ``a - b`` over seeds with a Student-t confidence interval.

    $$ d_s = a_s - b_s,\quad \bar d = \frac{1}{n}\sum_s d_s,\quad
       \bar d \pm t_{(1+c)/2,\,n-1}\, \frac{s_d}{\sqrt n} $$

    with $s_d$ the sample standard deviation of the differences. Mappings are paired by key
    (seed), sequences by position; only seeds present in both count. With one seed the
    interval is the point itself and nothing is significant.

    Args:
        a: the method's metric per seed (e.g. average R-1).
        b: the reference's metric on the same seeds (e.g. AGG).
        confidence: the interval's level $c \in (0, 1)$.

    Shape:
        a, b: n values each (n >= 1 shared seeds); output: :class:`PairedDifference`.

    Invariants:
        - swapping a and b negates mean, low and high
        - adding the same value to a and b per seed changes nothing
        - low <= mean <= high

    Example:
        >>> d = paired_difference([31.0, 28.0, 30.0], [25.0, 24.0, 26.0])
        >>> round(d.mean, 2), d.significant
        (4.67, True)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueRangeError(f"confidence: expected a level in (0, 1), got {confidence!r}")
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ValueRangeError("b: expected the same kind as a (both mappings by seed or both "
                              f"sequences), got {type(a).__name__} and {type(b).__name__}")
    for name, x in (("a", a), ("b", b)):
        if isinstance(x, (str, bytes)) or not isinstance(x, (Mapping, Sequence)):
            raise ValueRangeError(f"{name}: expected a sequence of numbers or a mapping"
                                  f" {{seed: number}}, got {type(x).__name__} {x!r}")
    if isinstance(a, Mapping):
        seeds = [s for s in a if s in b]
        diffs = [_number(a[s], f"a[{s!r}]") - _number(b[s], f"b[{s!r}]") for s in seeds]
    else:
        if len(a) != len(b):
            raise ValueRangeError(f"b: expected {len(a)} values paired with a, got {len(b)}")
        diffs = [_number(x, f"a[{i}]") - _number(y, f"b[{i}]")
                 for i, (x, y) in enumerate(zip(a, b))]
    if not diffs:
        raise ValueRangeError("a: expected at least one seed shared with b, got none")
    if not all(math.isfinite(d) for d in diffs):  # finite values can overflow
        raise ValueRangeError(f"a: expected finite values, got differences {diffs}")
    n = len(diffs)
    mean = math.fsum(diffs) / n
    if n == 1:
        return PairedDifference(mean, mean, mean, 1, False)
    from scipy.stats import t  # the t quantile: scipy (why: README, dependencies)

    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    return PairedDifference(mean, low, high, n, low > 0 or high < 0)
