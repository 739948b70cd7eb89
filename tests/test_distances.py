import pytest
import torch
from hypothesis import given

import dgblocks.functional as DF
from tests._helpers import batch, randn, random_rotation, scales, seeds, small


def naive(x, y, metric):
    out = torch.empty(len(x), len(y), dtype=torch.float64)
    for i in range(len(x)):
        for j in range(len(y)):
            a, b = x[i].double(), y[j].double()
            if metric == "euclidean":
                out[i, j] = (a - b).norm()
            elif metric == "sqeuclidean":
                out[i, j] = (a - b).pow(2).sum()
            else:
                out[i, j] = 1 - (a @ b) / (a.norm() * b.norm())
    return out


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@given(seed=seeds, n=batch, m=batch, d=small)
def test_matches_naive(metric, seed, n, m, d):
    x, y = randn(seed, n, d), randn(seed + 1, m, d)
    torch.testing.assert_close(DF.pairwise_distance(x, y, metric=metric), naive(x, y, metric),
                               atol=1e-6, rtol=1e-6)


@given(seed=seeds, n=batch, d=small, scale=scales)
def test_prop_nonnegative_symmetric_zero_diagonal(seed, n, d, scale):
    x = randn(seed, n, d, scale=scale)
    d2 = DF.squared_euclidean_distance(x)
    assert (d2 >= 0).all()
    torch.testing.assert_close(d2, d2.t())
    assert (d2.diagonal() == 0).all()


@given(seed=seeds, n=batch, d=small)
def test_prop_euclidean_rotation_invariant(seed, n, d):
    x = randn(seed, n, d)
    r = random_rotation(seed + 1, d)
    torch.testing.assert_close(DF.euclidean_distance(x @ r), DF.euclidean_distance(x))


@given(seed=seeds, n=batch, d=small)
def test_prop_cosine_range_and_scale_invariance(seed, n, d):
    x = randn(seed, n, d)
    s = DF.cosine_similarity_matrix(x)
    assert (s.abs() <= 1).all()
    scale = randn(seed + 1, n, 1).abs() + 0.1
    torch.testing.assert_close(DF.cosine_similarity_matrix(x * scale), s)
    assert (DF.cosine_distance(x) >= 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_close_to_float64(dtype):
    x = randn(0, 32, 64, scale=10.0)
    ref = naive(x, x, "euclidean")
    got = DF.euclidean_distance(x.to(dtype))
    assert got.dtype == torch.float32  # unbounded: returned in float32 for half inputs
    torch.testing.assert_close(got.double(), ref, atol=0.5, rtol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_half_precision_finite_where_float32_is(dtype, metric):
    # 64-D features of scale 40: squared distances near 2e5, beyond float16's 65504 (fp16
    # results were inf in 56 of 64 entries before they were returned in float32)
    x = randn(1, 8, 64, scale=40.0).to(dtype)
    y = randn(2, 5, 64, scale=40.0).to(dtype)
    for got, ref in ((DF.pairwise_distance(x, metric=metric),
                      DF.pairwise_distance(x.float(), metric=metric)),
                     (DF.pairwise_distance(x, y, metric=metric),
                      DF.pairwise_distance(x.float(), y.float(), metric=metric))):
        assert torch.isfinite(ref).all() and torch.isfinite(got).all(), metric
        assert got.dtype == (dtype if metric == "cosine" else torch.float32)
        torch.testing.assert_close(got.float(), ref, rtol=2e-2, atol=2e-2 * float(ref.abs().max()))


@pytest.mark.parametrize("fn", [DF.euclidean_distance, DF.squared_euclidean_distance,
                                DF.cosine_distance, DF.cosine_similarity_matrix])
def test_half_precision_gradient_reaches_the_input(fn):
    x = (randn(3, 6, 16, scale=40.0)).half().requires_grad_()
    fn(x, x.detach()[:4] + 1).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float16
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("fn", [DF.euclidean_distance, DF.cosine_distance,
                                DF.cosine_similarity_matrix])
@pytest.mark.parametrize("eps", [-1.0, float("inf"), float("nan"), 1e300, "x"])
def test_eps_must_be_a_finite_representable_floor(fn, eps):
    # eps=inf gave cosine distance 1 everywhere (and inf Euclidean distances); eps=-1 was taken
    with pytest.raises(ValueError, match="^eps: expected"):
        fn(torch.randn(3, 4), eps=eps)


def test_gradient_finite_at_zero_distance():
    x = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    DF.euclidean_distance(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    y = randn(1, 4, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: DF.euclidean_distance(a, randn(2, 5, 3)), (y,))


def test_bad_input():
    with pytest.raises(ValueError, match="y: expected shape \\(M, D\\) with D=4"):
        DF.pairwise_distance(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="x: expected 2-D"):
        DF.euclidean_distance(torch.zeros(4))
    with pytest.raises(ValueError, match="metric"):
        DF.pairwise_distance(torch.zeros(2, 4), metric="manhattan")


def test_float32_inside_autocast():
    x = randn(3, 16, 32, dtype=torch.float32) * 30
    ref = DF.squared_euclidean_distance(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = DF.squared_euclidean_distance(x)
        sim = DF.cosine_similarity_matrix(x)
    assert got.dtype == torch.float32 and sim.dtype == torch.float32
    torch.testing.assert_close(got, ref)
