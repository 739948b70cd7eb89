"""Retrieval grids: each query followed by its top-k gallery images, true matches framed
green and false ones red (ADIN Fig. 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dgblocks._checks import ShapeError, check_int, check_shape
from dgblocks.distances import pairwise_distance
from dgblocks.viz._mpl import pyplot, save

__all__ = ["rank_gallery", "plot_retrieval_grid"]


def rank_gallery(q_feats: Tensor, g_feats: Tensor, q_pids: Tensor, g_pids: Tensor,
                 q_camids: Tensor, g_camids: Tensor, *, k: int = 5) -> tuple[Tensor, Tensor]:
    """Top-``k`` gallery indices per query (Euclidean), junk (same identity *and* camera)
    removed as in the Market-1501 protocol, and whether each is a true match.

    Shape:
        q_feats: (Q, D); g_feats: (G, D); labels: (Q,) and (G,); outputs: (Q, k) each.

    Example:
        >>> q, g = torch.tensor([[0.0]]), torch.tensor([[0.0], [1.0], [2.0]])
        >>> rank_gallery(q, g, torch.tensor([0]), torch.tensor([0, 0, 1]), torch.tensor([0]),
        ...              torch.tensor([0, 1, 1]), k=2)
        (tensor([[1, 2]]), tensor([[ True, False]]))
    """
    nq, d = check_shape(q_feats, "Q D", name="q_feats").values()
    ng = check_shape(g_feats, "G D", name="g_feats", D=d)["G"]
    check_int(k, name="k", minimum=1)
    dist = pairwise_distance(q_feats.float(), g_feats.float())
    junk = (q_pids[:, None] == g_pids[None]) & (q_camids[:, None] == g_camids[None])
    dist = dist.masked_fill(junk, torch.finfo(dist.dtype).max)
    k = min(k, ng)
    idx = dist.topk(k, dim=1, largest=False).indices
    return idx, g_pids[idx] == q_pids[:, None]


def _show(img: Tensor) -> np.ndarray:
    x = img.detach().float().cpu()
    if x.dim() == 3 and x.shape[0] in (1, 3):
        x = x.permute(1, 2, 0)
    x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
    return x.squeeze(-1).numpy() if x.shape[-1] == 1 else x.numpy()


def plot_retrieval_grid(query_images: Any, gallery_images: Any, ranked: Tensor,
                        matches: Tensor, path: str | Path, *, title: str = "") -> Path:
    """One row per query: the query image, then its ranked gallery images framed green
    (true match) or red (false match).

    Args:
        query_images: (Q, C, H, W) tensor or a list of (C, H, W) tensors.
        gallery_images: indexable by gallery index, each (C, H, W).
        ranked: gallery indices, best first; matches: bool, the same shape.

    Shape:
        ranked, matches: (Q, k).

    Example:
        >>> import tempfile, os
        >>> imgs = torch.rand(3, 3, 16, 8)
        >>> p = plot_retrieval_grid(imgs[:1], imgs, torch.tensor([[1, 2]]),
        ...                         torch.tensor([[True, False]]),
        ...                         os.path.join(tempfile.mkdtemp(), "grid.png"))
        >>> p.exists()
        True
    """
    q, k = check_shape(ranked, "Q K", name="ranked").values()
    if tuple(matches.shape) != (q, k):
        raise ShapeError(f"matches: expected shape ({q}, {k}) from ranked, "
                         f"got {tuple(matches.shape)}")
    if len(query_images) != q:
        raise ShapeError(f"query_images: expected {q} images from ranked, got {len(query_images)}")
    plt = pyplot()
    fig, axes = plt.subplots(q, k + 1, figsize=(1.1 * (k + 1), 2.0 * q), squeeze=False)
    for i in range(q):
        axes[i, 0].imshow(_show(query_images[i]), cmap="gray")
        axes[i, 0].set_title("query", fontsize=7)
        for j in range(k):
            ax = axes[i, j + 1]
            ax.imshow(_show(gallery_images[int(ranked[i, j])]), cmap="gray")
            colour = "#1a9641" if bool(matches[i, j]) else "#d7191c"
            for side in ax.spines.values():
                side.set_edgecolor(colour)
                side.set_linewidth(3)
            ax.set_title(str(j + 1), fontsize=7, color=colour)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, path)
