"""When the fused Triton path runs, and loading the Triton kernel modules on demand.

Triton decides *when a kernel is decorated* (``@triton.jit``, i.e. when its module is first
imported) whether it is compiled for the GPU or run by Triton's CPU interpreter: the
interpreter is used when the environment variable ``TRITON_INTERPRET=1`` is set at that moment.
So the kernel modules are imported lazily, on the first call that needs them, and remember how
they were decorated.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from torch import Tensor

__all__ = ["fused_available", "triton_available", "interpreter_active", "kernel_module",
           "resolve_fused"]

_KERNEL_MODULES = ("dgblocks.kernels._entropy_triton", "dgblocks.kernels._triplet_triton")
_triton_state: dict[str, bool] = {}


def triton_available() -> bool:
    """Whether ``triton`` imports (tried once, on first use, and remembered)."""
    if "ok" not in _triton_state:
        try:
            importlib.import_module("triton")
            _triton_state["ok"] = True
        except Exception:  # noqa: BLE001  (a broken install counts as missing)
            _triton_state["ok"] = False
    return _triton_state["ok"]


def _interpret_env() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def kernel_module(name: str) -> ModuleType:
    """Import one kernel module (``"_entropy_triton"`` or ``"_triplet_triton"``) once."""
    full = f"dgblocks.kernels.{name}"
    if full not in _KERNEL_MODULES:
        raise ValueError(f"name: expected one of {_KERNEL_MODULES}, got {name!r}")
    return importlib.import_module(full)


def interpreter_active() -> bool:
    """Whether the kernels are (or, once loaded, will be) run by Triton's CPU interpreter.

    Once a kernel module is loaded this is fixed by how its kernels were decorated; before,
    it is read from ``TRITON_INTERPRET``.
    """
    loaded = [sys.modules[m] for m in _KERNEL_MODULES if m in sys.modules]
    if loaded:
        return all(bool(getattr(m, "INTERPRETED", False)) for m in loaded)
    return _interpret_env() and triton_available()


def fused_available(t: Tensor) -> bool:
    """Whether the fused Triton kernels can run on tensor ``t``.

    True when ``triton`` is importable and either ``t`` is a CUDA tensor, or ``t`` is a CPU
    tensor and the kernels run in Triton's interpreter (``TRITON_INTERPRET=1`` set before the
    kernels were first loaded: the tests do this). Otherwise the public wrappers of
    :mod:`dgblocks.kernels` take the eager PyTorch path.

    Args:
        t: the tensor the kernel would read.

    Shape:
        t: any; output: a Python bool.

    Invariants:
        - False whenever ``triton`` is not installed
        - False for a CPU tensor unless the interpreter is active

    Example:
        >>> fused_available(torch.zeros(2, 3)) == interpreter_active()
        True
    """
    if not isinstance(t, Tensor):
        raise ValueError(f"t: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type == "cuda":
        return triton_available()
    return t.device.type == "cpu" and interpreter_active()


def resolve_fused(use_fused: bool | None, t: Tensor, *, dtype_ok: bool) -> bool:
    """Decide the path: ``None`` means automatic, ``True`` demands the kernel, ``False`` eager.

    ``dtype_ok`` is false for inputs the kernels do not take (float64: eager reference
    precision); automatic mode then picks eager, and ``use_fused=True`` raises.
    """
    if use_fused is not None and not isinstance(use_fused, bool):
        raise ValueError(f"use_fused: expected None, True or False, got {use_fused!r}")
    if use_fused is False:
        return False
    ok = fused_available(t)
    if use_fused and not ok:
        raise ValueError("use_fused: True requested, but the fused kernels are not available"
                         f" for a {t.device.type} tensor (triton installed:"
                         f" {triton_available()}, interpreter: {interpreter_active()})")
    if use_fused and not dtype_ok:
        raise ValueError(f"use_fused: True requested, but the kernels do not take dtype {t.dtype}"
                         " (float16, bfloat16 and float32 only)")
    return ok and dtype_ok
