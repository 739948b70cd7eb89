r"""Small classifier heads: the central-domain discriminator (DDAN 3.2, 4.1) and one nuisance
classifier per nuisance label (ADIN 3.3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from torch import Tensor, nn

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_features,
    check_int,
)
from dgblocks._module_checks import check_module_input

__all__ = ["CentralDomainDiscriminator", "NuisanceHeads"]


def _check_input(x: Tensor, block: nn.Module, in_dim: int) -> None:
    b = check_features(x, "B D", name="x", D=in_dim)["B"]
    if block.training and b < 2:
        raise ShapeError(f"x: expected B >= 2 in training mode (the hidden batch norm), got"
                         f" {tuple(x.shape)}")
    check_module_input(x, block, name="x")


def _mlp(in_dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out))


class CentralDomainDiscriminator(nn.Module):
    """Central (1) vs peripheral (0) discriminator: FC 128 + BN + ReLU + FC 2 (DDAN 3.2).

    Args:
        in_dim: feature dimension.
        hidden: width of the hidden layer (128 in DDAN).

    Shape:
        x: (B, in_dim); output: logits (B, 2), column 1 = central.

    Example:
        >>> CentralDomainDiscriminator(in_dim=16)(torch.randn(4, 16)).shape
        torch.Size([4, 2])
    """

    functional_name: ClassVar[str | None] = None

    def __init__(self, *, in_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.in_dim = check_int(in_dim, name="in_dim", minimum=1)
        self.hidden = check_int(hidden, name="hidden", minimum=1)
        self.net = _mlp(in_dim, hidden, 2)

    def forward(self, x: Tensor) -> Tensor:
        """Central-vs-peripheral logits of ``x``.

        Args:
            x: features, (B, in_dim); B >= 2 in training mode (the hidden batch norm); the
                block's dtype and device (or run under ``torch.autocast``).

        Returns:
            Logits (B, 2), column 1 = central. Training mode normalises the hidden layer with
            the batch statistics, eval mode with the running ones.
        """
        _check_input(x, self, self.in_dim)
        return self.net(x)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, hidden={self.hidden}"


class NuisanceHeads(nn.Module):
    """One 2-layer classifier (FC + BN + ReLU + FC) per nuisance label (ADIN 3.3, $f_N$).

    Args:
        in_dim: feature dimension.
        sizes: number of classes per nuisance, as a sequence (outputs in a tuple) or a mapping
            from name to size (outputs in a dict), e.g. ``{"camera": 6, "period": 4}``.
        hidden: width of each head's hidden layer.

    Shape:
        x: (B, in_dim); output: one (B, sizes[n]) logit tensor per nuisance.

    Example:
        >>> heads = NuisanceHeads(in_dim=8, sizes={"camera": 6, "period": 3})
        >>> {k: v.shape for k, v in heads(torch.randn(4, 8)).items()}
        {'camera': torch.Size([4, 6]), 'period': torch.Size([4, 3])}
    """

    functional_name: ClassVar[str | None] = None

    def __init__(self, *, in_dim: int, sizes: Sequence[int] | Mapping[str, int],
                 hidden: int = 256) -> None:
        super().__init__()
        self.in_dim = check_int(in_dim, name="in_dim", minimum=1)
        self.hidden = check_int(hidden, name="hidden", minimum=1)
        if isinstance(sizes, Mapping):
            self.names: tuple[str, ...] | None = tuple(str(k) for k in sizes)
            values = list(sizes.values())
        elif isinstance(sizes, Sequence) and not isinstance(sizes, str):
            self.names, values = None, list(sizes)
        else:
            raise ValueRangeError(f"sizes: expected a sequence or mapping of class counts,"
                                  f" got {type(sizes).__name__}")
        if not values:
            raise ValueRangeError("sizes: expected at least one nuisance, got none")
        self.sizes = tuple(check_int(v, name="sizes", minimum=2) for v in values)
        self.heads = nn.ModuleList(_mlp(in_dim, hidden, n) for n in self.sizes)

    def forward(self, x: Tensor) -> tuple[Tensor, ...] | dict[str, Tensor]:
        """The logits of every nuisance head.

        Args:
            x: features, (B, in_dim); B >= 2 in training mode (the hidden batch norms); the
                block's dtype and device (or run under ``torch.autocast``).

        Returns:
            One (B, sizes[n]) logit tensor per nuisance: a tuple in the order of ``sizes``, or
            a dict by name when ``sizes`` was a mapping. Training mode uses batch statistics in
            the hidden batch norms, eval mode the running ones.
        """
        _check_input(x, self, self.in_dim)
        outs = tuple(head(x) for head in self.heads)
        return outs if self.names is None else dict(zip(self.names, outs))

    def extra_repr(self) -> str:
        sizes = self.sizes if self.names is None else dict(zip(self.names, self.sizes))
        return f"in_dim={self.in_dim}, sizes={sizes}, hidden={self.hidden}"
