"""Compile every Triton kernel of dgblocks ahead of time for an H100 (sm_90), without a GPU.

Run in a fresh process (``python -m tests.kernels.aot_compile``) with ``TRITON_INTERPRET``
unset: Triton's interpreter patches ``triton.language`` in a process where it has run, so the
compiler cannot run there afterwards. Prints one line per kernel and its cubin size; exits
non-zero when a kernel does not compile. A compile is not a run: this says nothing of speed.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("aot_compile: unset TRITON_INTERPRET first", file=sys.stderr)
        return 2
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    from dgblocks.kernels import _entropy_triton as ent
    from dgblocks.kernels import _triplet_triton as tri

    f32 = {n: "*fp32" for n in ("w_ptr", "loss_ptr", "lse_ptr", "wbar_ptr", "g_ptr")}
    cases = [
        ("neg_entropy_fwd bf16 weighted", ent._neg_entropy_fwd,
         {"z_ptr": "*bf16", **f32, "K": "i32", "stride_z": "i32"},
         {"HAS_W": True, "BLOCK_K": 4096}),
        ("neg_entropy_fwd fp32", ent._neg_entropy_fwd,
         {"z_ptr": "*fp32", **f32, "K": "i32", "stride_z": "i32"},
         {"HAS_W": False, "BLOCK_K": 4096}),
        ("neg_entropy_bwd fp16 weighted", ent._neg_entropy_bwd,
         {"z_ptr": "*fp16", **f32, "dz_ptr": "*fp16", "K": "i32", "stride_z": "i32",
          "stride_dz": "i32"}, {"HAS_W": True, "BLOCK_K": 4096}),
        ("batch_hard_fwd fp32", tri._batch_hard_fwd,
         {"x_ptr": "*fp32", "sq_ptr": "*fp32", "lab_ptr": "*i64", "pos_ptr": "*i64",
          "neg_ptr": "*i64", "valid_ptr": "*i8", "B": "i32", "D": "i32", "stride_x": "i32",
          "eps": "fp32"}, {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_D": 32}),
    ]
    failed = 0
    for label, kernel, sig, constexprs in cases:
        full = {p: sig.get(p, "constexpr") for p in kernel.arg_names}
        try:
            out = compile(ASTSource(fn=kernel, signature=full, constexprs=constexprs),
                          target=GPUTarget("cuda", 90, 32))
            print(f"{label}: cubin {len(out.asm['cubin'])} bytes")
        except Exception as exc:  # report every kernel, then fail
            failed += 1
            print(f"{label}: FAILED {type(exc).__name__}: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
