"""Render the synthetic generator as real dataset trees: ``python -m dgblocks.data.render_tree``.

Each dataset is one domain of :mod:`dgblocks.data.synthetic_reid`'s generator (its own
background, light, optics and clothing palette; :data:`~dgblocks.data.render_plan.STYLES`),
with identities seen by several cameras (per-camera gain and colour cast, preferred view) at
three times of day, written in the dataset's own layout and file naming (Market-1501,
DukeMTMC-reID, MSMT17, CUHK03-NP labeled and detected, CUHK02, CUHK-SYSU, PRID2011, GRID,
VIPeR, i-LIDS), so that ``--data real --data-root ROOT`` builds every protocol of
:mod:`dgblocks.protocols` through the real loaders. ``scale=1`` gives the real datasets'
identity counts (about 280,000 images); the trees of the tests use ``scale=0.001`` and
``per_id=2`` (a few hundred images, seconds).

People are drawn at half the output size (128 x 64 for the default 256 x 128, the native size
of Market-1501's crops) and enlarged bilinearly when written. Files keep each dataset's own
format (JPEG, PNG for CUHK02/CUHK03/PRID, BMP for VIPeR); ``image_format="jpeg"`` writes JPEG
everywhere (``.jpg``; the loaders accept either). The same ``seed`` gives the same files,
whatever ``jobs`` is and whichever other datasets are rendered.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from dgblocks._checks import ValueRangeError, check_choice, check_int
from dgblocks.data._validate import check_flag, check_path
from dgblocks.data.render_layouts import ALIASES, DATASETS, plan_dataset
from dgblocks.data.render_layouts import seed_of as _seed
from dgblocks.data.render_plan import STYLES, Item, Plan
from dgblocks.data.synthetic_params import image_params
from dgblocks.data.synthetic_render import render_batch
from dgblocks.data.synthetic_styles import identity_attributes, style_table

__all__ = ["render_tree", "plan_dataset", "DATASETS", "main"]

MAX_JOBS = 256  # a typo must not fork thousands of processes
MARKER = ".dgblocks_render"  # in every rendered dataset folder: overwrite may remove it


def _render_size(size: tuple[int, int]) -> tuple[int, int]:
    h, w = size
    while h > 128 and h % 2 == 0 and w % 2 == 0:
        h, w = h // 2, w // 2
    return h, w


def _save(img: Any, path: Path, size: tuple[int, int]) -> None:
    from PIL import Image

    if img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    if ext in (".jpg", ".jpeg"):
        img.save(path, format="JPEG", quality=90)
    elif ext == ".png":
        img.save(path, format="PNG", compress_level=1)
    else:
        img.save(path, format="BMP")


def _chunk(params: dict[str, torch.Tensor], items: list[Item], root: str,
           size: tuple[int, int], seed: int) -> int:
    """Render and write one chunk (also in a worker process); returns the files written."""
    from PIL import Image

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(seed)
    h, w = _render_size(size)
    imgs = render_batch(params, h, w, gen).permute(0, 2, 3, 1).contiguous().numpy()
    written = 0
    for arr, item in zip(imgs, items):
        img = Image.fromarray(arr)
        _save(img, Path(root) / item.rel, size)
        written += 1
        if item.twin:  # CUHK03's detected box: the same person, a looser, shifted crop
            r = torch.rand(4, generator=gen).tolist()
            ch, cw = round(h * (0.82 + 0.12 * r[0])), round(w * (0.82 + 0.12 * r[1]))
            y0, x0 = round((h - ch) * r[2]), round((w - cw) * r[3])
            _save(img.crop((x0, y0, x0 + cw, y0 + ch)), Path(root) / item.twin, size)
            written += 1
    return written


def _prepare(folder: Path, overwrite: bool) -> None:
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise ValueRangeError(f"root: {folder} exists and was not written by render_tree;"
                                  " it is left alone (choose another root)")
        if not overwrite:
            raise ValueRangeError(f"root: {folder} was rendered before; pass overwrite=True "
                                  "(--overwrite) to render it again")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("written by dgblocks.data.render_tree\n")


def _render(plan: Plan, root: Path, size: tuple[int, int], seed: int, jobs: int,
            progress: bool) -> int:
    from tqdm.auto import tqdm

    n_ident = max(it.ident for it in plan.items) + 1
    tab = style_table([STYLES[plan.name]])
    zeros = torch.zeros(n_ident, dtype=torch.long)
    attrs = identity_attributes(zeros, tab, spurious=0.7, gen=torch.Generator().manual_seed(
        _seed(seed, plan.name, "identities")))
    col = {k: torch.tensor([getattr(it, k) for it in plan.items]) for k in ("ident", "cam",
                                                                          "period")}
    params = image_params(tab, attrs, zeros, col["ident"], col["cam"], col["period"],
                          _render_size(size), torch.Generator().manual_seed(
                              _seed(seed, plan.name, "images")),
                          view_bias=0.6, cameras=max(4, plan.cameras))
    h, w = _render_size(size)
    step = max(1, (1 << 20) // (h * w))
    tasks = [({k: v[s:s + step] for k, v in params.items()}, plan.items[s:s + step], str(root),
              size, _seed(seed, plan.name, "chunk", s)) for s in range(0, len(plan.items), step)]
    bar = tqdm(total=sum(1 + bool(it.twin) for it in plan.items), desc=plan.name, unit="img",
               disable=not progress)
    written = 0
    if jobs > 1:
        with ProcessPoolExecutor(min(jobs, len(tasks))) as pool:
            for n in pool.map(_chunk, *zip(*tasks)):
                written += n
                bar.update(n)
    else:
        for task in tasks:
            n = _chunk(*task)
            written += n
            bar.update(n)
    bar.close()
    for rel, text in plan.texts.items():
        (root / rel).write_text(text)
    return written


def render_tree(root: str | Path, *, datasets: Sequence[str] | None = None, scale: float = 1.0,
                image_size: tuple[int, int] = (256, 128), seed: int = 0,
                per_id: int | None = None, image_format: str = "native", jobs: int = 1,
                overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Write the synthetic domains under ``root`` as the real datasets' folder trees.

    Args:
        root: the data root (``--data-root``); created if missing.
        datasets: names or short names (default: all of :data:`DATASETS`).
        scale: identities per dataset = the real count x ``scale`` (never below what the
            protocols need).
        image_size: ``(H, W)`` of the written images.
        seed: the same seed writes the same files.
        per_id: at most this many images per identity (default: the real averages).
        image_format: ``"native"`` (each dataset's own format) or ``"jpeg"``.
        jobs: worker processes rendering chunks (the files do not depend on it).
        overwrite: render again a dataset folder an earlier call wrote (never another one).
        progress: a tqdm bar per dataset.

    Returns:
        the manifest also written to ``root/dgblocks_render.json``: the settings and, per
        dataset, its folder, style, files written, identities and cameras rendered.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as root:
        ...     out = render_tree(root, datasets=["VIPeR"], scale=0.001, per_id=2,
        ...                       image_size=(64, 32), progress=False)
        >>> out["datasets"]["viper"]["files"], out["datasets"]["viper"]["folder"]
        (12, 'VIPeR')
    """
    if datasets is not None and (not isinstance(datasets, (list, tuple)) or not datasets
                                 or not all(isinstance(n, str) for n in datasets)):
        raise ValueRangeError(f"datasets: expected a non-empty list of names, got {datasets!r}"
                              [:120])
    names = [ALIASES.get(n, n) for n in (datasets if datasets is not None else DATASETS)]
    for n in names:
        check_choice(n, DATASETS, name="datasets")
    check_flag(overwrite, name="overwrite")
    check_flag(progress, name="progress")
    if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
        raise ValueRangeError(f"image_size: expected (H, W), got {image_size!r}")
    size = (check_int(image_size[0], name="image_size[0]", minimum=16, maximum=1024),
            check_int(image_size[1], name="image_size[1]", minimum=8, maximum=1024))
    check_int(jobs, name="jobs", minimum=1, maximum=MAX_JOBS)
    root = check_path(root)
    start = time.perf_counter()
    out: dict[str, Any] = {"seed": seed, "scale": scale, "per_id": per_id,
                           "image_size": list(size), "image_format": image_format,
                           "datasets": {}}
    plans = [plan_dataset(n, scale=scale, per_id=per_id, seed=seed, image_format=image_format)
             for n in dict.fromkeys(names)]
    for plan in plans:
        _prepare(root / plan.folder, overwrite)
        files = _render(plan, root, size, seed, jobs, progress)
        out["datasets"][plan.name] = {
            "folder": plan.folder, "style": STYLES[plan.name]["name"], "files": files,
            "identities": len({it.ident for it in plan.items}),
            "cameras": len({it.cam for it in plan.items})}
    out["seconds"] = round(time.perf_counter() - start, 2)
    (root / "dgblocks_render.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line: ``python -m dgblocks.data.render_tree ROOT [--datasets ...]``."""
    ap = argparse.ArgumentParser(prog="python -m dgblocks.data.render_tree",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("root", help="data root to write (the --data-root of the recipes)")
    ap.add_argument("--datasets", nargs="+", default=None,
                    help=f"names or short names (default: all): {', '.join(DATASETS)}")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="identities = real count x scale (default 1: the real sizes)")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-id", type=int, default=None, help="at most N images per identity")
    ap.add_argument("--format", default="native", choices=("native", "jpeg"))
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--overwrite", action="store_true", help="render a rendered folder again")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    a = ap.parse_args(argv)
    out = render_tree(a.root, datasets=a.datasets, scale=a.scale, image_size=tuple(a.size),
                      seed=a.seed, per_id=a.per_id, image_format=a.format, jobs=a.jobs,
                      overwrite=a.overwrite, progress=not a.quiet)
    for name, d in out["datasets"].items():
        print(f"{name}: {d['files']} files, {d['identities']} identities, {d['cameras']} "
              f"cameras -> {Path(a.root) / d['folder']}")
    print(f"{sum(d['files'] for d in out['datasets'].values())} files in {out['seconds']} s")
    return out


if __name__ == "__main__":
    main()
