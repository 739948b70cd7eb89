"""Single-gallery-shot evaluation against the peers (torchreid, fast-reid, open-reid)."""

import numpy as np
import pytest
import torch

from dgblocks import ValueRangeError
from dgblocks.eval import evaluate_ranking
from tests.eval.test_ranking import random_problem


def test_map_on_full_gallery_matches_peers():
    # the peers' value: matches at ranks 2 and 3 of the full gallery, (1/2 + 2/3) / 2
    r = evaluate_ranking(torch.tensor([[0.1, 0.2, 0.3]]), [1], [2, 1, 1], [0], [1, 1, 1],
                         single_gallery_shot=True)
    assert r.mAP == pytest.approx(0.5833, abs=1e-4)
    assert r.cmc[:3].tolist() == [0.0, 1.0, 1.0]


def naive_single_shot_cmc(d, qp, gp, qc, gc, max_rank, num_draws, gen):
    """Per-draw, per-query loop of the documented draw: per query, one uniform key per gallery
    item (one (Q, G) tensor per draw), the valid item of smallest key kept per identity."""
    cmc = np.zeros(max_rank)
    nvalid = 0
    for _ in range(num_draws):
        keys = torch.rand(d.shape, generator=gen, dtype=torch.float64).numpy()
        for i in range(d.shape[0]):
            valid = ~((gp == qp[i]) & (gc == qc[i]))
            if not (valid & (gp == qp[i])).any():
                continue
            nvalid += 1
            kept = [min(np.flatnonzero(valid & (gp == p)), key=lambda j: keys[i, j])
                    for p in np.unique(gp[valid])]
            dist = np.array([d[i, j] for j in kept])
            match = np.array([gp[j] == qp[i] for j in kept])
            rank = 1 + int(((dist <= dist[match][0]) & ~match).sum())  # ties: match last
            cmc[rank - 1:] += 1
    return cmc / nvalid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cmc_averages_draws_like_a_loop(seed):
    d, qp, gp, qc, gc = random_problem(seed, q=10, g=30, ids=5)
    d = np.round(d, 1)  # ties between matches and non-matches
    r = evaluate_ranking(d, qp, gp, qc, gc, max_rank=8, single_gallery_shot=True,
                         num_draws=7, generator=torch.Generator().manual_seed(seed),
                         chunk_size=10)
    ref = naive_single_shot_cmc(d, qp, gp, qc, gc, 8, 7, torch.Generator().manual_seed(seed))
    np.testing.assert_allclose(r.cmc, ref)
    full = evaluate_ranking(d, qp, gp, qc, gc, max_rank=8)
    assert r.mAP == full.mAP and r.mINP == full.mINP  # mAP and mINP on the full gallery
    assert np.all(r.cmc >= full.cmc - 1e-12)  # a sampled gallery never ranks a match lower


def test_draws_are_averaged_and_seeded():
    d, qp, gp, qc, gc = random_problem(3, q=12, g=40)
    g = torch.Generator().manual_seed(5)
    ten = evaluate_ranking(d, qp, gp, qc, gc, single_gallery_shot=True, generator=g)
    g = torch.Generator().manual_seed(5)
    singles = [evaluate_ranking(d, qp, gp, qc, gc, single_gallery_shot=True, num_draws=1,
                                generator=g, chunk_size=12).cmc for _ in range(10)]
    np.testing.assert_allclose(ten.cmc, np.mean(singles, 0))  # the same 10 draws, averaged
    assert len({tuple(c) for c in singles}) > 1  # the draws differ
    a = evaluate_ranking(d, qp, gp, qc, gc, single_gallery_shot=True, seed=4)
    b = evaluate_ranking(d, qp, gp, qc, gc, single_gallery_shot=True,
                         generator=torch.Generator().manual_seed(4))
    np.testing.assert_array_equal(a.cmc, b.cmc)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_num_draws_validated(bad):
    with pytest.raises(ValueRangeError, match="num_draws"):
        evaluate_ranking(torch.tensor([[0.1, 0.2]]), [0], [0, 1], [0], [1, 1],
                         single_gallery_shot=True, num_draws=bad)


def test_generator_validated():
    with pytest.raises(ValueRangeError, match="generator"):
        evaluate_ranking(torch.tensor([[0.1, 0.2]]), [0], [0, 1], [0], [1, 1],
                         single_gallery_shot=True, generator=0)
