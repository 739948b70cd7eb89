"""t-SNE of features coloured by domain and by identity (DDAN Fig. 2, DIR-ReID Fig. 6)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dgblocks._checks import check_int, check_same_length, check_shape
from dgblocks.distances import squared_euclidean_distance
from dgblocks.viz._mpl import palette, pyplot, save

__all__ = ["embed_2d", "plot_tsne"]


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _affinities(x: Tensor, perplexity: float) -> Tensor:
    """Symmetric t-SNE input affinities, each row's bandwidth set by bisection."""
    d = squared_euclidean_distance(x)
    n = d.shape[0]
    d = d.masked_fill(torch.eye(n, dtype=torch.bool), float("inf"))
    target = math.log(perplexity)
    lo = torch.zeros(n, 1, dtype=x.dtype)
    hi = torch.full((n, 1), float("inf"), dtype=x.dtype)
    beta = torch.ones(n, 1, dtype=x.dtype) / d[d.isfinite()].mean().clamp_min(1e-12)
    for _ in range(64):
        logits = -d * beta
        logp = logits.log_softmax(dim=1)
        p = logp.exp()
        h = -(p * logp.masked_fill(p == 0, 0)).sum(1, keepdim=True)  # entropy (nats)
        too_flat = h > target  # entropy too high: sharpen (raise beta)
        lo = torch.where(too_flat, beta, lo)
        hi = torch.where(too_flat, hi, beta)
        beta = torch.where(hi.isinf(), beta * 2, (lo + hi) / 2)
    p = (p + p.T) / (2 * n)
    return p.clamp_min(1e-12)


def embed_2d(features: Any, *, seed: int = 0, perplexity: float = 30.0,
             iterations: int = 350) -> np.ndarray:
    """Exact 2-D t-SNE (van der Maaten & Hinton 2008) in torch, seeded and deterministic.

    Features are centred and reduced to 50 dimensions by PCA. The optimiser is the original
    one with scikit-learn's settings: early exaggeration 12 and momentum 0.5 for the first
    third of the iterations (at most 250), then momentum 0.8; adaptive gains; learning rate
    ``max(N / 48, 50)``. Exact O(N^2) gradients: meant for the few thousand points of a plot.
    Input with at most 2 columns is returned as is.

    Shape:
        features: (N, D); output: (N, 2).

    Example:
        >>> embed_2d(torch.randn(20, 2)).shape
        (20, 2)
    """
    check_shape(torch.as_tensor(_np(features)), "N D", name="features")
    x = torch.as_tensor(_np(features), dtype=torch.float64)
    if x.shape[1] <= 2 or len(x) < 5:
        return torch.nn.functional.pad(x, (0, max(0, 2 - x.shape[1])))[:, :2].numpy()
    x = x - x.mean(0)
    if x.shape[1] > 50:
        x = x @ torch.linalg.svd(x, full_matrices=False).Vh[:50].T
    x = x / x.abs().max().clamp_min(1e-12)
    n = len(x)
    p = _affinities(x, float(min(perplexity, (n - 1) / 3)))
    g = torch.Generator().manual_seed(seed)
    p = p.float()
    y = torch.randn(n, 2, generator=g) * 1e-4
    step, gains = torch.zeros_like(y), torch.ones_like(y)
    exaggeration, explore = 12.0, min(250, iterations // 3)
    lr = max(n / exaggeration / 4, 50.0)  # scikit-learn's 'auto' learning rate
    for it in range(iterations):
        sq = y.square().sum(1)
        num = (sq[:, None] + sq[None] - 2.0 * (y @ y.T)).clamp_min_(0.0).add_(1.0).reciprocal_()
        num.fill_diagonal_(0.0)
        q = (num / num.sum()).clamp_min_(1e-12)
        pq = (p * (exaggeration if it < explore else 1.0)).sub_(q).mul_(num)
        grad = 4.0 * (pq.sum(1, keepdim=True) * y - pq @ y)
        same = (grad > 0) == (step > 0)
        gains = torch.where(same, gains * 0.8, gains + 0.2).clamp_min(0.01)
        step = (0.5 if it < explore else 0.8) * step - lr * gains * grad
        y = y + step
        y = y - y.mean(0)
    return y.double().numpy()


def plot_tsne(features: Any, domains: Any, pids: Any, path: str | Path, *,
              domain_names: Sequence[str] | None = None, max_points: int = 1500,
              max_ids: int = 20, seed: int = 0, title: str = "") -> Path:
    """Two panels of one t-SNE embedding: points coloured by domain, and by identity.

    Up to ``max_points`` points are drawn (a seeded random subset); the identity panel
    colours the ``max_ids`` most frequent identities and greys the rest.

    Args:
        features: embeddings; domains, pids: integer labels per row.
        path: the PNG to write.
        domain_names: legend labels by domain index.

    Shape:
        features: (N, D); domains, pids: (N,).

    Example:
        >>> import tempfile, os
        >>> p = plot_tsne(torch.randn(30, 8), torch.arange(30) % 3, torch.arange(30) % 5,
        ...               os.path.join(tempfile.mkdtemp(), "tsne.png"))
        >>> p.exists()
        True
    """
    x, d, y = _np(features), _np(domains).astype(int), _np(pids).astype(int)
    check_shape(torch.as_tensor(x), "N D", name="features")
    check_same_length(("features", torch.as_tensor(x)), ("domains", torch.as_tensor(d)),
                      ("pids", torch.as_tensor(y)))
    check_int(max_points, name="max_points", minimum=2)
    if len(x) > max_points:
        keep = np.random.default_rng(seed).choice(len(x), max_points, replace=False)
        x, d, y = x[keep], d[keep], y[keep]
    z = embed_2d(x, seed=seed)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    doms = np.unique(d)
    for colour, dom in zip(palette(len(doms)), doms):
        m = d == dom
        label = domain_names[dom] if domain_names is not None and dom < len(domain_names) \
            else f"domain {dom}"
        axes[0].scatter(z[m, 0], z[m, 1], s=8, color=colour, label=label)
    axes[0].legend(fontsize=7, markerscale=2, loc="best")
    axes[0].set_title("by domain")
    ids, counts = np.unique(y, return_counts=True)
    top = ids[np.argsort(-counts, kind="stable")[:max_ids]]
    rest = ~np.isin(y, top)
    axes[1].scatter(z[rest, 0], z[rest, 1], s=6, color="lightgrey")
    for colour, pid in zip(palette(len(top)), top):
        m = y == pid
        axes[1].scatter(z[m, 0], z[m, 1], s=10, color=colour)
    axes[1].set_title(f"by identity ({len(top)} most frequent coloured)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return save(fig, path)
