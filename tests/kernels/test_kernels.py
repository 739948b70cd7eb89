"""Fused Triton kernels against their eager references (dgblocks.losses), forward and gradients.

Without a GPU the kernels run in Triton's CPU interpreter (set up by ``conftest.py``), so
these tests check *correctness* only, on small problems; they say nothing about speed.
Skipped when ``triton`` is not installed or the interpreter cannot run a kernel here (the
conftest probes once and gives the reason).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton", exc_type=ImportError)

from dgblocks import ShapeError  # noqa: E402
from dgblocks import kernels as KN  # noqa: E402
from dgblocks.distances import euclidean_distance  # noqa: E402
from dgblocks.kernels._dispatch import kernel_module  # noqa: E402
from dgblocks.losses import entropy as E  # noqa: E402
from dgblocks.losses import triplet as T  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = pytest.mark.usefixtures("fused_kernels")
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _rand(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * scale).to(DEVICE)


# --------------------------------------------------------------------------- neg_entropy


@pytest.mark.parametrize("n, k, block_k, weighted, scale", [
    (3, 37, 16, False, 1.0),     # K not a multiple of the block; 3 steps of online rescaling
    (4, 100, 32, True, 8.0),     # weights, peaked softmax
    (2, 64, 16, True, 30.0),     # K a multiple of the block; very peaked (stability)
    (2, 1000, None, True, 3.0),  # automatic block
])
def test_neg_entropy_rows_match_eager(n, k, block_k, weighted, scale):
    z = _rand(n, k, seed=k, scale=scale).requires_grad_()
    w = torch.rand(k, generator=torch.Generator().manual_seed(1)).to(DEVICE) if weighted else None
    g = _rand(n, seed=7)
    rows = kernel_module("_entropy_triton").neg_entropy_rows(z, w, block_k=block_k)
    (dz,) = torch.autograd.grad(rows, z, g)
    z_ref = z.detach().clone().requires_grad_()
    ref = E.neg_entropy(z_ref, weights=w, reduction="none")
    (dz_ref,) = torch.autograd.grad(ref, z_ref, g)
    torch.testing.assert_close(rows, ref, **TOL)
    torch.testing.assert_close(dz, dz_ref, **TOL)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_neg_entropy_public_matches_eager_with_weight_grads(reduction):
    z = (_rand(5, 40, seed=3, scale=2.0) + 100.0).requires_grad_()  # a large row offset too
    w = torch.rand(40, generator=torch.Generator().manual_seed(2)).to(DEVICE).requires_grad_()
    out = KN.neg_entropy(z, weights=w, reduction=reduction, use_fused=True)
    ref = E.neg_entropy(z, weights=w, reduction=reduction)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    torch.testing.assert_close(out, ref, **TOL)
    grads = torch.autograd.grad(out.sum(), (z, w))
    grads_ref = torch.autograd.grad(ref.sum(), (z, w))
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, **TOL)


def test_neg_entropy_uniform_is_minus_log_k_and_half_inputs():
    out = KN.neg_entropy(torch.zeros(3, 50, device=DEVICE), reduction="none", use_fused=True)
    torch.testing.assert_close(out, torch.full((3,), -torch.log(torch.tensor(50.0)).item(),
                                               device=DEVICE), **TOL)
    for dtype in (torch.float16, torch.bfloat16):
        z = _rand(4, 30, seed=5, scale=3.0).to(dtype).requires_grad_()
        out = KN.neg_entropy(z, use_fused=True)
        ref = E.neg_entropy(z, reduction="mean")
        assert out.dtype == dtype
        torch.testing.assert_close(out.float(), ref.float(), rtol=1e-2, atol=1e-2)
        (dz,) = torch.autograd.grad(out, z)
        assert dz.dtype == dtype and bool(torch.isfinite(dz).all())


def test_neg_entropy_dispatch_and_bad_input():
    z64 = _rand(2, 8, seed=0).double()
    assert KN.fused_available(z64)
    torch.testing.assert_close(KN.neg_entropy(z64), E.neg_entropy(z64))  # float64: eager
    with pytest.raises(ValueError, match="use_fused"):
        KN.neg_entropy(z64, use_fused=True)
    with pytest.raises(ValueError, match="use_fused"):
        KN.neg_entropy(z64.float(), use_fused="yes")
    with pytest.raises(ShapeError, match="weights"):
        KN.neg_entropy(z64.float(), weights=torch.ones(3, device=DEVICE), use_fused=True)
    with pytest.raises(ShapeError, match="logits"):
        KN.neg_entropy(torch.zeros(8, device=DEVICE), use_fused=True)
    with pytest.raises(ValueError, match="block_k"):
        kernel_module("_entropy_triton").neg_entropy_rows(z64.float(), block_k=24)
    with pytest.raises(ValueError, match="t: expected a torch.Tensor"):
        KN.fused_available([1.0])


# --------------------------------------------------------------------------- batch-hard


def _eager_mining(x: torch.Tensor, labels: torch.Tensor):
    return T.batch_hard_mining(euclidean_distance(x), labels)


@pytest.mark.parametrize("b, d, ids, block", [(20, 40, 5, 16), (33, 17, 4, 16), (40, 70, 6, 32)])
def test_batch_hard_indices_match_eager(b, d, ids, block):
    x = _rand(b, d, seed=b)
    labels = torch.randint(0, ids, (b,), generator=torch.Generator().manual_seed(d)).to(DEVICE)
    got = kernel_module("_triplet_triton").batch_hard_indices(x, labels, block_m=block,
                                                              block_n=block, block_d=block)
    for a, e in zip(got, _eager_mining(x, labels)):
        assert a.dtype == e.dtype
        assert torch.equal(a, e)


def test_batch_hard_ties_and_anchor_without_positive():
    # Integer features: every distance is exact, so ties are real ties. Anchor 0 is the origin;
    # samples 1 and 18 (different 16-wide tiles) are its farthest positives, at the same
    # distance; 2 and 17 its nearest negatives (copies of it: both at sqrt(eps)). Label 9
    # occurs once (sample 5 has no positive).
    x = torch.randint(-3, 4, (24, 5), generator=torch.Generator().manual_seed(0)).float()
    x[0], x[2], x[17] = 0.0, 0.0, 0.0
    x[1], x[18] = 5.0, 5.0
    labels = torch.arange(24) % 4
    labels[[0, 1, 18]] = 0
    labels[[2, 17]] = 1
    labels[5] = 9
    x, labels = x.to(DEVICE), labels.to(DEVICE)
    got = kernel_module("_triplet_triton").batch_hard_indices(x, labels, block_m=16, block_n=16,
                                                              block_d=16)
    ref = _eager_mining(x, labels)
    for a, e in zip(got, ref):
        assert torch.equal(a, e)
    assert int(got[0][0]) == 1 and int(got[1][0]) == 2  # ties go to the first index
    assert not bool(got[2][5]) and int(got[0][5]) == 0  # no positive: invalid, index 0
    r = KN.batch_hard(x, labels, use_fused=True)
    dist = euclidean_distance(x)
    assert torch.equal(r.d_ap, dist[torch.arange(24), r.pos_idx])  # exact on integer features
    assert torch.equal(r.d_an, dist[torch.arange(24), r.neg_idx])


@pytest.mark.parametrize("soft_margin", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_triplet_loss_matches_eager_with_gradients(reduction, soft_margin):
    x = _rand(24, 12, seed=11, scale=0.3).requires_grad_()
    labels = torch.randint(0, 5, (24,), generator=torch.Generator().manual_seed(4)).to(DEVICE)
    labels[3] = 7  # an anchor without a positive
    out = KN.triplet_loss(x, labels, margin=0.3, soft_margin=soft_margin, reduction=reduction,
                          use_fused=True)
    ref = T.triplet_loss(x, labels, margin=0.3, soft_margin=soft_margin, reduction=reduction)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    torch.testing.assert_close(out, ref, **TOL)
    (gx,) = torch.autograd.grad(out.sum(), x)
    (gx_ref,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(gx, gx_ref, **TOL)
    assert float(gx.abs().sum()) > 0  # the comparison is not between two zero gradients


def test_triplet_degenerate_batches_are_attached_zeros():
    x = _rand(6, 4, seed=2).requires_grad_()
    for labels in (torch.zeros(6, dtype=torch.long), torch.arange(6)):  # no neg / no pos
        out = KN.triplet_loss(x, labels.to(DEVICE), use_fused=True)
        assert float(out.detach()) == 0.0 and out.requires_grad
        (g,) = torch.autograd.grad(out, x)
        assert torch.equal(g, torch.zeros_like(g))
    one = KN.triplet_loss(x[:1], torch.zeros(1, dtype=torch.long, device=DEVICE), use_fused=True)
    assert float(one.detach()) == 0.0 and one.requires_grad


def test_batch_hard_half_inputs_and_bad_input():
    x = _rand(10, 8, seed=9)
    labels = (torch.arange(10) % 3).to(DEVICE)
    r16 = KN.batch_hard(x.half(), labels, use_fused=True)
    ref = _eager_mining(x.half().float(), labels)
    assert r16.d_ap.dtype == torch.float32
    assert torch.equal(r16.pos_idx, ref[0]) and torch.equal(r16.neg_idx, ref[1])
    with pytest.raises(ShapeError, match="labels"):
        KN.batch_hard(x, labels[:5], use_fused=True)
    with pytest.raises(ValueError, match="block_m"):
        kernel_module("_triplet_triton").batch_hard_indices(x, labels, block_m=8)
    with pytest.raises(ValueError, match="margin"):
        KN.triplet_loss(x, labels, margin=-1.0, use_fused=True)


# --------------------------------------------------------------------------- CUDA, ReID sizes


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_reid_sizes_match_eager():
    z = _rand(64, 18_530, seed=0, scale=4.0).requires_grad_()
    w = torch.rand(18_530, device=DEVICE)
    out, ref = KN.neg_entropy(z, weights=w), E.neg_entropy(z, weights=w)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(torch.autograd.grad(out, z)[0], torch.autograd.grad(ref, z)[0],
                               **TOL)
    x = _rand(256, 2048, seed=1).requires_grad_()
    labels = (torch.arange(256) // 4).to(DEVICE)
    got = KN.batch_hard(x, labels)
    ref_idx = _eager_mining(x.detach(), labels)
    agree = (got.pos_idx == ref_idx[0]).float().mean() * (got.neg_idx == ref_idx[1]).float().mean()
    assert float(agree) > 0.99  # near-ties may resolve differently under another summation order
    out = KN.triplet_loss(x, labels)
    torch.testing.assert_close(out, T.triplet_loss(x, labels), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- compiles for sm_90


@pytest.mark.slow
def test_kernels_compile_ahead_of_time_for_sm90():
    """The kernels compile to a cubin for an H100 (sm_90) without a GPU: real Triton, not only
    the interpreter's Python semantics. In a fresh process (see ``aot_compile.py``). A compile
    is not a run: this says nothing of speed."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-m", "tests.kernels.aot_compile"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("cubin") == 4, res.stdout
