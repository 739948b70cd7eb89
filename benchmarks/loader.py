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
- ``batches_w<N>`` / ``batches_aug_w<N>``: :class:`dgblocks.engine.batches.Batches` over the
  file-backed :class:`~dgblocks.data.ReIDDataset` (random order, 8 batches of 64; ``--small``:
  2 of 16) with N = 0, 1, 2 persistent workers, without / with the per-item augmentation,
  once the workers run and their queues are full (the workers are stopped after each turn, so
  that no loader prefetches while another case is timed).

The per-image cases decode the same number of images (512; ``--small``: 32). Every case runs
with one torch thread (as a worker does), and the cases take turns, round after round (9
rounds; ``--small``: 3): a change in the machine's load hits them alike (timed one after the
other with ``torch.utils.benchmark``, the later cases paid for jobs that started meanwhile).
images/s of the median round and the ratio to the PIL loop are reported; the load average is
recorded before and after (2 cores shared: workers only pay where a core is free).

    python -m benchmarks.loader            # about 2 minutes
    python -m benchmarks.loader --small    # seconds (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks._meta import metadata, write_results
from dgblocks.data import load_image
from dgblocks.data.datasets import load_dataset, to_dataset
from dgblocks.data.render_tree import render_tree
from dgblocks.data.transforms import train_transform
from dgblocks.engine.batches import Batches, random_sampler

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


def timed(f: Callable[[], Any]) -> Callable[[], float]:
    """``f`` as a case of :func:`interleaved`: its wall time."""
    def case() -> float:
        t = time.perf_counter()
        f()
        return time.perf_counter() - t
    return case


def batches_case(ds: Any, batch: int, steps: int, workers: int) -> Callable[[], float]:
    """Start ``Batches`` and let its workers fill their queues (untimed), time ``steps``
    batches, stop the workers: no loader keeps prefetching while another case runs."""
    def case() -> float:
        b = Batches(ds, batch_size=batch, sampler=random_sampler(len(ds)), workers=workers)
        for _ in range(2 * max(workers, 1)):
            next(b)
        t = time.perf_counter()
        for _ in range(steps):
            next(b)
        t = time.perf_counter() - t
        b.close()
        return t
    return case


def interleaved(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each case, the cases taking turns round after round (one warm-up call
    each), so that a change in the machine's load hits every case alike."""
    for f in cases.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for k, f in cases.items():
            times[k].append(f())
    return times


def _row(case: str, t: list[float], images: int, workers: int | None) -> dict[str, Any]:
    q = statistics.quantiles(t, n=4) if len(t) > 1 else [t[0]] * 3
    med = statistics.median(t)
    return {"case": case, "workers": workers, "images": images, "median_s": med,
            "iqr_s": q[2] - q[0], "runs": len(t), "images_per_s": images / med}


def run(root: Path, *, small: bool, rounds: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    render_tree(root, datasets=["M"], scale=0.02 if small else 0.1, per_id=4 if small else None,
                image_size=SIZE, image_format="jpeg", progress=False)
    ds = to_dataset(load_dataset("M", root).train)
    pil_decode(ds.paths or [])  # page cache
    batch, steps = (16, 2) if small else (64, 8)
    paths = (ds.paths or [])[: batch * steps]  # as many images as the Batches cases load
    augment = train_transform(SIZE, generator=torch.Generator().manual_seed(0))
    imgs = torch.stack([load_image(p) for p in paths[:batch]])
    cases = {"pil_decode": timed(lambda: pil_decode(paths)),
             "load_image": timed(lambda: decode_all(paths)),
             "load_image+augment": timed(lambda: decode_all(paths, augment)),
             "augment_batch": timed(lambda: augment(imgs))}
    sizes = {"pil_decode": len(paths), "load_image": len(paths),
             "load_image+augment": len(paths), "augment_batch": batch}
    for aug in (False, True):
        view = ds.subset(range(len(ds)))  # its own transform, the same files
        view.transform = augment if aug else None
        for workers in (0, 1, 2):
            case = f"batches{'_aug' if aug else ''}_w{workers}"
            cases[case] = batches_case(view, batch, steps, workers)
            sizes[case] = batch * steps
    times = interleaved(cases, rounds)
    rows = [_row(k, t, sizes[k], int(k[-1]) if k.startswith("batches") else None)
            for k, t in times.items()]
    for r in rows:
        r["ratio_vs_pil"] = r["images_per_s"] / rows[0]["images_per_s"]
    return rows, {"batch": batch, "batches_per_round": steps, "rounds": rounds,
                  "images_per_round": len(paths), "tree_images": len(ds)}


def main(out: Path | None = None, *, small: bool = False) -> Path:
    torch.set_num_threads(1)
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        rows, info = run(Path(tmp), small=small, rounds=3 if small else 9)
    extra = {"mode": "small" if small else "full", "image_size": list(SIZE), **info,
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
