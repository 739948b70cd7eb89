"""Domain-level tools: central-domain selection by Wasserstein distance (DDAN eq 3)."""

from dgblocks.domains.wasserstein import (
    METHODS,
    CentralDomain,
    central_domain,
    central_from_distances,
    wasserstein_matrix,
)

__all__ = [
    "central_domain",
    "central_from_distances",
    "wasserstein_matrix",
    "CentralDomain",
    "METHODS",
]
