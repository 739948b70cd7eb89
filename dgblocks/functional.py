"""Every pure function of dgblocks in one namespace, like ``torch.nn.functional``.

>>> import dgblocks.functional as DF
>>> DF.neg_entropy(torch.zeros(2, 4))
tensor(-1.3863)
"""

import torch  # noqa: F401  (doctest namespace)

from dgblocks.distances import (
    cosine_distance,
    cosine_similarity_matrix,
    euclidean_distance,
    pairwise_distance,
    squared_euclidean_distance,
)
from dgblocks.losses.entropy import calibrated_neg_entropy, class_prior, neg_entropy

__all__ = [
    # distances
    "pairwise_distance",
    "euclidean_distance",
    "squared_euclidean_distance",
    "cosine_distance",
    "cosine_similarity_matrix",
    # losses/entropy
    "neg_entropy",
    "calibrated_neg_entropy",
    "class_prior",
]
