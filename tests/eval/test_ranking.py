"""evaluate_ranking against a per-query reference loop (the Market-1501 rules)."""

import numpy as np
import pytest
import torch
from hypothesis import given

from dgblocks import ShapeError, ValueRangeError
from dgblocks.eval import cmc_curve, evaluate_ranking
from tests._helpers import seeds


def reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, ap_mode="step",
              invalid_query="skip"):
    """Straightforward per-query loop; ties rank the non-match first (pessimistic)."""
    distmat = np.asarray(distmat, dtype=np.float64)
    num_q = distmat.shape[0]
    cmcs, aps, inps, nvalid = [], [], [], 0
    for i in range(num_q):
        keep = ~((g_pids == q_pids[i]) & (g_camids == q_camids[i]))
        d = distmat[i][keep]
        match = (g_pids[keep] == q_pids[i])
        order = np.lexsort((match.astype(int), d))
        m = match[order]
        if not m.any():
            if invalid_query == "zero":
                cmcs.append(np.zeros(max_rank))
                aps.append(0.0)
                inps.append(0.0)
            continue
        nvalid += 1
        c = np.zeros(max_rank)
        first = np.nonzero(m)[0][0]
        if first < max_rank:
            c[first:] = 1
        cmcs.append(c)
        n = m.sum()
        ap, hits, old_p, old_r = 0.0, 0, 1.0, 0.0
        for j, is_m in enumerate(m):
            if is_m:
                hits += 1
            p = hits / (j + 1)
            if is_m:
                if ap_mode == "step":
                    ap += p / n
                else:
                    ap += (hits / n - old_r) * (old_p + p) / 2
            old_p, old_r = p, hits / n
        aps.append(ap)
        inps.append(n / (np.nonzero(m)[0][-1] + 1))
    return np.mean(cmcs, 0), float(np.mean(aps)), float(np.mean(inps)), nvalid


def random_problem(seed, q=12, g=40, ids=6, cams=3):
    rng = np.random.default_rng(seed)
    d = rng.random((q, g))
    qp, gp = rng.integers(0, ids + 2, q), rng.integers(0, ids, g)  # ids >= ids: invalid
    qc, gc = rng.integers(0, cams, q), rng.integers(0, cams, g)
    gp[0], qp[0], qc[0], gc[0] = qp[0] % ids, qp[0] % ids, 0, 1  # at least one valid query
    return d, qp, gp, qc, gc


@pytest.mark.parametrize("ap_mode", ["step", "trapezoid"])
@pytest.mark.parametrize("invalid_query", ["skip", "zero"])
@given(seed=seeds)
def test_matches_reference(ap_mode, invalid_query, seed):
    d, qp, gp, qc, gc = random_problem(seed)
    r = evaluate_ranking(d, qp, gp, qc, gc, max_rank=20, ap_mode=ap_mode,
                         invalid_query=invalid_query, chunk_size=5)
    cmc, mAP, mINP, nvalid = reference(d, qp, gp, qc, gc, 20, ap_mode, invalid_query)
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-6)
    assert abs(r.mAP - mAP) < 1e-6 and abs(r.mINP - mINP) < 1e-6
    assert r.num_valid_queries == nvalid


def test_ties_are_pessimistic_like_reference():
    d = np.array([[0.5, 0.5, 0.5, 0.1]])
    r = evaluate_ranking(d, [1], [1, 2, 2, 1], [0], [1, 1, 1, 0])  # last item is junk
    cmc, mAP, _, _ = reference(d, np.array([1]), np.array([1, 2, 2, 1]), np.array([0]),
                               np.array([1, 1, 1, 0]))
    assert r.mAP == pytest.approx(mAP) == pytest.approx(1 / 3)


@pytest.mark.parametrize("rank", [1, 2, 5, 9])
def test_single_match_step_and_trapezoid(rank):
    g = 10
    d = torch.arange(g, dtype=torch.float64).unsqueeze(0)
    gp = torch.full((g,), 7)
    gp[rank - 1] = 3
    args = (d, torch.tensor([3]), gp, torch.tensor([0]), torch.ones(g, dtype=torch.long))
    assert evaluate_ranking(*args, ap_mode="step").mAP == pytest.approx(1 / rank)
    trap = evaluate_ranking(*args, ap_mode="trapezoid").mAP
    assert trap == pytest.approx(1.0 if rank == 1 else 1 / (2 * rank))
    assert evaluate_ranking(*args).mINP == pytest.approx(1 / rank)


def test_same_camera_match_is_junk():
    # the closest item shares identity and camera: ignored, the true match is then rank 1
    d = torch.tensor([[0.0, 0.5, 0.2]])
    r = evaluate_ranking(d, [1], [1, 1, 2], [0], [0, 1, 1])
    assert r.mAP == pytest.approx(0.5) and r.cmc[1] == 1.0


def test_numpy_and_torch_agree_and_monotone_invariance():
    d, qp, gp, qc, gc = random_problem(3)
    a = evaluate_ranking(d, qp, gp, qc, gc)
    b = evaluate_ranking(torch.from_numpy(d).float(), torch.from_numpy(qp), torch.from_numpy(gp),
                         torch.from_numpy(qc), torch.from_numpy(gc))
    c = evaluate_ranking(np.exp(3 * d), qp, gp, qc, gc)
    np.testing.assert_allclose(a.cmc, b.cmc)
    assert a.mAP == pytest.approx(b.mAP) == pytest.approx(c.mAP)


@given(seed=seeds)
def test_gallery_permutation_invariant(seed):
    d, qp, gp, qc, gc = random_problem(seed)
    perm = np.random.default_rng(seed).permutation(d.shape[1])
    a = evaluate_ranking(d, qp, gp, qc, gc)
    b = evaluate_ranking(d[:, perm], qp, gp[perm], qc, gc[perm])
    np.testing.assert_allclose(a.cmc, b.cmc)
    assert a.mAP == pytest.approx(b.mAP)
    assert np.all(np.diff(a.cmc) >= 0) and 0 <= a.mINP <= 1 and 0 <= a.mAP <= 1


def test_single_gallery_shot_keeps_one_per_identity():
    # identity 1 has two gallery images at ranks 2 and 3: mAP on the full gallery
    # (1/2 + 2/3) / 2; each draw keeps one of them, always at rank 2
    d = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    r = evaluate_ranking(d, [1], [2, 1, 1, 3], [0], [1, 1, 1, 1], single_gallery_shot=True,
                         seed=0)
    assert r.mAP == pytest.approx(7 / 12)
    assert r.cmc[0] == 0 and r.cmc[1] == 1


def test_max_rank_beyond_gallery_and_curve():
    r = evaluate_ranking(torch.tensor([[0.2, 0.1]]), [0], [0, 1], [0], [1, 1], max_rank=5)
    ranks, values = cmc_curve(r)
    assert ranks.tolist() == [1, 2, 3, 4, 5] and values.tolist() == [0, 100, 100, 100, 100]
    assert r.as_dict()["R1"] == 0 and r.rank(2) == 1


def test_bad_input():
    with pytest.raises(ShapeError, match="q_pids"):
        evaluate_ranking(torch.zeros(2, 3), [0], [0, 1, 2], [0, 1], [0, 1, 2])
    with pytest.raises(ShapeError, match="distmat"):
        evaluate_ranking(torch.zeros(3), [0], [0, 1, 2], [0], [0, 1, 2])
    with pytest.raises(ValueRangeError, match="ap_mode"):
        evaluate_ranking(torch.zeros(1, 1), [0], [0], [0], [1], ap_mode="area")
    with pytest.raises(ValueRangeError, match="g_pids"):  # no valid query at all
        evaluate_ranking(torch.zeros(1, 1), [0], [1], [0], [1])
    with pytest.raises(ValueRangeError, match="q_pids"):
        evaluate_ranking(torch.zeros(1, 1), torch.zeros(1), [0], [0], [1])
    with pytest.raises(ValueRangeError, match="distmat"):
        evaluate_ranking(torch.full((1, 1), float("nan")), [0], [0], [0], [1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_distances(dtype):
    d, qp, gp, qc, gc = random_problem(5)
    a = evaluate_ranking(torch.from_numpy(d).to(dtype), qp, gp, qc, gc)
    assert np.isfinite(a.mAP) and 0 <= a.mAP <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    d, qp, gp, qc, gc = random_problem(7, q=50, g=300)
    a = evaluate_ranking(d, qp, gp, qc, gc)
    t = lambda x: torch.as_tensor(x).cuda()  # noqa: E731
    b = evaluate_ranking(t(d), t(qp), t(gp), t(qc), t(gc))
    np.testing.assert_allclose(a.cmc, b.cmc)
    assert a.mAP == pytest.approx(b.mAP)


@pytest.mark.parametrize("cells", [0, 1, 3, 512])
def test_grouped_kernel_agrees_with_masked(cells):
    from dgblocks.eval._ranking_impl import GalleryIndex, grouped_ranks, masked_ranks

    d, qp, gp, qc, gc = (torch.as_tensor(x) for x in random_problem(11, q=30, g=200, ids=10))
    r1, p1, n1 = grouped_ranks(d, *GalleryIndex(gp).slots(qp), qc, gc, cells=cells)
    same = qp[:, None] == gp[None, :]
    valid = ~(same & (qc[:, None] == gc[None, :]))
    r2, p2, n2 = masked_ranks(d, same & valid, valid & ~same)
    assert torch.equal(n1, n2)
    w = int(n1.max())
    assert torch.equal(p1[:, :w], p2[:, :w])
    assert torch.equal(torch.where(p1[:, :w], r1[:, :w], 0), torch.where(p2[:, :w], r2[:, :w], 0))


@pytest.mark.parametrize("cells", [0, 2, 512])
@pytest.mark.parametrize("kind", ["plain", "ties", "inf"])
def test_torch_and_numpy_kernels_agree(cells, kind):
    # the CPU runs the NumPy kernel; the torch one (other devices) must give the same counts
    from dgblocks.eval import _ranking_impl as K

    d, qp, gp, qc, gc = (torch.as_tensor(x) for x in random_problem(5, q=20, g=150, ids=8))
    if kind == "ties":
        d = torch.round(d * 5) / 5
    elif kind == "inf":
        d[d > 0.8] = float("inf")
    gidx, same = K.GalleryIndex(gp).slots(qp)
    is_match = same & (gc[gidx] != qc[:, None])
    n = is_match.sum(1)
    md = torch.where(is_match, d.gather(1, gidx), float("inf")).sort(1).values
    last = torch.where(n > 0, md.gather(1, (n - 1).clamp_min(0)[:, None]).squeeze(1),
                       -float("inf"))[:, None]
    valid = torch.arange(md.shape[1])[None] < n[:, None]
    c1 = K._counts_torch(d, md, valid, last, gidx, same, cells)
    c2 = K._counts_numpy(d.numpy(), md.numpy(), valid.numpy(), last.numpy(), gidx.numpy(),
                         same.numpy(), cells)
    assert torch.equal(c1, torch.from_numpy(c2))
    other = qp[:, None] != gp[None, :]
    assert int(c1.sum()) == int(((d <= last) & other).sum())  # each item counted once


def _assert_matches_reference(d, qp, gp, qc, gc, **kw):
    for ap_mode in ("step", "trapezoid"):
        r = evaluate_ranking(d, qp, gp, qc, gc, max_rank=10, ap_mode=ap_mode, **kw)
        cmc, mAP, mINP, nvalid = reference(d, qp, gp, qc, gc, 10, ap_mode)
        np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
        assert abs(r.mAP - mAP) < 1e-12 and abs(r.mINP - mINP) < 1e-12
        assert r.num_valid_queries == nvalid


@pytest.mark.parametrize("chunk_size", [1, 4, None])
@given(seed=seeds)
def test_ties_and_multishot_match_reference(seed, chunk_size):
    # few distinct distances: many exact ties between matches, junk and non-matches, and
    # several thresholds in one histogram cell
    d, qp, gp, qc, gc = random_problem(seed, q=10, g=120, ids=5)
    d = np.round(d * 6) / 6
    _assert_matches_reference(d, qp, gp, qc, gc, chunk_size=chunk_size)


@given(seed=seeds)
def test_offset_and_infinite_distances_match_reference(seed):
    d, qp, gp, qc, gc = random_problem(seed, q=10, g=80, ids=5)
    # a large offset leaves the cell map only a few distinct values per row
    _assert_matches_reference(1e12 + d * 1e-3, qp, gp, qc, gc)
    rng = np.random.default_rng(seed)
    d_inf = d.copy()
    d_inf[rng.random(d.shape) < 0.2] = np.inf  # exact-search fallback, matches at +inf too
    _assert_matches_reference(d_inf, qp, gp, qc, gc)
    d_inf[rng.random(d.shape) < 0.1] = -np.inf
    _assert_matches_reference(d_inf, qp, gp, qc, gc)


def test_nan_anywhere_raises():
    d, qp, gp, qc, gc = random_problem(2, q=6, g=30)
    for i, j in [(0, 0), (5, 29), (3, 11)]:
        bad = d.copy()
        bad[i, j] = np.nan
        with pytest.raises(ValueRangeError, match="distmat"):
            evaluate_ranking(bad, qp, gp, qc, gc)
        with pytest.raises(ValueRangeError, match="distmat"):
            evaluate_ranking(bad, qp, gp, qc, gc, single_gallery_shot=True)
    junk = np.argwhere((qp[:, None] == gp[None, :]) & (qc[:, None] == gc[None, :]))
    for i, j in junk[:2]:  # same identity and camera: ignored by the metrics, still checked
        bad = d.copy()
        bad[i, j] = np.nan
        with pytest.raises(ValueRangeError, match="distmat"):
            evaluate_ranking(bad, qp, gp, qc, gc)
    assert len(junk) > 0
    far = d.copy()
    far[:, 0] = 1e9  # beyond every query's last match
    far[1, 0] = np.nan
    with pytest.raises(ValueRangeError, match="distmat"):
        evaluate_ranking(far, qp, gp, qc, gc)


def test_market_sized_slice_matches_reference():
    # realistic noisy embeddings: many candidates per query, multi-shot identities
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(41, 16, generator=g, dtype=torch.float64)
    qp, gp = torch.randint(0, 40, (60,), generator=g), torch.randint(0, 41, (1500,), generator=g)
    qc, gc = torch.randint(0, 6, (60,), generator=g), torch.randint(0, 6, (1500,), generator=g)
    qf = centers[qp] + torch.randn(60, 16, generator=g, dtype=torch.float64)
    gf = centers[gp] + torch.randn(1500, 16, generator=g, dtype=torch.float64)
    d = torch.cdist(qf, gf)
    _assert_matches_reference(d.numpy(), qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy(),
                              chunk_size=16)
