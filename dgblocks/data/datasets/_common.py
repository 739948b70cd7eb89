"""Shared pieces of the real-dataset loaders: records, splits, layout errors, file scans."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from dgblocks._checks import DGBlocksError
from dgblocks.data._validate import check_path
from dgblocks.data.base import DataError, DataWarning

__all__ = ["Record", "DatasetSplits", "LayoutError", "find_dir", "scan", "relabel", "camera",
           "outside_links", "warn_outside", "identity"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


class Record(NamedTuple):
    """One image: file path, identity, camera (0-based) and timestamp (-1 when unknown)."""

    path: str
    pid: int
    camid: int
    timestamp: int = -1


@dataclass
class DatasetSplits:
    """A dataset's standard splits as lists of :class:`Record`.

    ``protocol_splits`` holds the 10 (query, gallery) pairs of the Protocol-1 test sets
    (VIPeR, PRID, GRID, i-LIDS); ``query``/``gallery`` are then the first pair.
    """

    name: str
    train: list[Record]
    query: list[Record] = field(default_factory=list)
    gallery: list[Record] = field(default_factory=list)
    protocol_splits: list[tuple[list[Record], list[Record]]] = field(default_factory=list)

    def summary(self) -> str:
        def ids(rs: Sequence[Record]) -> int:
            return len({r.pid for r in rs})

        return (f"{self.name}: train {len(self.train)} images / {ids(self.train)} ids, "
                f"query {len(self.query)} / {ids(self.query)}, "
                f"gallery {len(self.gallery)} / {ids(self.gallery)}")


class LayoutError(DGBlocksError, FileNotFoundError):
    """A dataset folder is missing or does not have the expected layout.

    The message shows the expected tree under the given root.
    """


def find_dir(root: str | Path, candidates: Sequence[str], required: Sequence[str], *,
             dataset: str, tree: str) -> Path:
    """The first ``root/<candidate>`` holding every ``required`` entry, else a LayoutError.

    ``"."`` as a candidate means ``root`` itself.
    """
    root = check_path(root)
    for c in candidates:
        base = root if c == "." else root / c
        if base.is_dir() and all((base / r).exists() for r in required):
            return base
    tried = ", ".join(str(root if c == "." else root / c) for c in candidates)
    missing = []
    for c in candidates:
        base = root if c == "." else root / c
        if base.is_dir():
            missing = [r for r in required if not (base / r).exists()]
            break
    detail = f" (missing: {', '.join(missing)})" if missing else ""
    raise LayoutError(f"root: {dataset} not found with the expected layout; tried {tried}"
                      f"{detail}. Expected:\n{root}/\n{tree.rstrip()}")


def camera(text: str, path: Path | str, *, first: int = 1) -> int:
    """The 0-based camera of a file name's camera field ``text`` (numbered from ``first``);
    anything else (``cX``, ``c0``) raises :class:`DataError` naming the file."""
    if not text.isdigit() or int(text) < first:
        raise DataError(f"{str(path)!r}: camera {text!r} is not a number >= {first}")
    return int(text) - first


def identity(text: str, path: Path | str) -> int:
    """The identity of a file name's (or list line's) pid field: an int >= 0, else a
    :class:`DataError` naming the file (the junk id -1 is the caller's to drop first)."""
    try:
        pid = int(text)
    except ValueError:
        raise DataError(f"{str(path)!r}: identity {text!r} is not an integer") from None
    if pid < 0:
        raise DataError(f"{str(path)!r}: identity {pid} is negative (only -1, the junk id of "
                        "Market-1501 and DukeMTMC-reID, is dropped)")
    return pid


def outside_links(paths: Sequence[str], base: Path | str) -> list[tuple[str, str]]:
    """``(path, real path)`` of the files that resolve outside ``base``: a symbolic link (of
    the file or of a folder on its way) to somewhere else. One ``lstat`` per file."""
    prefix = os.path.realpath(base).rstrip(os.sep) + os.sep
    parents: dict[str, str] = {}
    out = []
    for p in paths:
        parent, name = os.path.split(p)
        if parent not in parents:
            parents[parent] = os.path.realpath(parent)
        real = os.path.realpath(p) if os.path.islink(p) else os.path.join(parents[parent], name)
        if not real.startswith(prefix):
            out.append((p, real))
    return out


def warn_outside(paths: Sequence[str], base: Path | str, dataset: str) -> None:
    """A :class:`~dgblocks.data.base.DataWarning` naming the links of :func:`outside_links`.

    A warning, not an error: linked trees are a normal way to assemble a data root (files
    shared between CUHK03's labeled and detected folders, a deduplicated store), but a link
    leaving the dataset's folder may pull another dataset's images, a test set's for example,
    into this one; ``--check-data`` lists it as a problem.
    """
    links = outside_links(paths, base)
    if links:
        ex = ", ".join(f"{a} -> {b}" for a, b in links[:3]) + (", ..." if len(links) > 3 else "")
        warnings.warn(f"{dataset}: {len(links)} image(s) are links that resolve outside "
                      f"{base}: {ex}", DataWarning, stacklevel=3)


def _examples(paths: Sequence[Path], n: int = 3) -> str:
    return ", ".join(p.name for p in paths[:n]) + (", ..." if len(paths) > n else "")


def scan(folder: Path, pattern: str, parse: Callable[[re.Match, Path], Record | None], *,
         dataset: str, tree: str, within: Path | None = None) -> list[Record]:
    """Records of the image files in ``folder`` whose name matches ``pattern`` (sorted).

    ``parse`` returns ``None`` to drop a file (e.g. Market's junk pid -1) and raises
    :class:`DataError` for a name it cannot read; every such name (and every negative
    identity or camera) is listed in one DataError. Image names off the pattern and folders
    named like images are skipped with a warning (count and examples); images that resolve
    outside ``within`` (the dataset's folder; default ``folder``) are kept with a
    :class:`~dgblocks.data.base.DataWarning` naming the links. A folder without a single
    matching image raises a LayoutError showing ``tree``.
    """
    rx = re.compile(pattern)
    out, matched, off, dirs, bad = [], 0, [], [], []
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if p.suffix.lower() not in IMAGE_EXTS:
            continue
        if not p.is_file():
            dirs.append(p)
            continue
        m = rx.search(p.name)
        if m is None:
            off.append(p)
            continue
        matched += 1
        try:
            r = parse(m, p)
            if r is not None and r.camid < 0:
                raise DataError(f"{str(p)!r}: camera id {r.camid + 1} is not >= 1")
            if r is not None:
                identity(str(r.pid), p)
        except (DataError, ValueError) as err:
            bad.append(str(err) if isinstance(err, DataError) else f"{str(p)!r}: {err}")
            continue
        if r is not None:
            out.append(r)
    if bad:
        raise DataError(f"{dataset}: {len(bad)} file name(s) in {folder} do not parse:\n  "
                        + "\n  ".join(bad))
    if off or dirs:
        what = [f"{len(off)} image(s) named off the pattern /{pattern}/ ({_examples(off)})"
                ] if off else []
        what += [f"{len(dirs)} folder(s) named like images ({_examples(dirs)})"] if dirs else []
        warnings.warn(f"{dataset}: skipped {' and '.join(what)} in {folder}", RuntimeWarning,
                      stacklevel=2)
    if matched == 0:
        raise LayoutError(f"root: no {dataset} image named like /{pattern}/ in {folder}."
                          f" Expected:\n{tree.rstrip()}")
    warn_outside([r.path for r in out], within or folder, dataset)
    return out


def relabel(records: Sequence[Record], offset: int = 0) -> tuple[list[Record], dict[int, int]]:
    """Map pids to ``offset .. offset + num_ids - 1`` in order of first sorted appearance."""
    mapping = {p: offset + i for i, p in enumerate(sorted({r.pid for r in records}))}
    return [r._replace(pid=mapping[r.pid]) for r in records], mapping
