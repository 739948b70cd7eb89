"""Reproducible tensor factories and hypothesis strategies shared by the tests.

Every random tensor comes from ``torch.Generator().manual_seed(seed)`` with the seed drawn by
hypothesis, so a failing example is reproducible from the printed seed.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

seeds = st.integers(min_value=0, max_value=2**31 - 1)
scales = st.sampled_from([1e-3, 1.0, 10.0, 1e3])
small = st.integers(min_value=1, max_value=8)
batch = st.integers(min_value=2, max_value=16)
classes = st.integers(min_value=2, max_value=12)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def randn(seed: int, *shape: int, scale: float = 1.0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=torch.float64).mul(scale).to(dtype)


def randint(seed: int, high: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=gen(seed))


def randperm(seed: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=gen(seed))


def random_rotation(seed: int, d: int, dtype=torch.float64) -> torch.Tensor:
    """A random orthogonal matrix (QR of a Gaussian matrix)."""
    q, r = torch.linalg.qr(randn(seed, d, d))
    return (q * torch.sign(torch.diagonal(r))).to(dtype)


def is_attached_zero(x: torch.Tensor) -> bool:
    """A scalar zero that is part of the autograd graph (so DDP sees the parameters used)."""
    return x.dim() == 0 and float(x.detach()) == 0.0 and x.requires_grad
