"""Encode the images of a dataset with a model: the features that evaluation ranks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dgblocks._checks import ShapeError, ValueRangeError, check_int
from dgblocks.data.base import ReIDDataset

__all__ = ["encode_dataset"]


def check_callable(fn: Any, name: str) -> None:
    if not callable(fn):
        raise ValueRangeError(f"{name}: expected a callable images -> tensor, got {fn!r}")


def check_device(device: Any) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueRangeError(f"device: expected a torch device, got {device!r} ({e})") from None


def _check_index(index: Any, n: int) -> Tensor:
    if index is None:
        return torch.arange(n)
    if not isinstance(index, Tensor):
        try:
            index = torch.as_tensor(index)
        except (TypeError, ValueError, RuntimeError):
            raise ValueRangeError(f"index: expected integer positions, got {index!r}") from None
        if index.numel() == 0:  # an empty list converts to float32
            index = index.long()
    if index.dim() != 1 or index.dtype.is_floating_point or index.dtype.is_complex \
            or index.dtype == torch.bool:
        raise ValueRangeError(f"index: expected a 1-D integer tensor, got {index.dtype} of"
                              f" shape {tuple(index.shape)}")
    index = index.long().cpu()
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise ValueRangeError(f"index: expected positions in [0, {n}) of ds, got {bad}")
    return index


def image_batches(ds: ReIDDataset, index: Tensor, batch_size: int):
    for s in range(0, index.numel(), batch_size):
        idx = index[s: s + batch_size]
        if ds.images is not None and ds.transform is None:
            yield ds.images[idx].float().div_(255.0)
        else:
            yield torch.stack([ds[i][0] for i in idx.tolist()])


@torch.no_grad()
def encode_dataset(encode: Callable[[Tensor], Tensor], ds: ReIDDataset, *,
                   index: Tensor | None = None, batch_size: int = 128, device: Any = "cpu",
                   progress: bool = False, desc: str = "") -> Tensor:
    """Features ``(N, D)`` (float32, on CPU) of the images of ``ds`` (or ``index`` of them).

    ``index`` holds positions in ``[0, len(ds))`` (no negative indexing from the end);
    no images give an empty ``(0, 0)`` tensor.
    """
    check_callable(encode, "encode")
    if not isinstance(ds, ReIDDataset):
        raise ValueRangeError(f"ds: expected a ReIDDataset, got {type(ds).__name__}")
    check_int(batch_size, name="batch_size", minimum=1)
    device = check_device(device)
    index = _check_index(index, len(ds))
    feats = []
    it = image_batches(ds, index, batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=math.ceil(index.numel() / batch_size), desc=desc, leave=False)
    for x in it:
        f = encode(x.to(device))
        if not isinstance(f, Tensor) or f.dim() != 2 or f.shape[0] != x.shape[0]:
            got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise ShapeError(f"encode: expected features of shape (B, D) with B={x.shape[0]},"
                             f" got {got}")
        f = f.float().cpu()
        if not bool(torch.isfinite(f).all()):  # a diverged model: say so, not a ranking error
            raise ValueRangeError("encode: expected finite features, got NaN or Inf")
        feats.append(f)
    return torch.cat(feats) if feats else torch.empty(0, 0)
