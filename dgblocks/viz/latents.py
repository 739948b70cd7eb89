"""Raw 2-D latent factors coloured by domain and by class (DIR-ReID Figure 6).

Unlike :func:`dgblocks.viz.plot_tsne`, the points are drawn as they are (no embedding): the
latent spaces are already 2-D, so clusters seen here are clusters of the factors themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dgblocks._checks import ShapeError, check_same_length, check_shape
from dgblocks.viz._mpl import palette, pyplot, save

__all__ = ["plot_factors_2d"]


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_factors_2d(factors: Mapping[str, Any], domains: Any, labels: Any, path: str | Path, *,
                    domain_names: Sequence[str] | None = None, title: str = "") -> Path:
    """One row per factor, two panels per row: coloured by domain, and by class.

    DIR-ReID Figure 6 with ``factors={"v": v, "s": s}``: (a, b) v by domain / class,
    (c, d) s by domain / class. A well disentangled model clusters v by domain only and s by
    class only.

    Args:
        factors: name -> 2-D factors of the same samples.
        domains, labels: integer domain and class per sample.
        path: the PNG to write.
        domain_names: legend labels by domain index.
        title: figure title.

    Shape:
        factors: each (N, 2); domains, labels: (N,).

    Example:
        >>> import tempfile, os
        >>> p = plot_factors_2d({"s": torch.randn(20, 2), "v": torch.randn(20, 2)},
        ...                     torch.arange(20) % 2, torch.arange(20) % 5,
        ...                     os.path.join(tempfile.mkdtemp(), "latents.png"))
        >>> p.exists()
        True
    """
    if not factors:
        raise ShapeError("factors: expected at least one (N, 2) tensor, got an empty mapping")
    d_t, y_t = torch.as_tensor(_np(domains)), torch.as_tensor(_np(labels))
    for name, f in factors.items():
        check_shape(torch.as_tensor(_np(f)), "N 2", name=f"factors[{name!r}]")
        check_same_length((f"factors[{name!r}]", torch.as_tensor(_np(f))), ("domains", d_t),
                          ("labels", y_t))
    d, y = d_t.numpy().astype(int), y_t.numpy().astype(int)
    plt = pyplot()
    fig, axes = plt.subplots(len(factors), 2, figsize=(10, 4.5 * len(factors)), squeeze=False)
    for row, (name, f) in enumerate(factors.items()):
        z = _np(f)
        for col, (lab, kind) in enumerate(((d, "domain"), (y, "class"))):
            ax = axes[row, col]
            values = np.unique(lab)
            for colour, val in zip(palette(len(values)), values):
                m = lab == val
                text = (domain_names[val] if kind == "domain" and domain_names is not None
                        and val < len(domain_names) else f"{kind} {val}")
                ax.scatter(z[m, 0], z[m, 1], s=6, color=colour, label=text)
            ax.legend(fontsize=6, markerscale=2, loc="best")
            ax.set_title(f"{name} by {kind}")
    if title:
        fig.suptitle(title)
    return save(fig, path)
