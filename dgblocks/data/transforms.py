"""Image transforms on tensors (no torchvision); Pillow only decodes files.

Every transform takes an image ``(C, H, W)`` or a batch ``(B, C, H, W)`` of floats in
``[0, 1]`` and draws its randomness per sample from an optional ``torch.Generator``, so the
same transform can run per item in a ``Dataset`` or on a whole batch on the GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_int,
    check_nonnegative,
    check_probability,
)
from dgblocks.data._validate import (
    check_flag,
    check_generator,
    check_range,
    check_real,
    check_reals,
)
from dgblocks.data.image_io import check_image_size

__all__ = ["Compose", "Resize", "PadCrop", "HorizontalFlip", "ColorJitter", "RandomErasing",
           "Normalize", "IMAGENET_MEAN", "IMAGENET_STD", "train_transform", "eval_transform"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _batch(x: Tensor) -> tuple[Tensor, bool]:
    if not isinstance(x, Tensor) or x.dim() not in (3, 4):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ShapeError(f"image: expected shape (C, H, W) or (B, C, H, W), got {got}")
    return (x.unsqueeze(0), True) if x.dim() == 3 else (x, False)


def _size(size: Any) -> tuple[int, int]:
    if size is None:
        raise ValueRangeError("size: expected (H, W), got None")
    return check_image_size(size)  # type: ignore[return-value]


def _rand(n: int, gen: torch.Generator | None, device) -> Tensor:
    return torch.rand(n, generator=gen).to(device, non_blocking=True)  # no host sync


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Tensor], Tensor]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: Tensor) -> Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Resize:
    """Bilinear resize to ``size = (H, W)`` (antialiased when shrinking).

    Example:
        >>> Resize((8, 4))(torch.rand(3, 16, 8)).shape
        torch.Size([3, 8, 4])
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = _size(size)

    def __call__(self, x: Tensor) -> Tensor:
        b, single = _batch(x)
        if tuple(b.shape[-2:]) != self.size:
            b = F.interpolate(b, size=self.size, mode="bilinear", align_corners=False,
                              antialias=True)
        return b[0] if single else b

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


class PadCrop:
    """Zero-pad by ``padding`` pixels, then crop back to the original size at a random offset.

    Example:
        >>> PadCrop(padding=2)(torch.rand(2, 3, 8, 4)).shape
        torch.Size([2, 3, 8, 4])
    """

    def __init__(self, padding: int = 10, *, generator: torch.Generator | None = None) -> None:
        self.padding = check_int(padding, name="padding", minimum=0, maximum=4096)
        self.generator = check_generator(generator)

    def __call__(self, x: Tensor) -> Tensor:
        b, single = _batch(x)
        p = self.padding
        if p == 0:
            return x
        n, _, h, w = b.shape
        padded = F.pad(b, (p, p, p, p))
        oy = (_rand(n, self.generator, "cpu") * (2 * p + 1)).long().clamp(max=2 * p)
        ox = (_rand(n, self.generator, "cpu") * (2 * p + 1)).long().clamp(max=2 * p)
        rows = (oy.view(n, 1) + torch.arange(h)).to(b.device, non_blocking=True)  # (n, h)
        cols = (ox.view(n, 1) + torch.arange(w)).to(b.device, non_blocking=True)  # (n, w)
        out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, b.shape[1], h, padded.shape[3]))
        out = out.gather(3, cols.view(n, 1, 1, w).expand(n, b.shape[1], h, w))
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"PadCrop(padding={self.padding})"


class HorizontalFlip:
    """Mirror left-right with probability ``p`` per sample."""

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        self.p = check_probability(check_real(p, name="p"), name="p")
        self.generator = check_generator(generator)

    def __call__(self, x: Tensor) -> Tensor:
        b, single = _batch(x)
        flip = (_rand(b.shape[0], self.generator, b.device) < self.p).view(-1, 1, 1, 1)
        out = torch.where(flip, b.flip(-1), b)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"HorizontalFlip(p={self.p})"


class ColorJitter:
    """Random brightness, contrast and saturation factors in ``[1 - v, 1 + v]`` per sample."""

    def __init__(self, brightness: float = 0.2, contrast: float = 0.15, saturation: float = 0.0,
                 *, generator: torch.Generator | None = None) -> None:
        self.b = check_nonnegative(check_real(brightness, name="brightness"), name="brightness")
        self.c = check_nonnegative(check_real(contrast, name="contrast"), name="contrast")
        self.s = check_nonnegative(check_real(saturation, name="saturation"), name="saturation")
        self.generator = check_generator(generator)

    def _factor(self, v: float, n: int, dev) -> Tensor:
        return (1 + v * (2 * _rand(n, self.generator, dev) - 1)).view(-1, 1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        b, single = _batch(x)
        n, dev = b.shape[0], b.device
        out = b * self._factor(self.b, n, dev)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * self._factor(self.c, n, dev) + mean
        if self.s > 0 and b.shape[1] == 3:
            gray = out.mean(1, keepdim=True)
            out = (out - gray) * self._factor(self.s, n, dev) + gray
        out = out.clamp(0, 1)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"ColorJitter(brightness={self.b}, contrast={self.c}, saturation={self.s})"


class RandomErasing:
    """Erase a random rectangle (area ``scale``, aspect ``ratio``) with ``value``, prob ``p``.

    Zhong et al. 2020; applied after normalisation in ReID pipelines (value 0 = the mean).
    """

    def __init__(self, p: float = 0.5, *, scale: tuple[float, float] = (0.02, 0.4),
                 ratio: tuple[float, float] = (0.3, 3.3), value: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        self.p = check_probability(check_real(p, name="p"), name="p")
        self.scale = check_range(scale, "scale", 0.0, 1.0)
        self.ratio = check_range(ratio, "ratio", 0.0)
        self.value = check_real(value, name="value")
        self.generator = check_generator(generator)

    def __call__(self, x: Tensor) -> Tensor:
        b, single = _batch(x)
        n, _, h, w = b.shape
        g = self.generator
        lo, hi = self.scale
        area = (lo + (hi - lo) * torch.rand(n, generator=g)) * h * w
        lr = torch.tensor(self.ratio).log()
        ar = (lr[0] + (lr[1] - lr[0]) * torch.rand(n, generator=g)).exp()
        eh = (area * ar).sqrt().round().clamp(1, h)
        ew = (area / ar).sqrt().round().clamp(1, w)
        y0 = (torch.rand(n, generator=g) * (h - eh + 1)).floor()
        x0 = (torch.rand(n, generator=g) * (w - ew + 1)).floor()
        on = torch.rand(n, generator=g) < self.p
        yy = torch.arange(h).view(1, h, 1)
        xx = torch.arange(w).view(1, 1, w)
        m = ((yy >= y0.view(-1, 1, 1)) & (yy < (y0 + eh).view(-1, 1, 1))
             & (xx >= x0.view(-1, 1, 1)) & (xx < (x0 + ew).view(-1, 1, 1)) & on.view(-1, 1, 1))
        out = b.masked_fill(m.unsqueeze(1).to(b.device, non_blocking=True), self.value)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio})"


class Normalize:
    """Subtract ``mean`` and divide by ``std`` per channel.

    Example:
        >>> Normalize(mean=(0.5,), std=(0.5,))(torch.ones(1, 2, 2)).unique()
        tensor([1.])
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        self.mean, self.std = check_reals(mean, "mean"), check_reals(std, "std")
        if len(self.std) != len(self.mean) or min(self.std) <= 0:
            raise ValueRangeError(f"std: expected {len(self.mean)} values > 0 (one per mean),"
                                  f" got {self.std}")

    def __call__(self, x: Tensor) -> Tensor:
        b, single = _batch(x)
        m = torch.tensor(self.mean, dtype=b.dtype, device=b.device).view(1, -1, 1, 1)
        s = torch.tensor(self.std, dtype=b.dtype, device=b.device).view(1, -1, 1, 1)
        if m.shape[1] not in (1, b.shape[1]):
            raise ShapeError(f"mean: expected 1 or {b.shape[1]} channels, got {m.shape[1]}")
        out = (b - m) / s
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


def train_transform(size: tuple[int, int], *, padding: int | None = None, erase: float = 0.5,
                    jitter: bool = True, generator: torch.Generator | None = None) -> Compose:
    """The usual ReID training pipeline: resize, flip, pad+crop, jitter, erase.

    Normalisation is left to the model (a BN stem or :class:`Normalize`) so that images stay
    in ``[0, 1]`` for visualisation.
    """
    size = _size(size)
    check_probability(check_real(erase, name="erase"), name="erase")
    check_flag(jitter, name="jitter")
    pad = padding if padding is not None else max(1, size[0] // 16)
    ts: list = [Resize(size), HorizontalFlip(0.5, generator=generator),
                PadCrop(pad, generator=generator)]
    if jitter:
        ts.append(ColorJitter(0.2, 0.15, 0.1, generator=generator))
    if erase > 0:
        ts.append(RandomErasing(erase, value=0.0, generator=generator))
    return Compose(ts)


def eval_transform(size: tuple[int, int]) -> Compose:
    """Resize only."""
    return Compose([Resize(_size(size))])
