"""The fused path: eager blocks vs ``torch.compile`` of the same blocks, at ReID sizes.

Forward + backward of the public API, both implementations timed in the same run:

- ``neg_entropy`` on logits (B, 18,530) (MSMT17+ID-pool-sized classifier) with CaNE-style
  per-class weights, B = 64 and 256;
- batch-hard ``triplet_loss`` on features (B, 2048), 4 images per identity, B = 64 and 256;
- ``cross_domain_style`` (CDVM) on maps (64, 256, 64, 32) from 3 domains, noise given.

Each row records the median, IQR, the speed-up of ``torch.compile`` over eager and the largest
difference of its value from eager. Runs on CUDA when present, else on the CPU (the compiled
path then needs a C++ compiler). ``dgblocks`` has no hand-written kernels: a Triton kernel is
kept only where it beats both eager and ``torch.compile`` by >= 1.5x, and none did (see
docs/decisions.md, "Fused kernels"). Writes ``benchmarks/results/kernels.json``.

    python -m benchmarks.kernels            # full sizes
    python -m benchmarks.kernels --quick    # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks._meta import measure, metadata, summary, write_results
from dgblocks import functional as DF

K, D, BATCHES, PER_ID = 18_530, 2048, (64, 256), 4
STYLE = (64, 256, 64, 32)  # B, C, H, W
STYLE_DOMAINS = 3


def _cases(device: str, quick: bool) -> list[tuple[str, dict[str, Any], Callable, list]]:
    """(op, sizes, function, inputs): the function's first input is the one differentiated."""
    g = torch.Generator(device=device).manual_seed(0)
    k, d = (100, 32) if quick else (K, D)
    out = []
    for b in (8,) if quick else BATCHES:
        z = (4 * torch.randn(b, k, device=device, generator=g)).requires_grad_()
        w = torch.rand(k, device=device, generator=g)
        out.append(("neg_entropy", {"B": b, "K": k},
                    lambda t, w: DF.neg_entropy(t, weights=w), [z, w]))
        x = torch.randn(b, d, device=device, generator=g).requires_grad_()
        labels = torch.arange(b, device=device) // PER_ID
        out.append(("triplet_loss", {"B": b, "D": d}, DF.triplet_loss, [x, labels]))
    b, c, h, w_ = (6, 8, 4, 4) if quick else STYLE
    f = torch.randn(b, c, h, w_, device=device, generator=g).requires_grad_()
    dom = torch.arange(b, device=device) % STYLE_DOMAINS
    eps = 0.1 * torch.randn(2, STYLE_DOMAINS, c, device=device, generator=g)

    def style(t: torch.Tensor, dom: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        y = DF.cross_domain_style(t, dom, eps[0], eps[1], num_domains=STYLE_DOMAINS)
        return y.square().mean()

    out.append(("cross_domain_style", {"B": b, "C": c, "H": h, "W": w_}, style, [f, dom, eps]))
    return out


def _fwd_bwd(fn: Callable, inputs: list) -> None:
    inputs[0].grad = None
    fn(*inputs).backward()


def run(device: str, *, quick: bool = False, compiled: bool = True,
        min_run_time: float = 1.0) -> list[dict[str, Any]]:
    """Time every case eagerly and (``compiled``) under ``torch.compile``; return the rows."""
    rows = []
    for op, sizes, fn, inputs in _cases(device, quick):
        impls = {"eager": fn}
        if compiled:
            impls["torch.compile"] = torch.compile(fn)
        ref = fn(*inputs).detach()
        base = None
        for name, f in impls.items():
            _fwd_bwd(f, inputs)  # warm-up (compiles)
            m = measure("f(fn, xs)", {"f": _fwd_bwd, "fn": f, "xs": inputs},
                        label=f"{op} fwd+bwd", sub_label=str(sizes), description=name,
                        min_run_time=min_run_time)
            row = {"op": op, "impl": name, **sizes, **summary(m),
                   "abs_diff_vs_eager": float((f(*inputs).detach() - ref).abs().max())}
            base = base or row["median_s"]
            row["speedup_vs_eager"] = base / row["median_s"]
            rows.append(row)
            print(f"{op:18s} {str(sizes):40s} {name:14s} {1e3 * row['median_s']:9.3f} ms"
                  f"  x{row['speedup_vs_eager']:.2f} vs eager")
    return rows


def main(out: Path | None = None, *, quick: bool = False, compiled: bool = True,
         device: str | None = None) -> Path:
    """Run the suite on CUDA when present (else the CPU); return the path of the JSON written."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows = run(device, quick=quick, compiled=compiled, min_run_time=0.2 if quick else 1.0)
    extra = {"device": device, "quick": quick,
             "cuda": torch.cuda.get_device_name(0) if device == "cuda" else None}
    if out is None:
        return write_results("kernels", rows, extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"suite": "kernels", "meta": metadata(), "rows": rows, **extra},
                              indent=2) + "\n")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--eager-only", action="store_true", help="skip torch.compile")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default: results/)")
    a = ap.parse_args()
    print(main(a.out, quick=a.quick, compiled=not a.eager_only))
