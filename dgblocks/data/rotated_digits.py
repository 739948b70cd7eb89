"""``rotated_digits``: scikit-learn's bundled digits as a rotated-domain benchmark (no download).

DIR-ReID appendix E (after Ghifary et al.'s rotated MNIST): the *same* 100 images per class
are rotated by 0, 15, 30, 45, 60 degrees (source domains) and 75 degrees (unseen target).
The 8x8 digits (values 0..16) are upsampled to 20x20 (bilinear) and centred in a 28x28 frame,
like MNIST's 20x20 box, so rotation never cuts a stroke. Rotation is bilinear
(``affine_grid`` + ``grid_sample``), vectorised over the batch.

``task = "classification"``: ``pid`` is the class, ``domain`` the rotation index, ``camid``
0. The target's split is ``(images, images)``: score the query with a ``classify`` callable
(``dgblocks.eval.evaluate_benchmark(..., classify=...)``). ``source_val`` holds, per source
angle, digits not among the training 100 per class (up to 70 per class), rotated the same way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dgblocks._checks import ValueRangeError, check_int
from dgblocks.data._validate import check_flag, check_seed
from dgblocks.data.base import Benchmark, ReIDDataset, TargetDomain, few_threads

__all__ = ["rotated_digits", "rotate_images", "SOURCE_ANGLES", "TARGET_ANGLES"]

SOURCE_ANGLES = (0, 15, 30, 45, 60)
TARGET_ANGLES = (75,)


def rotate_images(images: Tensor, degrees: float) -> Tensor:
    """Rotate a batch ``(N, C, H, W)`` counter-clockwise by ``degrees`` (bilinear, zero fill).

    Example:
        >>> x = torch.zeros(1, 1, 5, 5); x[0, 0, 2, 4] = 1.0
        >>> rotate_images(x, 90)[0, 0].argmax().item()  # the right pixel moves to the top
        2
    """
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=images.dtype)
    theta = theta.unsqueeze(0).expand(images.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def _load_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled ``digits.csv.gz`` (read directly: importing sklearn is slow)."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ImportError("rotated_digits needs scikit-learn (pip install dgblocks[data])")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if path.exists():
        data = np.loadtxt(path, delimiter=",")
        images, target = data[:, :-1].reshape(-1, 8, 8), data[:, -1]
    else:  # pragma: no cover - a future sklearn layout
        from sklearn.datasets import load_digits

        d = load_digits()
        images, target = d.images, d.target
    x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    return x, torch.as_tensor(target, dtype=torch.long)


def _to28(x: Tensor) -> Tensor:
    up = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    return F.pad(up, (4, 4, 4, 4)).clamp(0, 1)


def _dataset(x: Tensor, y: Tensor, angles: tuple[int, ...], first_domain: int,
             name: str) -> ReIDDataset:
    imgs, doms = [], []
    for k, a in enumerate(angles):
        imgs.append(rotate_images(x, float(a)))
        doms.append(torch.full((x.shape[0],), first_domain + k))
    img = torch.cat(imgs).clamp(0, 1).mul(255).round().to(torch.uint8)
    return ReIDDataset(img, pids=y.repeat(len(angles)), camids=torch.zeros(img.shape[0]),
                       domains=torch.cat(doms), name=name)


def rotated_digits(*, seed: int = 0, per_class: int = 100, smoke: bool = False,
                   val_per_class: int = 70) -> Benchmark:
    """Build the rotated-digits :class:`~dgblocks.data.Benchmark` (classification task).

    Args:
        seed: picks which ``per_class`` images of each class are used.
        per_class: training images per class and domain (100 in DIR-ReID).
        smoke: 10 per class, 10 validation per class.
        val_per_class: held-out images per class for ``source_val``.

    Example:
        >>> b = rotated_digits(smoke=True)
        >>> b.task, b.num_ids, b.num_domains, len(b.train), b.targets[0].name
        ('classification', 10, 5, 500, 'rot75')
    """
    check_seed(seed)
    if check_flag(smoke, name="smoke"):
        per_class, val_per_class = 10, 10
    check_int(per_class, name="per_class", minimum=1)
    check_int(val_per_class, name="val_per_class", minimum=0)
    with few_threads(per_class * 10 * 784 * 12):
        return _build(seed, per_class, val_per_class)


def _build(seed: int, per_class: int, val_per_class: int) -> Benchmark:
    check_int(per_class, name="per_class", minimum=1)
    check_int(val_per_class, name="val_per_class", minimum=0)
    x, y = _load_digits()
    gen = torch.Generator().manual_seed(int(seed))
    train_idx, val_idx = [], []
    for c in range(10):
        idx = (y == c).nonzero().squeeze(1)
        if per_class + val_per_class > idx.numel():
            raise ValueRangeError(f"per_class: expected per_class + val_per_class <= "
                                  f"{idx.numel()} (digits of class {c}), got "
                                  f"{per_class + val_per_class}")
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        train_idx.append(idx[:per_class])
        val_idx.append(idx[per_class: per_class + val_per_class])
    ti, vi = torch.cat(train_idx), torch.cat(val_idx)
    x28 = _to28(x)
    names = [f"rot{a}" for a in SOURCE_ANGLES]
    train = _dataset(x28[ti], y[ti], SOURCE_ANGLES, 0, "digits/train")
    targets = []
    for k, a in enumerate(TARGET_ANGLES):
        ds = _dataset(x28[ti], y[ti], (a,), len(SOURCE_ANGLES) + k, f"rot{a}")
        targets.append(TargetDomain(name=f"rot{a}", splits=[(ds, ds)], task="classification"))
    source_val = []
    if val_per_class > 0:
        for k, a in enumerate(SOURCE_ANGLES):
            ds = _dataset(x28[vi], y[vi], (a,), k, f"rot{a}-val")
            source_val.append(TargetDomain(name=f"rot{a}-val", splits=[(ds, ds)],
                                           task="classification"))
    return Benchmark(name="rotated_digits", train=train, num_ids=10,
                     num_domains=len(SOURCE_ANGLES), domain_names=names, targets=targets,
                     source_val=source_val, task="classification",
                     info={"seed": seed, "per_class": per_class, "angles": SOURCE_ANGLES})
