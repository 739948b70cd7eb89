"""``NuisanceAdversary``: nuisance heads that train themselves, and the encoder's adversarial
loss against them (ADIN, Yuan et al. 2020, eq 3-6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from dgblocks._checks import DGBlocksError, check_choice, check_int, check_positive
from dgblocks.layers import NuisanceHeads
from dgblocks.losses import (
    CalibratedNegEntropy,
    LabelSmoothingCE,
    NegEntropy,
    ReverseCrossEntropy,
)

__all__ = ["ADVERSARIAL_LOSSES", "NuisanceAdversary"]

ADVERSARIAL_LOSSES = ("rg", "ne", "cane", "cane_focal")


class NuisanceAdversary(nn.Module):
    r"""One classifier head per nuisance (camera, time period, ...) trained by cross-entropy
    on *detached* features, and the encoder's loss against the *frozen* heads:

    $$ L_{adv}(f) = \sum_n \ell\big(f_N^n(f), y^n\big), \qquad
       \ell \in \{\text{RG (eq 4)}, \text{NE (eq 5)}, \text{CaNE (eq 6)}\} $$

    ``forward(f, labels)`` is $L_{adv}$: its gradient reaches ``f`` only (the heads'
    parameters enter detached). :meth:`update` is the heads' own step:
    $\sum_n \mathrm{CE}(f_N^n(\mathrm{sg}(f)), y^n)$ minimised by the adversary's own Adam
    (``self.optimizer``, saved with the state_dict), so a method's main optimiser leaves
    the heads alone (:func:`dgblocks.methods.owned_parameters`).

    Args:
        in_dim: feature size.
        sizes: classes per nuisance, by name (``{"camera": 6}``).
        loss: ``"rg"`` (reversed-gradient CE) | ``"ne"`` (negative entropy) | ``"cane"``
            (calibrated by the nuisance prior) | ``"cane_focal"``.
        labels: the training set's nuisance labels by name (CaNE's prior counts them).
        hidden: hidden width of each head (FC-BN-ReLU-FC).
        lr: the heads' Adam learning rate.
        weight_decay: the heads' weight decay.
        eps: label smoothing of the heads' CE.

    Shape:
        f: (B, in_dim); labels: name -> (B,); output: a scalar.

    Invariants:
        - ``forward`` gives no gradient to the heads; ``update`` none to the features

    Example:
        >>> adv = NuisanceAdversary(in_dim=8, sizes={"camera": 3}, loss="ne")
        >>> f = torch.randn(6, 8, requires_grad=True)
        >>> y = {"camera": torch.tensor([0, 1, 2] * 2)}
        >>> adv(f, y).backward(); all(p.grad is None for p in adv.parameters())
        True
        >>> float(adv.update(f, y)) > 0
        True
    """

    def __init__(self, *, in_dim: int, sizes: Mapping[str, int], loss: str = "cane",
                 labels: Mapping[str, Tensor] | None = None, hidden: int = 256,
                 lr: float = 1e-3, weight_decay: float = 5e-4, eps: float = 0.0) -> None:
        super().__init__()
        check_choice(loss, ADVERSARIAL_LOSSES, name="loss")
        if not isinstance(sizes, Mapping) or not sizes:
            raise DGBlocksError(f"sizes: expected a non-empty mapping name -> classes, got "
                                f"{sizes!r}")
        if loss.startswith("cane") and (labels is None or set(labels) != set(sizes)):
            got = None if labels is None else sorted(labels)
            raise DGBlocksError(f"labels: CaNE needs the training labels of every nuisance "
                                f"{sorted(sizes)}, got {got}")
        check_positive(lr, name="lr")  # a finite number > 0
        check_int(in_dim, name="in_dim", minimum=1)
        self.kind, self.sizes = loss, dict(sizes)
        self.heads = NuisanceHeads(in_dim=in_dim, sizes=self.sizes, hidden=hidden)
        if loss == "rg":
            losses = {k: ReverseCrossEntropy(coeff=1.0) for k in sizes}
        elif loss == "ne":
            losses = {k: NegEntropy() for k in sizes}
        else:
            losses = {k: CalibratedNegEntropy.from_labels(labels[k], num_classes=sizes[k],
                                                          focal=loss == "cane_focal")
                      for k in sizes}
        self.losses = nn.ModuleDict(losses)
        self.ce = LabelSmoothingCE(eps=eps)
        self.optimizer = torch.optim.Adam(self.heads.parameters(), lr=lr,
                                          weight_decay=weight_decay)

    def _labels(self, labels: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        if not isinstance(labels, Mapping) or set(labels) != set(self.sizes):
            raise DGBlocksError(f"labels: expected a mapping with keys {sorted(self.sizes)}, "
                                f"got {labels!r}")
        return labels

    def forward(self, f: Tensor, labels: Mapping[str, Tensor]) -> Tensor:
        """The encoder's adversarial loss $L_{adv}(f)$ against the frozen heads.

        Args:
            f: features (B, in_dim) (the encoder's output, with its graph).
            labels: nuisance labels by name, each (B,) (RG and focal CaNE read them).
        """
        labels = self._labels(labels)
        frozen = {n: p.detach() for n, p in self.heads.named_parameters()}
        logits = functional_call(self.heads, frozen, (f,))
        takes_labels = self.kind in ("rg", "cane_focal")
        return sum(self.losses[k](logits[k], y) if takes_labels else self.losses[k](logits[k])
                   for k, y in labels.items())

    def update(self, f: Tensor, labels: Mapping[str, Tensor]) -> Tensor:
        """One step of the heads by CE on the detached features; returns the loss (detached).

        Args:
            f: features (B, in_dim).
            labels: nuisance labels by name, each (B,).
        """
        labels = self._labels(labels)
        logits = self.heads(f.detach())
        loss = sum(self.ce(logits[k], y) for k, y in labels.items())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def get_extra_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or "optimizer" not in state:
            raise DGBlocksError(f"state: expected {{'optimizer': ...}}, got {type(state).__name__}")
        self.optimizer.load_state_dict(state["optimizer"])

    def extra_repr(self) -> str:
        return f"loss={self.kind!r}, sizes={self.sizes}"
