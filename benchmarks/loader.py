"""The input pipeline on files: decode + augmentation per worker, and Batches with 0/1/2 workers.

A Market-1501-shaped tree is rendered first (:mod:`dgblocks.data.render_tree`, JPEG at
256 x 128, 1,275 training images; ``--small``: 60), then, every image read once beforehand so
that all cases read from the page cache:

- ``pil_decode`` (the reference): a bare Pillow loop, ``Image.open(path).convert("RGB")``
  and the decoded bytes, one process;
- ``load_image``: dgblocks' decode to a float ``(3, 256, 128)`` tensor, one process;
- ``load_image+augment``: the same plus the bag-of-tricks augmentation applied per image
  (:func:`dgblocks.data.transforms.train_transform` at 256 x 128: flip, pad + crop, colour
  jitter, random erasing), one process: the work of one worker when a dataset augments in
  ``__getitem__``;
- ``augment_batch``: that augmentation on a whole batch of decoded images, as the recipes do
  in the training process (time per image);
- ``batches_w<N>`` / ``batches_aug_w<N>``: :class:`dgblocks.engine.Batches` over the
  file-backed :class:`~dgblocks.data.ReIDDataset` (random order, batch 64; ``--small``: 16)
  with N = 0, 1, 2 persistent workers, without / with the per-item augmentation; the time of
  ``next(batches)`` once the workers run.

Every case runs with one torch thread (as a worker does). images/s and the ratio to the PIL
loop are reported; the load average is recorded before and after (2 cores shared: workers only
pay where a core is free).

    python -m benchmarks.loader            # about 2 minutes
    python -m benchmarks.loader --small    # seconds (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks._meta import measure, metadata, summary, write_results
from dgblocks.data import load_image
from dgblocks.data.datasets import load_dataset, to_dataset
from dgblocks.data.render_tree import render_tree
from dgblocks.data.transforms import train_transform
from dgblocks.engine import Batches, random_sampler

SIZE = (256, 128)


def pil_decode(paths: list[str]) -> int:
    """The reference: decode every file with Pillow, nothing else."""
    from PIL import Image

    n = 0
    for p in paths:
        with Image.open(p) as im:
            n += len(im.convert("RGB").tobytes())
    return n


def decode_all(paths: list[str], augment: Any = None) -> None:
    for p in paths:
        img = load_image(p)
        if augment is not None:
            augment(img)


def _row(case: str, m: Any, images: int, workers: int | None = None) -> dict[str, Any]:
    s = summary(m)
    return {"case": case, "workers": workers, "images": images, **s,
            "images_per_s": images / s["median_s"]}


def run(root: Path, *, small: bool, min_run_time: float) -> list[dict[str, Any]]:
    render_tree(root, datasets=["M"], scale=0.02 if small else 0.1, per_id=4 if small else None,
                image_size=SIZE, image_format="jpeg", progress=False)
    ds = to_dataset(load_dataset("M", root).train)
    paths = ds.paths or []
    pil_decode(paths)  # page cache
    augment = train_transform(SIZE, generator=torch.Generator().manual_seed(0))
    rows = [_row("pil_decode", measure("pil_decode(paths)", {"pil_decode": pil_decode,
                                                            "paths": paths},
                                       label="loader", sub_label="pil_decode",
                                       min_run_time=min_run_time), len(paths)),
            _row("load_image", measure("decode_all(paths)", {"decode_all": decode_all,
                                                            "paths": paths},
                                       label="loader", sub_label="load_image",
                                       min_run_time=min_run_time), len(paths)),
            _row("load_image+augment", measure(
                "decode_all(paths, augment)", {"decode_all": decode_all, "paths": paths,
                                               "augment": augment},
                label="loader", sub_label="load_image+augment", min_run_time=min_run_time),
                len(paths))]
    batch = 16 if small else 64
    imgs = torch.stack([load_image(p) for p in paths[:batch]])
    rows.append(_row("augment_batch", measure("augment(imgs)", {"augment": augment,
                                                              "imgs": imgs},
                                              label="loader", sub_label="augment_batch",
                                              min_run_time=min_run_time), batch))
    for aug in (False, True):
        ds.transform = augment if aug else None
        for workers in (0, 1, 2):
            b = Batches(ds, batch_size=batch, sampler=random_sampler(len(ds)), workers=workers)
            for _ in range(2 * max(workers, 1)):  # workers started and their queues full
                next(b)
            case = f"batches{'_aug' if aug else ''}_w{workers}"
            rows.append(_row(case, measure("next(b)", {"b": b}, label="loader", sub_label=case,
                                           min_run_time=min_run_time), batch, workers))
            b.close()
    ref = rows[0]["images_per_s"]
    for r in rows:
        r["ratio_vs_pil"] = r["images_per_s"] / ref
    return rows


def main(out: Path | None = None, *, small: bool = False) -> Path:
    torch.set_num_threads(1)
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(Path(tmp), small=small, min_run_time=0.2 if small else 3.0)
    extra = {"mode": "small" if small else "full", "image_size": list(SIZE),
             "load_before": load_before, "load_after": list(os.getloadavg())}
    name = "loader_small" if small else "loader"
    if out is None:
        path = write_results(name, rows, extra)
    else:  # a test: leave benchmarks/results alone
        path = Path(out)
        path.write_text(json.dumps({"suite": name, "meta": metadata(), "rows": rows, **extra},
                                   indent=2) + "\n")
    for r in rows:
        print(f"{r['case']:>22}: {r['images_per_s']:8.0f} images/s  ({r['ratio_vs_pil']:.2f}x"
              f" the PIL loop)")
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="a tiny tree, short timings")
    main(small=ap.parse_args().small)
