"""Search spaces declared beside a method's ``Config`` (Gulrajani & Lopez-Paz 2021: every
method, the baseline included, gets the same kind of search).

A space maps config fields to distributions: learning rate and weight decay log-uniform, each
loss weight log-uniform around the paper's value (:func:`around`), discrete choices where the
paper lists them. ``scripts/search.py`` turns them into Optuna suggestions; nothing here
depends on Optuna.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dgblocks._checks import DGBlocksError

__all__ = ["LogUniform", "Uniform", "Choice", "around", "check_space", "sample_space",
           "as_flags"]


@dataclass(frozen=True)
class LogUniform:
    """A number drawn log-uniformly in ``[low, high]`` (``low > 0``).

    Example:
        >>> LogUniform(1e-4, 1e-2).low
        0.0001
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        ok = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (self.low, self.high))
        if not ok or not 0 < self.low < self.high:
            raise DGBlocksError(f"low, high: expected 0 < low < high, got {self.low!r}, "
                                f"{self.high!r}")


@dataclass(frozen=True)
class Uniform:
    """A number drawn uniformly in ``[low, high]``.

    Example:
        >>> Uniform(0.0, 0.2).high
        0.2
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        ok = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (self.low, self.high))
        if not ok or not self.low < self.high:
            raise DGBlocksError(f"low, high: expected low < high, got {self.low!r}, "
                                f"{self.high!r}")


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (the values a paper lists).

    Example:
        >>> Choice(("mixup", "mixhard")).options
        ('mixup', 'mixhard')
    """

    options: tuple

    def __post_init__(self) -> None:
        if isinstance(self.options, (str, bytes)) or len(tuple(self.options)) < 2:
            raise DGBlocksError(f"options: expected at least two values, got {self.options!r}")
        object.__setattr__(self, "options", tuple(self.options))


def around(value: float, factor: float = 10.0) -> LogUniform:
    """Log-uniform in ``[value / factor, value * factor]``: a loss weight around the paper's.

    Example:
        >>> around(0.1)
        LogUniform(low=0.01, high=1.0)
    """
    if not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise DGBlocksError(f"value: expected a finite number > 0, got {value!r}")
    if not isinstance(factor, (int, float)) or not factor > 1 or not math.isfinite(factor):
        raise DGBlocksError(f"factor: expected a finite number > 1, got {factor!r}")
    return LogUniform(value / factor, value * factor)


def check_space(space: Mapping[str, Any], config_cls: type) -> dict[str, Any]:
    """``space`` checked against ``config_cls``: every key a field, every value a
    distribution, the field's default inside its range (the paper's value is the default).

    Example:
        >>> from dgblocks.methods import TrainConfig
        >>> sorted(check_space({"lr": LogUniform(1e-3, 2e-2)}, TrainConfig))
        ['lr']
    """
    if not isinstance(space, Mapping):
        raise DGBlocksError(f"space: expected a mapping field -> distribution, got "
                            f"{type(space).__name__}")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for name, dist in space.items():
        if name not in fields:
            raise DGBlocksError(f"space: {name!r} is not a field of {config_cls.__name__}")
        if not isinstance(dist, (LogUniform, Uniform, Choice)):
            raise DGBlocksError(f"space: {name!r} expected a LogUniform, Uniform or Choice, "
                                f"got {type(dist).__name__}")
        default = fields[name].default
        auto = default in ("auto", "") or isinstance(default, (int, float)) and default <= 0 \
            and not isinstance(dist, Choice)  # a "0 / -1 / auto: resolved from the data" field
        inside = auto or (default in dist.options if isinstance(dist, Choice)
                          else isinstance(default, (int, float))
                          and dist.low <= default <= dist.high)
        if not inside:
            raise DGBlocksError(f"space: the default {name}={default!r} is outside {dist}")
    return dict(space)


def sample_space(space: Mapping[str, Any], suggest: Callable[[str, Any], Any]) -> dict[str, Any]:
    """``{field: suggest(field, dist)}`` for every entry (an Optuna trial's
    ``suggest_*`` behind ``suggest``, or a random draw).

    Example:
        >>> sample_space({"k": Choice((1, 2))}, lambda name, d: d.options[0])
        {'k': 1}
    """
    if not isinstance(space, Mapping):
        raise DGBlocksError(f"space: expected a mapping field -> distribution, got "
                            f"{type(space).__name__}")
    return {name: suggest(name, dist) for name, dist in space.items()}


def as_flags(values: Mapping[str, Any]) -> Sequence[str]:
    """Config values as command-line flags.

    Example:
        >>> as_flags({"lr": 0.01, "triplet": False})
        ['--lr', '0.01', '--no-triplet']
    """
    if not isinstance(values, Mapping):
        raise DGBlocksError(f"values: expected a mapping field -> value, got "
                            f"{type(values).__name__}")
    out: list[str] = []
    for name, v in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + name.replace("_", "-"))
        else:
            out += [flag, repr(v) if isinstance(v, float) else str(v)]
    return out
