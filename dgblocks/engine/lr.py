"""Learning-rate factors shared by the recipes."""

from __future__ import annotations

import math

from dgblocks._checks import check_int


def warmup_cosine(step: int, *, total: int, warmup: float) -> float:
    """LR factor: linear warm-up over ``warmup * total`` steps, then cosine decay to 0.

    ``factor(s) = (s + 1) / w`` for ``s < w = max(1, int(warmup * total))``, then
    ``0.5 * (1 + cos(pi * (s - w) / max(1, total - w)))``. Use with
    ``torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total=T, warmup=0.1))``.

    Examples:
        >>> [round(warmup_cosine(s, total=10, warmup=0.2), 3) for s in (0, 1, 2, 6, 10)]
        [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    check_int(total, name="total", minimum=0)
    if not 0.0 <= warmup <= 1.0:
        raise ValueError(f"warmup: expected a fraction in [0, 1], got {warmup}")
    w = max(1, int(warmup * total))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, total - w)))
