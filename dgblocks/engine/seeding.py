"""Seeds and RNG states: every generator a run draws from, saved and restored exactly."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from dgblocks._checks import check_int

__all__ = ["seed_everything", "rng_state", "set_rng_state", "derive_seed"]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, ...), stable across runs and platforms.

    Example:
        >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(0, 2)
        True
    """
    h = 1469598103934665603
    for p in parts:
        check_int(p, name="parts", minimum=-2**63, maximum=2**63 - 1)
        for byte in int(p).to_bytes(8, "little", signed=True):
            h = ((h ^ byte) * 1099511628211) % 2**64
    return h % 2**63


def seed_everything(seed: int, *, deterministic: bool = False, threads: int = 0) -> None:
    """Seed torch (CPU and CUDA), numpy and ``random``; optionally force determinism.

    ``deterministic=True`` calls ``torch.use_deterministic_algorithms(True)``, disables cuDNN
    benchmarking and sets ``CUBLAS_WORKSPACE_CONFIG`` so that CUDA matmuls are reproducible too.
    """
    check_int(seed, name="seed", minimum=0)
    check_int(threads, name="threads", minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if threads > 0:
        torch.set_num_threads(threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def rng_state() -> dict[str, Any]:
    """The state of every global RNG, in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
