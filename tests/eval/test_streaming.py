"""rank_features against evaluate_ranking of the full distance matrix: equal field for field."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dgblocks.eval.streaming as S
from dgblocks import ShapeError, ValueRangeError
from dgblocks.distances import RowDistances, pairwise_distance
from dgblocks.eval import evaluate_ranking, rank_features
from tests._helpers import gen, seeds


def assert_same(a, b):
    """Every field of two RankingResults, exactly."""
    assert np.array_equal(a.cmc, b.cmc), np.abs(a.cmc - b.cmc).max()
    assert a.mAP == b.mAP and a.mINP == b.mINP
    assert (a.num_valid_queries, a.num_queries) == (b.num_valid_queries, b.num_queries)
    assert np.array_equal(a.ap, b.ap) and np.array_equal(a.valid, b.valid)


def full(qf, gf, qp, gp, qc, gc, metric="euclidean", **kw):
    return evaluate_ranking(pairwise_distance(qf, gf, metric=metric), qp, gp, qc, gc, **kw)


def tied_problem(seed, q, g, d, ids, cams, dtype=torch.float32):
    """Integer-valued features in [-2, 2] (many exact ties), repeated ids, few cameras, and
    query ids beyond the gallery's (queries without a valid match)."""
    r = gen(seed)
    qf = torch.randint(-2, 3, (q, d), generator=r).to(dtype)
    gf = torch.randint(-2, 3, (g, d), generator=r).to(dtype)
    qp, gp = torch.randint(0, ids + 2, (q,), generator=r), torch.randint(0, ids, (g,), generator=r)
    qc, gc = torch.randint(0, cams, (q,), generator=r), torch.randint(0, cams, (g,), generator=r)
    return qf, gf, qp, gp, qc, gc


def clustered_problem(seed, q=300, g=3000, d=64, ids=40, cams=4, noise=2.0):
    """Noisy identity clusters: a realistic ranking with float distances (no exact ties)."""
    r = gen(seed)
    centres = torch.randn(ids, d, generator=r)
    qp, gp = torch.randint(0, ids, (q,), generator=r), torch.randint(0, ids, (g,), generator=r)
    qc, gc = torch.randint(0, cams, (q,), generator=r), torch.randint(0, cams, (g,), generator=r)
    qf = centres[qp] + noise * torch.randn(q, d, generator=r)
    gf = centres[gp] + noise * torch.randn(g, d, generator=r)
    return qf, gf, qp, gp, qc, gc


@given(seed=seeds, q=st.integers(1, 150), g=st.integers(1, 60), d=st.integers(1, 5),
       ids=st.integers(1, 6), cams=st.integers(1, 3), chunk=st.integers(1, 160),
       metric=st.sampled_from(["euclidean", "sqeuclidean", "cosine"]),
       ap_mode=st.sampled_from(["step", "trapezoid"]),
       invalid_query=st.sampled_from(["skip", "zero"]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_equals_full_matrix_on_tied_problems(seed, q, g, d, ids, cams, chunk, metric, ap_mode,
                                             invalid_query, dtype):
    prob = tied_problem(seed, q, g, d, ids, cams, dtype)
    if metric == "cosine":  # unit rows of small integers are rounded: +-1 entries keep the
        prob = (*(torch.where(f >= 0, 1.0, -1.0).to(dtype) for f in prob[:2]), *prob[2:])
        # dot products exact whatever order a BLAS kernel sums them in (ties stay ties)
    kw = dict(metric=metric, max_rank=8, ap_mode=ap_mode, invalid_query=invalid_query)
    try:
        ref = full(*prob, **kw)
    except ValueRangeError as e:  # no query with a valid match: both refuse, naming g_pids
        with pytest.raises(ValueRangeError, match="g_pids"):
            rank_features(*prob, chunk_size=chunk, **kw)
        assert str(e).startswith("g_pids")
        return
    assert_same(rank_features(*prob, chunk_size=chunk, **kw), ref)


@given(seed=seeds, q=st.integers(1, 100), chunk=st.integers(1, 110), draws=st.integers(1, 3))
def test_single_gallery_shot_equals_full_matrix(seed, q, chunk, draws):
    prob = tied_problem(seed, q, 40, 3, 5, 2)
    qf, gf, qp, gp, qc, gc = prob
    qp[0], qc[0], gc[0] = gp[0], 0, 1  # query 0 matches gallery item 0 from another camera
    g1, g2 = gen(seed), gen(seed)
    kw = dict(max_rank=6, single_gallery_shot=True, num_draws=draws)
    assert_same(rank_features(*prob, chunk_size=chunk, generator=g1, **kw),
                full(*prob, generator=g2, **kw))
    assert torch.equal(g1.get_state(), g2.get_state())  # the caller's generator ends alike


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 100, 299, None])
def test_equals_full_matrix_on_clustered_features(metric, chunk):
    # float distances from a matrix product: blocks of few rows would sum in another order
    # (MKL, 2 threads) and break near-ties; a block has MIN_BLOCK_ROWS rows at least
    prob = clustered_problem(3)
    ref = full(*prob, metric=metric)
    assert 0.1 < ref.mAP < 0.9  # a realistic ranking, neither trivial nor random
    assert_same(rank_features(*prob, metric=metric, chunk_size=chunk), ref)


def test_clustered_single_gallery_shot_and_block_bytes():
    prob = clustered_problem(4, q=100, g=600)
    ref = full(*prob, single_gallery_shot=True, num_draws=2, seed=5)
    for kw in (dict(chunk_size=7), dict(block_bytes=600 * 4 * 70), dict(chunk_size=100)):
        assert_same(rank_features(*prob, single_gallery_shot=True, num_draws=2, seed=5, **kw),
                    ref)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_row_distances_equal_pairwise_distance(metric, dtype):
    x, y = (t.to(dtype) for t in clustered_problem(11, q=70, g=90, d=12)[:2])
    got, want = RowDistances(y, metric=metric)(x), pairwise_distance(x, y, metric=metric)
    assert got.dtype == want.dtype and torch.equal(got, want)  # half Euclidean: float32
    with pytest.raises(ShapeError, match="x"):
        RowDistances(y, metric=metric)(x[:, :3])


def test_row_distances_gallery_norms_in_slices():
    x, y = clustered_problem(12, q=70, g=9000, d=5)[:2]  # norms in slices of 4,096 rows
    assert torch.equal(RowDistances(y)(x), pairwise_distance(x, y))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_features(dtype):
    prob = clustered_problem(6, q=80, g=400, d=16)
    prob = (prob[0].to(dtype), prob[1].to(dtype), *prob[2:])
    assert_same(rank_features(*prob, chunk_size=3), full(*prob))


def test_numpy_features_and_labels():
    prob = clustered_problem(7, q=40, g=200, d=8)
    npy = [x.numpy() for x in prob]
    assert_same(rank_features(*npy, chunk_size=5), full(*prob))


def test_blocks_cover_every_query_once():
    for num_q in (1, 5, 63, 64, 65, 130, 200):
        for rows in (1, 64, 65, 100, 500):
            seen = []
            for b, s, e in S._blocks(num_q, max(rows, min(num_q, S.MIN_BLOCK_ROWS))):
                assert b <= s < e <= num_q and e - b >= min(num_q, S.MIN_BLOCK_ROWS)
                seen += range(s, e)
            assert seen == list(range(num_q))


def test_identical_features_and_zero_dimensions():
    f = torch.randint(0, 3, (70, 4)).float()
    p, c = torch.arange(70) % 9, torch.arange(70) % 4
    assert_same(rank_features(f, f, p, p, c, c, chunk_size=10), full(f, f, p, p, c, c))
    z = torch.zeros(5, 0)  # no feature dimension: every distance 0, all ties
    p5 = torch.tensor([0, 0, 1, 1, 2])
    c5 = torch.tensor([0, 1, 0, 1, 0])
    assert_same(rank_features(z, z, p5, p5, c5, c5), full(z, z, p5, p5, c5, c5))


def test_negative_ids_are_labels():
    prob = clustered_problem(8, q=60, g=300, d=8)
    neg = (*prob[:2], prob[2] - 100, prob[3] - 100, prob[4] - 7, prob[5] - 7)
    assert_same(rank_features(*neg), rank_features(*prob))


def test_bad_input_names_the_argument():
    qf, gf, qp, gp, qc, gc = clustered_problem(9, q=10, g=40, d=4)
    with pytest.raises(ShapeError, match="gallery_features"):
        rank_features(qf, gf[:, :3], qp, gp, qc, gc)
    with pytest.raises(ShapeError, match="query_features"):
        rank_features(qf[:0], gf, qp[:0], gp, qc[:0], gc)
    bad = qf.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueRangeError, match="query_features"):
        rank_features(bad, gf, qp, gp, qc, gc)
    with pytest.raises(ValueRangeError, match="query_features"):  # distances overflow to NaN
        rank_features(qf * 1e30, gf * 1e30, qp, gp, qc, gc)
    with pytest.raises(ShapeError, match="g_camids"):
        rank_features(qf, gf, qp, gp, qc, gc[:-1])
    with pytest.raises(ValueRangeError, match="chunk_size"):
        rank_features(qf, gf, qp, gp, qc, gc, chunk_size=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu_on_tied_problems():
    # integer-valued features: exact distances whatever the kernel's summation order
    prob = tied_problem(1, 300, 500, 6, 30, 3)
    cuda = [x.cuda() for x in prob]
    for chunk in (1, 100, None):
        assert_same(rank_features(*cuda, chunk_size=chunk), full(*prob))
