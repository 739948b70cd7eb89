"""The config fields every method shares: optimiser, schedule, budget, batch, image size.

A recipe's ``Config`` inherits :class:`TrainConfig` and redefines a field only to change its
default or help text (a redefined dataclass field keeps its place), so ``--lr``,
``--schedule`` or ``--image-size`` mean the same thing in every recipe and appear once in the
code. The flags are made by :func:`dgblocks.engine.parse_config`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgblocks.engine.config import ConfigError, arg, validate
from dgblocks.engine.lr import SCHEDULES

__all__ = ["OptimConfig", "TrainConfig"]


@dataclass
class OptimConfig:
    """The optimiser and its learning-rate schedule (``Method.make_optimizer``).

    The defaults are the from-scratch regime of the embedded benchmarks: Adam 6e-3, weight
    decay 5e-4, linear warm-up over a tenth of the run, then cosine to 0.

    Example:
        >>> OptimConfig().schedule
        'cosine'
    """

    optimizer: str = arg("adam", "adam | sgd (momentum --momentum)", choices=("adam", "sgd"))
    lr: float = arg(6e-3, "base learning rate (from-scratch regime: docs/decisions.md)",
                    minimum=0.0)
    weight_decay: float = arg(5e-4, "weight decay", minimum=0.0)
    momentum: float = arg(0.9, "SGD momentum", minimum=0.0)
    schedule: str = arg("cosine", "learning-rate schedule after the warm-up: cosine (to 0) | "
                        "step (x0.1 at each --milestones fraction of the run) | constant",
                        choices=SCHEDULES)
    warmup: float = arg(0.1, "fraction of the steps of linear warm-up", minimum=0.0,
                        maximum=1.0)
    milestones: tuple[float, ...] = arg((2 / 3,), "step schedule: decay points as fractions "
                                        "of the run (papers' 'x0.1 every 40 of 100 epochs': "
                                        "0.4 0.8)")

    def __post_init__(self) -> None:
        validate(self)  # a config built in code is checked like the flags
        if list(self.milestones) != sorted(self.milestones) or not all(
                0.0 <= m <= 1.0 for m in self.milestones):
            raise ConfigError(f"--milestones: expected increasing fractions in [0, 1], got "
                              f"{list(self.milestones)}")
        size = getattr(self, "image_size", (0, 0))
        if len(size) != 2 or (any(size) and min(size) < 1) or min(size) < 0:
            raise ConfigError(f"--image-size: expected H W (0 0: the data's size), got "
                              f"{list(size)}")


@dataclass
class TrainConfig(OptimConfig):
    """Budget, batch and image size, plus :class:`OptimConfig`.

    Example:
        >>> TrainConfig().image_size
        (0, 0)
    """

    steps: int = arg(300, "training steps (0: the untrained network; -1: from --epochs)",
                     smoke=12, minimum=-1)
    epochs: float = arg(0.0, "with --steps -1: train this many epochs of the training set, "
                        "steps = round(epochs x images / batch size) (the papers' unit)",
                        minimum=0.0)
    batch_size: int = arg(64, "images per step (P x K)", smoke=16)
    num_instances: int = arg(4, "K images per identity")
    image_size: tuple[int, int] = arg((0, 0), "images are resized to H W; 0 0: the data's "
                                      "default (embedded ReID 64 x 32, real data 256 x 128, "
                                      "the papers' size; digits are always 28 x 28)")
