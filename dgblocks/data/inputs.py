"""The glue between a dataset's images and a network's input, shared by every method."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from dgblocks._checks import DGBlocksError

__all__ = ["normalize_input", "image_size"]


def normalize_input(x: Tensor) -> Tensor:
    r"""Map images in ``[0, 1]`` (what datasets and augmentations return) to ``[-1, 1]``.

    $$ \tilde x = 2x - 1 $$

    Every recipe's network sees its input through this one function, so a model trained by one
    recipe and evaluated by another (or exported) agrees on the input range.

    Args:
        x: float images in ``[0, 1]``.

    Shape:
        x: any, typically (B, C, H, W); output: the same.

    Invariants:
        - 0 -> -1, 0.5 -> 0, 1 -> 1; dtype and device follow the input

    Example:
        >>> normalize_input(torch.tensor([0.0, 0.5, 1.0]))
        tensor([-1.,  0.,  1.])
    """
    if not x.is_floating_point():
        raise DGBlocksError(f"x: expected float images in [0, 1], got dtype {x.dtype}")
    return x * 2.0 - 1.0


def image_size(dataset: Any) -> tuple[int, int]:
    """``(H, W)`` of a dataset's training images: the in-memory tensor's size, else the size
    file-backed images are decoded to, else the size of the first image (loaded once).

    Args:
        dataset: a :class:`dgblocks.data.ReIDDataset` (``images`` (N, C, H, W) or ``None``,
            ``image_size`` or ``None``, ``image(i)``).

    Shape:
        output: ``(H, W)``.

    Invariants:
        - equals ``tuple(dataset.image(0).shape[-2:])``, without decoding a file when the size
          is known

    Example:
        >>> from dgblocks.data import ReIDDataset
        >>> ds = ReIDDataset(images=torch.zeros(2, 3, 64, 32, dtype=torch.uint8),
        ...                  pids=[0, 1], camids=[0, 0])
        >>> image_size(ds)
        (64, 32)
    """
    images = getattr(dataset, "images", None)
    if images is not None:
        return (int(images.shape[-2]), int(images.shape[-1]))
    size = getattr(dataset, "image_size", None)
    if size is not None:
        return (int(size[0]), int(size[1]))
    if not hasattr(dataset, "image"):
        raise DGBlocksError(f"dataset: expected images, image_size or image(i), got "
                            f"{type(dataset).__name__}")
    h, w = dataset.image(0).shape[-2:]
    return (int(h), int(w))
