"""The containers every benchmark is made of: ``ReIDDataset``, ``TargetDomain``, ``Benchmark``.

A :class:`ReIDDataset` holds its labels as ``LongTensor`` attributes (``pids``, ``camids``,
``domains``, ``timestamps``) so that samplers never load an image. Images come either from an
in-memory ``uint8`` tensor (the embedded benchmarks) or from files decoded with Pillow (the
real datasets). ``__getitem__`` returns ``(image, pid, camid, domain, timestamp)`` with the
image a float32 tensor in ``[0, 1]`` of shape ``(C, H, W)``, after the optional ``transform``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from dgblocks._checks import ShapeError, ValueRangeError, check_choice, check_int
from dgblocks.data._validate import check_instance, check_text
from dgblocks.data.image_io import (
    MAX_IMAGE_PIXELS,
    DataError,
    DataWarning,
    check_image_size,
    load_image,
)

__all__ = ["ReIDDataset", "TargetDomain", "Benchmark", "load_image", "few_threads",
           "DataError", "DataWarning", "MAX_IMAGE_PIXELS", "check_image_size"]


@contextlib.contextmanager
def few_threads(num_elements: int, *, threshold: int = 1 << 21) -> Iterator[None]:
    """Run with one intra-op thread when the work is tiny (smoke-sized benchmarks).

    On small tensors torch's thread pool costs more than it gives, badly so on a busy
    machine; results do not depend on the thread count.
    """
    threads = torch.get_num_threads()
    if num_elements < threshold:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _long(x: Any, n: int, name: str, minimum: int = 0) -> Tensor:
    """One integer label per image, ``>= minimum`` (a fraction, NaN or a smaller value is
    refused naming ``name`` and the image, never truncated)."""
    if isinstance(x, (str, bytes)):
        raise ValueRangeError(f"{name}: expected one integer per image, got a string")
    try:
        t = x if isinstance(x, Tensor) else torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueRangeError(f"{name}: expected one integer per image, got "
                              f"{type(x).__name__} ({err})") from err
    if t.dim() != 1 or t.shape[0] != n:
        raise ShapeError(f"{name}: expected shape ({n},) (one per image), got {tuple(t.shape)}")
    if t.dtype == torch.bool or t.is_complex():
        raise ValueRangeError(f"{name}: expected integer labels, got {t.dtype}")
    if t.is_floating_point():
        bad = ~torch.isfinite(t) | (t != t.round()) | (t.abs() > 2**53)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueRangeError(f"{name}: expected integer labels, got {float(t[i])} at "
                                  f"image {i}")
    t = t.long()
    if n and int(t.min()) < minimum:
        i = int((t < minimum).nonzero()[0])
        raise ValueRangeError(f"{name}: expected labels >= {minimum}"
                              f"{' (-1: unknown)' if minimum == -1 else ''}, got {int(t[i])}"
                              f" at image {i}")
    return t


class ReIDDataset(Dataset):
    """Images with identity, camera, domain and timestamp labels.

    Args:
        images: ``uint8`` tensor ``(N, C, H, W)`` held in memory, or ``None`` with ``paths``.
        paths: image files (decoded lazily with Pillow) when ``images`` is ``None``.
        pids: identity label per image (integers >= 0; a fraction is refused, not truncated).
        camids: camera label per image (>= 0).
        domains: domain index per image (>= 0; default 0).
        timestamps: integer timestamp per image, ``-1`` where unknown (default).
        transform: callable applied to the float image tensor.
        image_size: ``(H, W)`` to resize files to while decoding (file-backed datasets).
        name: a label used in reprs and tables.

    Shape:
        images: (N, C, H, W) uint8; pids, camids, domains, timestamps: (N,) int64.

    Example:
        >>> ds = ReIDDataset(torch.zeros(2, 3, 4, 2, dtype=torch.uint8), pids=[0, 1],
        ...                  camids=[0, 1])
        >>> img, pid, cam, dom, ts = ds[1]
        >>> img.shape, pid, cam, dom, ts
        (torch.Size([3, 4, 2]), 1, 1, 0, -1)
    """

    def __init__(self, images: Tensor | None = None, *, paths: Sequence[str] | None = None,
                 pids: Any, camids: Any, domains: Any = None, timestamps: Any = None,
                 transform: Callable[[Tensor], Tensor] | None = None,
                 image_size: tuple[int, int] | None = None, name: str = "") -> None:
        if (images is None) == (paths is None):
            raise ShapeError("images: expected exactly one of images (a uint8 tensor) or paths,"
                             f" got images={'set' if images is not None else None},"
                             f" paths={'set' if paths is not None else None}")
        if images is not None:
            if not isinstance(images, Tensor) or images.dim() != 4 or images.dtype != torch.uint8:
                got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
                raise ShapeError(f"images: expected a uint8 tensor (N, C, H, W), got {got}")
            n = images.shape[0]
        else:
            if isinstance(paths, (str, bytes, os.PathLike)) or not hasattr(paths, "__len__"):
                raise ValueRangeError(f"paths: expected a list of image files, got "
                                      f"{type(paths).__name__}")
            paths = [os.fspath(p) for p in paths]  # type: ignore[union-attr]
            n = len(paths)
        if transform is not None and not callable(transform):
            raise ValueRangeError(f"transform: expected a callable or None, got "
                                  f"{type(transform).__name__}")
        self.images = images
        self.paths = paths
        self.pids = _long(pids, n, "pids")
        self.camids = _long(camids, n, "camids")
        self.domains = _long(torch.zeros(n) if domains is None else domains, n, "domains")
        ts = torch.full((n,), -1) if timestamps is None else timestamps
        self.timestamps = _long(ts, n, "timestamps", minimum=-1)
        self.transform = transform
        self.image_size = check_image_size(image_size, name="image_size")
        self.name = check_text(name, name="name")
        # (root dataset, indices into it): lets evaluation encode shared images once
        self.origin: tuple[ReIDDataset, Tensor] = (self, torch.arange(n))

    def __len__(self) -> int:
        return int(self.pids.shape[0])

    def image(self, i: int) -> Tensor:
        """The untransformed float image ``i`` in ``[0, 1]``."""
        if self.images is not None:
            return self.images[i].float().div(255.0)
        return load_image(self.paths[i], self.image_size)  # type: ignore[index]

    def __getitem__(self, i: int) -> tuple[Tensor, int, int, int, int]:
        img = self.image(i)
        if self.transform is not None:
            img = self.transform(img)
        return (img, int(self.pids[i]), int(self.camids[i]), int(self.domains[i]),
                int(self.timestamps[i]))

    @property
    def num_ids(self) -> int:
        """Number of distinct identities."""
        return int(self.pids.unique().numel())

    def subset(self, index: Any, *, name: str | None = None) -> ReIDDataset:
        """A new dataset with the images at ``index`` (tensor or list), sharing storage."""
        idx = torch.as_tensor(index, dtype=torch.long)
        out = ReIDDataset(
            None if self.images is None else self.images[idx],
            paths=None if self.paths is None else [self.paths[i] for i in idx.tolist()],
            pids=self.pids[idx], camids=self.camids[idx], domains=self.domains[idx],
            timestamps=self.timestamps[idx], transform=self.transform,
            image_size=self.image_size, name=self.name if name is None else name)
        out.origin = (self.origin[0], self.origin[1][idx])
        return out

    def __repr__(self) -> str:
        src = "memory" if self.images is not None else "files"
        return (f"ReIDDataset(name={self.name!r}, images={len(self)}, ids={self.num_ids},"
                f" cams={int(self.camids.unique().numel())}, {src})")


@dataclass
class TargetDomain:
    """An evaluation domain: one or more (query, gallery) splits.

    ``task = "reid"`` scores retrieval (CMC/mAP); ``"classification"`` scores the query
    images by accuracy with a ``classify`` callable (the gallery is then unused).
    """

    name: str
    splits: list[tuple[ReIDDataset, ReIDDataset]]
    task: str = "reid"

    def __post_init__(self) -> None:
        check_text(self.name, name="name")
        check_choice(self.task, ("reid", "classification"), name="task")
        if not isinstance(self.splits, (list, tuple)) or not self.splits:
            raise ShapeError(f"splits: expected a non-empty list of (query, gallery) pairs for"
                             f" {self.name!r}, got {type(self.splits).__name__}")
        for pair in self.splits:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                    and all(isinstance(d, ReIDDataset) for d in pair)):
                raise ShapeError(f"splits: expected (query, gallery) pairs of ReIDDataset for "
                                 f"{self.name!r}, got {type(pair).__name__}")

    def __repr__(self) -> str:
        q, g = self.splits[0]
        return (f"TargetDomain({self.name!r}, splits={len(self.splits)}, query={len(q)},"
                f" gallery={len(g)}, task={self.task!r})")


@dataclass
class Benchmark:
    """Training data (all sources merged) and evaluation domains of one experiment.

    Attributes:
        name: benchmark name.
        train: all source images, global pids ``0..num_ids-1`` disjoint per source, domain
            index per image.
        num_ids: number of training identities (classes for classification tasks).
        num_domains: number of source domains.
        domain_names: names of the source domains, by domain index.
        targets: unseen evaluation domains.
        source_val: held-out identities of the source domains (may be empty).
        task: ``"reid"`` or ``"classification"``.
        info: free-form description (sizes, seed, protocol).
    """

    name: str
    train: ReIDDataset
    num_ids: int
    num_domains: int
    domain_names: list[str]
    targets: list[TargetDomain]
    source_val: list[TargetDomain] = field(default_factory=list)
    task: str = "reid"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_text(self.name, name="name")
        check_instance(self.train, ReIDDataset, name="train")
        check_int(self.num_ids, name="num_ids", minimum=0)
        check_int(self.num_domains, name="num_domains", minimum=0)
        if not isinstance(self.domain_names, (list, tuple)) or not all(
                isinstance(n, str) for n in self.domain_names):
            raise ValueRangeError(f"domain_names: expected a list of names (one per source "
                                  f"domain), got {self.domain_names!r}"[:200])
        for field_name in ("targets", "source_val"):
            value = getattr(self, field_name)
            if not isinstance(value, (list, tuple)) or not all(
                    isinstance(t, TargetDomain) for t in value):
                raise ValueRangeError(f"{field_name}: expected a list of TargetDomain, got "
                                      f"{type(value).__name__}")
        check_choice(self.task, ("reid", "classification"), name="task")
        check_instance(self.info, dict, name="info")

    def __repr__(self) -> str:
        return (f"Benchmark({self.name!r}, task={self.task!r}, train={len(self.train)} images,"
                f" ids={self.num_ids}, domains={self.domain_names},"
                f" targets={[t.name for t in self.targets]},"
                f" source_val={[t.name for t in self.source_val]})")
