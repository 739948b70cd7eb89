"""Plots: each writes a PNG; t-SNE keeps clusters apart; ranking removes junk; bad input."""

import numpy as np
import pytest
import torch

from dgblocks.viz import (
    embed_2d,
    plot_cmc,
    plot_retrieval_grid,
    plot_training_curves,
    plot_tsne,
    rank_gallery,
)


def _is_png(path):
    return path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_embed_2d_separates_clusters_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(30, 16, generator=g), torch.randn(30, 16, generator=g) + 6])
    z = embed_2d(x, seed=1, iterations=150)
    assert z.shape == (60, 2) and np.isfinite(z).all()
    a, b = z[:30], z[30:]
    gap = np.linalg.norm(a.mean(0) - b.mean(0))
    assert gap > 2 * max(a.std(0).max(), b.std(0).max())
    assert np.array_equal(z, embed_2d(x, seed=1, iterations=150))


def test_plot_tsne(tmp_path):
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(60, 8, generator=g)
    p = plot_tsne(feats, torch.arange(60) % 3, torch.arange(60) % 25, tmp_path / "t.png",
                  domain_names=["a", "b", "c"], max_points=50, max_ids=10)
    assert _is_png(p)


def test_rank_gallery_skips_junk_and_marks_matches():
    q = torch.tensor([[0.0], [10.0]])
    g = torch.tensor([[0.0], [0.1], [0.2], [10.0], [9.0]])
    g_pids, g_cams = torch.tensor([0, 1, 0, 1, 1]), torch.tensor([0, 1, 1, 2, 1])
    idx, match = rank_gallery(q, g, torch.tensor([0, 1]), g_pids, torch.tensor([0, 2]), g_cams,
                              k=3)
    assert idx[0].tolist() == [1, 2, 4]  # gallery 0: same id and camera -> junk
    assert match[0].tolist() == [False, True, False]
    assert idx[1].tolist() == [4, 2, 1] and match[1].tolist() == [True, False, True]


def test_plot_retrieval_grid(tmp_path):
    imgs = torch.rand(6, 3, 16, 8)
    p = plot_retrieval_grid(imgs[:2], imgs, torch.tensor([[1, 2, 3], [0, 4, 5]]),
                            torch.tensor([[True, False, False], [False, True, False]]),
                            tmp_path / "g.png", title="t")
    assert _is_png(p)
    grey = torch.rand(4, 1, 16, 8)
    assert _is_png(plot_retrieval_grid(grey[:1], grey, torch.tensor([[1]]),
                                       torch.tensor([[True]]), tmp_path / "grey.png"))


def test_curves(tmp_path):
    assert _is_png(plot_cmc({"a": (np.arange(1, 4), np.array([10.0, 40.0, 80.0])),
                             "b": ([1, 2, 3], [5.0, 6.0, 7.0])}, tmp_path / "c.png"))
    recs = [{"step": s, "phase": p, "loss": 1.0 / (s + 1), "lr": 0.1}
            for p in ("warm", "main") for s in range(4)]
    assert _is_png(plot_training_curves(recs, tmp_path / "tc.png"))


def test_bad_input_names_argument(tmp_path):
    with pytest.raises(ValueError, match="domains"):
        plot_tsne(torch.randn(5, 3), torch.zeros(4), torch.zeros(5), tmp_path / "x.png")
    with pytest.raises(ValueError, match="features"):
        embed_2d(torch.randn(5))
    with pytest.raises(ValueError, match="matches"):
        plot_retrieval_grid(torch.rand(1, 3, 4, 4), torch.rand(3, 3, 4, 4),
                            torch.tensor([[0, 1]]), torch.tensor([[True]]), tmp_path / "x.png")
    with pytest.raises(ValueError, match="g_feats"):
        rank_gallery(torch.randn(2, 3), torch.randn(4, 2), torch.zeros(2), torch.zeros(4),
                     torch.zeros(2), torch.zeros(4))
    with pytest.raises(ValueError, match="curves"):
        plot_cmc({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="records"):
        plot_training_curves([{"step": 1}], tmp_path / "x.png")
