"""The containers every benchmark is made of: ``ReIDDataset``, ``TargetDomain``, ``Benchmark``.

A :class:`ReIDDataset` holds its labels as ``LongTensor`` attributes (``pids``, ``camids``,
``domains``, ``timestamps``) so that samplers never load an image. Images come either from an
in-memory ``uint8`` tensor (the embedded benchmarks) or from files decoded with Pillow (the
real datasets). ``__getitem__`` returns ``(image, pid, camid, domain, timestamp)`` with the
image a float32 tensor in ``[0, 1]`` of shape ``(C, H, W)``, after the optional ``transform``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from dgblocks._checks import DGBlocksError, ShapeError, check_choice

__all__ = ["ReIDDataset", "TargetDomain", "Benchmark", "load_image", "few_threads",
           "DataError"]


class DataError(DGBlocksError):
    """An image file cannot be decoded, or a dataset file name does not parse (names it)."""


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


def load_image(path: str, size: tuple[int, int] | None = None) -> Tensor:
    """Decode an image file with Pillow into a float32 ``(3, H, W)`` tensor in ``[0, 1]``.

    ``size = (H, W)`` resizes with bilinear interpolation (Pillow) while decoding. A file
    that cannot be decoded (missing, a folder, truncated, not an image) raises
    :class:`DataError` naming it.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None:
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            img = data.view(im.size[1], im.size[0], 3).permute(2, 0, 1)
    except (OSError, ValueError, SyntaxError) as err:  # PIL: truncated, unidentified, ...
        raise DataError(f"{str(path)!r}: cannot decode the image "
                        f"({type(err).__name__}: {err})") from err
    return img.float().div_(255.0)


def _long(x: Any, n: int, name: str) -> Tensor:
    t = torch.as_tensor(x, dtype=torch.long) if not isinstance(x, Tensor) else x.long()
    if t.dim() != 1 or t.shape[0] != n:
        raise ShapeError(f"{name}: expected shape ({n},) (one per image), got {tuple(t.shape)}")
    return t


class ReIDDataset(Dataset):
    """Images with identity, camera, domain and timestamp labels.

    Args:
        images: ``uint8`` tensor ``(N, C, H, W)`` held in memory, or ``None`` with ``paths``.
        paths: image files (decoded lazily with Pillow) when ``images`` is ``None``.
        pids: identity label per image.
        camids: camera label per image.
        domains: domain index per image (default 0).
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
            paths = [str(p) for p in paths]  # type: ignore[union-attr]
            n = len(paths)
        self.images = images
        self.paths = paths
        self.pids = _long(pids, n, "pids")
        self.camids = _long(camids, n, "camids")
        self.domains = _long(torch.zeros(n) if domains is None else domains, n, "domains")
        ts = torch.full((n,), -1) if timestamps is None else timestamps
        self.timestamps = _long(ts, n, "timestamps")
        self.transform = transform
        self.image_size = image_size
        self.name = name
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
        check_choice(self.task, ("reid", "classification"), name="task")
        if not self.splits:
            raise ShapeError(f"splits: expected at least one (query, gallery) pair for"
                             f" {self.name!r}, got none")

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

    def __repr__(self) -> str:
        return (f"Benchmark({self.name!r}, task={self.task!r}, train={len(self.train)} images,"
                f" ids={self.num_ids}, domains={self.domain_names},"
                f" targets={[t.name for t in self.targets]},"
                f" source_val={[t.name for t in self.source_val]})")
