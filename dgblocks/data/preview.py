"""Picture grids of the embedded benchmarks, for ``docs/data.md``.

Run ``python -m dgblocks.data.preview --out docs/img`` to write ``synthetic_reid_grid.png``
(one row per domain: sources, then unseen targets) and ``rotated_digits_grid.png`` (one row
per rotation). Needs Pillow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["image_grid", "synthetic_grid", "digits_grid", "main"]


def image_grid(rows: list[Tensor], labels: list[str], *, scale: int = 3, pad: int = 2,
               label_width: int = 110):
    """Tile rows of ``(n, C, H, W)`` float images in ``[0, 1]`` into a labelled PIL image."""
    from PIL import Image, ImageDraw

    n = max(r.shape[0] for r in rows)
    _, _, h, w = rows[0].shape
    H, W = h * scale, w * scale
    canvas = Image.new("RGB", (label_width + n * (W + pad) + pad, len(rows) * (H + pad) + pad),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (row, label) in enumerate(zip(rows, labels)):
        y = pad + i * (H + pad)
        draw.text((4, y + H // 2 - 6), label, fill=(0, 0, 0))
        for j in range(row.shape[0]):
            img = row[j].expand(3, -1, -1) if row.shape[1] == 1 else row[j]
            arr = img.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()
            tile = Image.fromarray(arr).resize((W, H), Image.NEAREST)
            canvas.paste(tile, (label_width + pad + j * (W + pad), y))
    return canvas


def synthetic_grid(*, per_row: int = 12, seed: int = 0, image_size=(64, 32)):
    """Rows: the images of ``per_row // 2`` identities (2 views each) per domain."""
    from dgblocks.data.synthetic_reid import synthetic_reid

    b = synthetic_reid(seed=seed, image_size=image_size)
    rows, labels = [], []
    for d, name in enumerate(b.domain_names):
        ds = b.train
        idx = (ds.domains == d).nonzero().squeeze(1)
        pids = ds.pids[idx].unique()[: per_row // 2]
        pick = []
        for p in pids.tolist():
            pick += idx[ds.pids[idx] == p][:2].tolist()
        rows.append(torch.stack([ds.image(i) for i in pick]))
        labels.append(f"{name} (source)")
    for t in b.targets:
        q, g = t.splits[0]
        k = per_row // 2
        imgs = []
        for i in range(k):
            imgs.append(q.image(i))
            match = (g.pids == q.pids[i]).nonzero().squeeze(1)
            imgs.append(g.image(int(match[0])))
        rows.append(torch.stack(imgs))
        labels.append(f"{t.name} (target)")
    return image_grid(rows, labels)


def digits_grid(*, per_row: int = 10, seed: int = 0):
    """Rows: one image per class for each rotation (sources, then the unseen target)."""
    from dgblocks.data.rotated_digits import rotated_digits

    b = rotated_digits(seed=seed)
    rows, labels = [], []
    for d, name in enumerate(b.domain_names):
        ds = b.train
        pick = [int(((ds.domains == d) & (ds.pids == c)).nonzero()[0]) for c in range(per_row)]
        rows.append(torch.stack([ds.image(i) for i in pick]))
        labels.append(f"{name} (source)")
    for t in b.targets:
        q = t.splits[0][0]
        pick = [int((q.pids == c).nonzero()[0]) for c in range(per_row)]
        rows.append(torch.stack([q.image(i) for i in pick]))
        labels.append(f"{t.name} (target)")
    return image_grid(rows, labels, scale=2, label_width=120)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["synthetic", "digits"], default=None)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "synthetic"):
        synthetic_grid(seed=args.seed).save(out / "synthetic_reid_grid.png")
    if args.only in (None, "digits"):
        digits_grid(seed=args.seed).save(out / "rotated_digits_grid.png")
    print(f"wrote grids to {out}")


if __name__ == "__main__":
    main()
