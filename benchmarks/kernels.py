"""Fused Triton kernels vs eager PyTorch vs ``torch.compile`` (eager), at ReID sizes, on CUDA.

Forward + backward of the public API, each beside its references in the same run:

- ``neg_entropy`` on logits (B, 18,530) (MSMT17+ID-pool-sized classifier), with CaNE-style
  per-class weights: ``dgblocks.kernels.neg_entropy`` (fused) vs
  ``dgblocks.losses.entropy.neg_entropy`` (eager) vs ``torch.compile`` of the eager function;
- batch-hard triplet loss on features (B, 2048), 4 images per identity:
  ``dgblocks.kernels.triplet_loss`` (fused mining) vs ``dgblocks.functional.triplet_loss`` vs its
  ``torch.compile``;

for B = 64 and 256, with the agreement of the fused and eager values. Writes
``benchmarks/results/kernels.json``. Without a CUDA device (or without ``triton``) nothing is
timed: the JSON says ``{"cuda": null, "skipped": "no CUDA GPU"}`` and the script exits 0.
No GPU timings exist yet: the kernels were written and verified (Triton's CPU interpreter)
on a machine without a GPU.

    python -m benchmarks.kernels
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from benchmarks._meta import RESULTS, measure, metadata, summary, write_results
from dgblocks import kernels as KN
from dgblocks.losses import entropy as E
from dgblocks.losses import triplet as T

K, D, BATCHES, PER_ID = 18_530, 2048, (64, 256), 4


def _fwd_bwd(fn: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> None:
    x.grad = None
    fn(x, *args, **kwargs).backward()


def _entropy_rows(b: int, compiled: Any) -> list[dict[str, Any]]:
    g = torch.Generator(device="cuda").manual_seed(b)
    z = (4 * torch.randn(b, K, device="cuda", generator=g)).requires_grad_()
    w = torch.rand(K, device="cuda", generator=g)
    impls = {"fused (triton)": lambda t: KN.neg_entropy(t, weights=w, use_fused=True),
             "eager": lambda t: E.neg_entropy(t, weights=w),
             "torch.compile(eager)": lambda t: compiled(t, weights=w)}
    ref = E.neg_entropy(z, weights=w)
    rows = []
    for name, fn in impls.items():
        _fwd_bwd(fn, z)  # warm-up (compiles)
        m = measure("f(fn, z)", {"f": _fwd_bwd, "fn": fn, "z": z}, label="neg_entropy fwd+bwd",
                    sub_label=f"B={b} K={K}", description=name)
        rows.append({"op": "neg_entropy", "impl": name, "B": b, "K": K, **summary(m),
                     "abs_diff_vs_eager": float((fn(z) - ref).abs().max())})
    return rows


def _triplet_rows(b: int, compiled: Any) -> list[dict[str, Any]]:
    g = torch.Generator(device="cuda").manual_seed(b)
    x = torch.randn(b, D, device="cuda", generator=g).requires_grad_()
    labels = torch.arange(b, device="cuda") // PER_ID
    impls = {"fused (triton)": lambda t: KN.triplet_loss(t, labels, use_fused=True),
             "eager": lambda t: T.triplet_loss(t, labels),
             "torch.compile(eager)": lambda t: compiled(t, labels)}
    ref = T.triplet_loss(x, labels)
    fused_idx = KN.batch_hard(x, labels, use_fused=True)
    eager_idx = KN.batch_hard(x, labels, use_fused=False)
    same = bool(torch.equal(fused_idx.pos_idx, eager_idx.pos_idx)
                and torch.equal(fused_idx.neg_idx, eager_idx.neg_idx))
    rows = []
    for name, fn in impls.items():
        _fwd_bwd(fn, x)
        m = measure("f(fn, x)", {"f": _fwd_bwd, "fn": fn, "x": x}, label="triplet fwd+bwd",
                    sub_label=f"B={b} D={D}", description=name)
        rows.append({"op": "triplet_loss", "impl": name, "B": b, "D": D, **summary(m),
                     "abs_diff_vs_eager": float((fn(x) - ref).abs().max()),
                     "mined_indices_equal_eager": same})
    return rows


def skipped_payload(reason: str) -> dict[str, Any]:
    """The JSON written when nothing can be timed here."""
    return {"suite": "kernels", "cuda": None, "skipped": reason, "meta": metadata(),
            "triton": _triton_version() if KN.triton_available() else None, "rows": []}


def main(out: Path | None = None) -> Path:
    """Run the suite (or record why not); return the path of the JSON written."""
    path = out or RESULTS / "kernels.json"
    reason = None
    if not torch.cuda.is_available():
        reason = "no CUDA GPU"
    elif not KN.fused_available(torch.empty(0, device="cuda")):
        reason = "triton not installed"
    if reason is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(skipped_payload(reason), indent=2) + "\n")
        print(f"benchmarks.kernels: skipped ({reason}); wrote {path}")
        return path
    ent_c = torch.compile(E.neg_entropy)
    tri_c = torch.compile(T.triplet_loss)
    rows: list[dict[str, Any]] = []
    for b in BATCHES:
        rows += _entropy_rows(b, ent_c)
        rows += _triplet_rows(b, tri_c)
    for r in rows:
        base = next(x for x in rows if x["op"] == r["op"] and x["B"] == r["B"]
                    and x["impl"] == "eager")
        r["speedup_vs_eager"] = base["median_s"] / r["median_s"]
        print(f"{r['op']:13s} B={r['B']:4d} {r['impl']:22s} {1e3 * r['median_s']:8.3f} ms"
              f"  x{r['speedup_vs_eager']:.2f} vs eager")
    written = write_results("kernels", rows, {"cuda": torch.cuda.get_device_name(0),
                                              "triton": _triton_version()})
    if out is not None and out != written:
        out.write_text(written.read_text())
        return out
    return written


def _triton_version() -> str:
    import triton

    return str(triton.__version__)


if __name__ == "__main__":
    main()
