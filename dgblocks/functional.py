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
from dgblocks.layers.grl import grad_reverse
from dgblocks.layers.schedules import dann_coeff
from dgblocks.layers.style import cross_domain_style, domain_style_moments, expand_style_moments
from dgblocks.losses.adversarial import reverse_cross_entropy
from dgblocks.losses.center import center_loss
from dgblocks.losses.consistency import consistency_loss
from dgblocks.losses.cross_entropy import label_smoothing_ce, smoothed_target_entropy
from dgblocks.losses.entropy import calibrated_neg_entropy, class_prior, neg_entropy
from dgblocks.losses.parameter_cosine import parameter_cosine
from dgblocks.losses.subspace import subspace_consistency, subspace_diversity
from dgblocks.losses.symmetric_kl import symmetric_kl
from dgblocks.losses.triplet import batch_hard_mining, triplet_loss
from dgblocks.meta.norm import batch_norm_train
from dgblocks.meta.objective import meta_objective
from dgblocks.sampling.backdoor import (
    backdoor_adjustment,
    backdoor_indices,
    backdoor_linear,
    backdoor_pairs,
)

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
    # layers/grl.py, layers/schedules.py, losses/adversarial.py
    "grad_reverse",
    "dann_coeff",
    "reverse_cross_entropy",
    # losses/cross_entropy.py, losses/symmetric_kl.py
    "label_smoothing_ce",
    "smoothed_target_entropy",
    "symmetric_kl",
    # losses/triplet.py, center.py, parameter_cosine.py, subspace.py, consistency.py
    "triplet_loss",
    "batch_hard_mining",
    "center_loss",
    "parameter_cosine",
    "subspace_diversity",
    "subspace_consistency",
    "consistency_loss",
    # sampling/backdoor.py
    "backdoor_adjustment",
    "backdoor_indices",
    "backdoor_linear",
    "backdoor_pairs",
    # layers/style.py
    "domain_style_moments",
    "expand_style_moments",
    "cross_domain_style",
    # meta/objective.py
    "meta_objective",
    # meta/norm.py (the meta step's batch norm)
    "batch_norm_train",
]
