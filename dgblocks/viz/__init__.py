"""Plots written as PNG next to a run's results: t-SNE by domain and identity, retrieval grids,
CMC curves, training curves, ADIN's alternation (matplotlib, Agg backend)."""

from dgblocks.viz.alternation import plot_alternation
from dgblocks.viz.curves import plot_cmc, plot_training_curves
from dgblocks.viz.retrieval import plot_retrieval_grid, rank_gallery
from dgblocks.viz.tsne import embed_2d, plot_tsne

__all__ = ["plot_tsne", "embed_2d", "plot_retrieval_grid", "rank_gallery", "plot_cmc",
           "plot_training_curves", "plot_alternation"]
