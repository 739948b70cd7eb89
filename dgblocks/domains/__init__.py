"""Domain-level tools: central-domain selection by Wasserstein distance (DDAN eq 3), cosine
similarity between domains (DDAN Table 4) and a markdown table of a domain x domain matrix."""

from dgblocks.domains.central import CentralDomain, central_domain, central_from_distances
from dgblocks.domains.similarity import (
    domain_cosine_similarity,
    domain_table,
    encode_domains,
)
from dgblocks.domains.wasserstein import METHODS, paired_wasserstein, wasserstein_matrix

__all__ = [
    "central_domain",
    "central_from_distances",
    "wasserstein_matrix",
    "CentralDomain",
    "METHODS",
    "domain_cosine_similarity",
    "domain_table",
    "paired_wasserstein",
    "encode_domains",
]
