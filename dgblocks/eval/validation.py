"""Validation inside a training loop: the retrieval error on held-out identities."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dgblocks._checks import DGBlocksError

__all__ = ["validation_error"]


def validation_error(model: nn.Module, val: Any, *, batch_size: int = 256,
                     device: Any = "cpu") -> float:
    r"""Retrieval error on a held-out split, for schedules that switch on it (ADIN's
    alternation):

    $$ e = 1 - \mathrm{R1} / 100 $$

    with R1 the rank-1 accuracy (%) of ``model``'s features, mean over ``val``'s
    query/gallery splits (:func:`dgblocks.eval.evaluate_benchmark`). The model is evaluated
    in eval mode and handed back in train mode.

    Args:
        model: maps a (B, C, H, W) batch in ``[0, 1]`` to (B, D) features in eval mode.
        val: a :class:`dgblocks.data.TargetDomain` (held-out identities of the sources).
        batch_size: images per encoding batch.
        device: where to encode.

    Shape:
        output: a float in ``[0, 1]``.

    Invariants:
        - 0 when every query's nearest gallery image has its identity; ``model`` ends in
          train mode

    Example:
        >>> from dgblocks.data import ReIDDataset, TargetDomain
        >>> imgs = torch.stack([torch.full((3, 8, 4), v, dtype=torch.uint8)
        ...                     for v in (0, 100, 10, 110)])
        >>> ds = ReIDDataset(images=imgs, pids=[0, 1, 0, 1], camids=[0, 0, 1, 1])
        >>> val = TargetDomain(name="val", splits=[(ds.subset(torch.tensor([0, 1])),
        ...                                         ds.subset(torch.tensor([2, 3])))])
        >>> validation_error(nn.Flatten(), val)
        0.0
    """
    if not hasattr(val, "name"):
        raise DGBlocksError(f"val: expected a TargetDomain, got {type(val).__name__}")
    from dgblocks.eval import evaluate_benchmark

    model.eval()
    with torch.no_grad():
        m = evaluate_benchmark(model, [val], batch_size=batch_size, device=device,
                               progress=False)
    model.train()
    return 1.0 - m[val.name]["R1"] / 100.0
