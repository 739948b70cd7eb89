"""Run dgblocks' Triton kernels in Triton's CPU interpreter, for ``tests/kernels`` only.

Triton chooses between the GPU compiler and its CPU interpreter when a kernel is *decorated*
(``@triton.jit``, at the import of its module), from ``TRITON_INTERPRET``, and its runtime
reads the variable again while an interpreted kernel runs (lazy imports assert on it). So,
without a CUDA device, this conftest

- sets ``TRITON_INTERPRET=1`` while it (re)imports the two kernel modules (their kernels are
  then interpreted), and restores it at once;
- sets it again around each test that uses the ``fused_kernels`` fixture (``monkeypatch``), so
  that nothing else in the session sees it: torch.compile and the other suites run as without
  this folder;
- probes once that a kernel runs, and skips every test here with the reason when it does not.

With a CUDA device the kernels stay compiled and the tests run on the GPU.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import pytest
import torch

KERNEL_MODULES = ("dgblocks.kernels._entropy_triton", "dgblocks.kernels._triplet_triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _load_interpreted() -> None:
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        for name in KERNEL_MODULES:
            if name in sys.modules:
                importlib.reload(sys.modules[name])
            else:
                importlib.import_module(name)
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old


LOAD_ERROR: str | None = None  # why the interpreted kernels could not be loaded, if so
if DEVICE == "cpu" and importlib.util.find_spec("triton") is not None:
    try:
        _load_interpreted()
    except Exception as exc:  # a broken triton install must not break the rest of the suite
        LOAD_ERROR = f"{type(exc).__name__}: {exc}"


def _probe() -> str | None:
    """None when a fused kernel runs on DEVICE; otherwise why not."""
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    if LOAD_ERROR is not None:
        return f"the kernel modules do not load under the interpreter: {LOAD_ERROR}"
    from dgblocks import kernels

    probe = torch.zeros(1, 16, device=DEVICE)
    if not kernels.fused_available(probe):
        return f"fused kernels not available on {DEVICE} (interpreter not active)"
    try:
        out = float(kernels.neg_entropy(probe, use_fused=True))
    except Exception as exc:  # report, do not crash the session
        return f"Triton cannot run a kernel here: {type(exc).__name__}: {exc}"
    if abs(out + float(torch.log(torch.tensor(16.0)))) > 1e-5:
        return f"Triton ran but returned {out} instead of -log(16)"
    return None


@pytest.fixture(scope="session")
def kernels_problem() -> str | None:
    """Why the fused kernels cannot be tested here (None when they can), probed once."""
    with pytest.MonkeyPatch.context() as mp:
        if DEVICE == "cpu":
            mp.setenv("TRITON_INTERPRET", "1")
        return _probe()


@pytest.fixture
def fused_kernels(monkeypatch: pytest.MonkeyPatch, kernels_problem: str | None) -> None:
    """Skip unless the fused kernels run; set ``TRITON_INTERPRET=1`` for this test (CPU)."""
    if kernels_problem is not None:
        pytest.skip(kernels_problem)
    if DEVICE == "cpu":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
