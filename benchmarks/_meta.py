"""Shared benchmark plumbing: machine metadata and JSON results (see benchmarks/README.md).

Every suite times our code beside a reference in the same run with ``torch.utils.benchmark``
and reports ratios, because these machines are shared and noisy.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils import benchmark as tb

RESULTS = Path(os.environ.get("DGBLOCKS_RESULTS_DIR", "")
               or Path(__file__).resolve().parent / "results")  # scripts/gpu_check.sh sets it


def metadata() -> dict[str, Any]:
    """Commit, versions, device and threads: enough to judge whether two results compare."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "unknown"
    import numpy

    meta = {
        "commit": commit or "unknown",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        meta["gpu"] = {"name": props.name, "capability": list(torch.cuda.get_device_capability(0)),
                       "memory_gib": round(props.total_memory / 2**30, 1),
                       "cuda_runtime": torch.version.cuda,
                       "cudnn": torch.backends.cudnn.version(), "count": torch.cuda.device_count()}
    try:
        import ot

        meta["pot"] = ot.__version__
    except ImportError:
        pass
    return meta


def keep_freed_memory() -> str:
    """Make glibc's ``malloc`` keep freed memory in the process, as a caching allocator does.

    By default glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh
    ``mmap`` and hands it back on ``free``: a training step at ReID sizes (GiBs of activations)
    then page-faults on every tensor it allocates, and a step with twice the activations (two
    encoders, a meta-test pass) pays more than twice, so ratios measure the kernel's page
    zeroing rather than our code. CUDA's caching allocator (and jemalloc / tcmalloc, which
    PyTorch's CPU tuning guide recommends) keep freed blocks; here ``mallopt`` turns off mmap
    for large blocks (``M_MMAP_MAX = 0``) and trimming of the heap top (``M_TRIM_THRESHOLD``
    at its maximum), the in-process form of ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``.

    Returns a line for the results' metadata: what was set, or why nothing was (not glibc).
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return "system allocator (no glibc mallopt on this machine)"
    m_trim_threshold, m_mmap_max = -1, -4
    if mallopt(m_mmap_max, 0) != 1 or mallopt(m_trim_threshold, 2**31 - 1) != 1:
        return "system allocator (mallopt refused)"
    return "glibc malloc keeping freed memory (mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^31-1)"


def measure(stmt: str, globals_: dict[str, Any], *, label: str, sub_label: str,
            description: str = "", min_run_time: float = 1.0) -> tb.Measurement:
    """Time ``stmt`` with warm-up and many repeats (median, IQR; device synchronised)."""
    timer = tb.Timer(stmt=stmt, globals=globals_, label=label, sub_label=sub_label,
                     description=description, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time)


def summary(m: tb.Measurement) -> dict[str, float]:
    """Median and IQR in seconds of a measurement."""
    return {"median_s": float(m.median), "iqr_s": float(m.iqr), "runs": len(m.times)}


def write_results(name: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None
                  ) -> Path:
    """Write ``benchmarks/results/<name>.json`` with metadata; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"suite": name, "meta": metadata(), "rows": rows, **(extra or {})}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
    return path
