import itertools

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dgblocks.domains import central_domain, central_from_distances, wasserstein_matrix
from dgblocks.domains.wasserstein import _w1_sorted
from tests._helpers import randn, randperm, seeds

# DDAN Table 2 (Chen et al., AAAI 2021): d_WS between source domains, rows/columns in this order.
DDAN_DOMAINS = ["Cuhk02", "Cuhk03", "Duke", "Market", "PersonSearch"]
DDAN_TABLE2 = [
    [0.00, 0.69, 1.61, 1.37, 0.87],
    [0.69, 0.00, 1.58, 1.44, 0.72],
    [1.61, 1.58, 0.00, 1.69, 1.20],
    [1.37, 1.44, 1.69, 0.00, 1.10],
    [0.87, 0.72, 1.20, 1.10, 0.00],
]
DDAN_ROW_SUMS = [4.54, 4.43, 6.08, 5.60, 3.89]  # the "Sum" column of Table 2


def test_central_from_distances_picks_personsearch_from_ddan_table2():
    torch.testing.assert_close(torch.tensor(DDAN_TABLE2).sum(1), torch.tensor(DDAN_ROW_SUMS))
    assert DDAN_DOMAINS[central_from_distances(DDAN_TABLE2)] == "PersonSearch"
    assert central_from_distances(np.array(DDAN_TABLE2)) == 4
    assert central_from_distances(torch.tensor(DDAN_TABLE2)) == 4


@given(seed=seeds, g=st.integers(1, 8))
def test_prop_central_is_argmin_of_row_sums(seed, g):
    d = randn(seed, g, g).abs()
    d = d + d.t()  # symmetric (an asymmetric one is refused); distinct row sums if g != 2
    d.fill_diagonal_(0)
    assert central_from_distances(d) == int(d.sum(1).argmin())
    assert central_from_distances(d + 5 * torch.eye(g)) == central_from_distances(d)
    p = randperm(seed, g)
    if g != 2:  # two domains always tie (symmetric): the lowest index wins
        assert p[central_from_distances(d[p][:, p])] == central_from_distances(d)


def naive_w1(a, b):
    """Exact W1 between equal-size uniform point sets: the best assignment (Birkhoff)."""
    a = torch.nn.functional.normalize(a, dim=1)
    b = torch.nn.functional.normalize(b, dim=1)
    cost = ((a[:, None] - b[None]) ** 2).sum(-1).sqrt()
    n = len(a)
    return min(sum(float(cost[i, p[i]]) for i in range(n)) / n
               for p in itertools.permutations(range(n)))


@given(seed=seeds, n=st.integers(1, 5), d=st.integers(1, 4))
def test_emd_matches_naive_assignment(seed, n, d):
    xs = [randn(seed + g, n, d) + g for g in range(3)]
    w = wasserstein_matrix(xs, method="emd")
    for a, b in itertools.combinations(range(3), 2):
        assert abs(float(w[a, b]) - naive_w1(xs[a], xs[b])) < 1e-9


@settings(max_examples=15)
@given(seed=seeds, method=st.sampled_from(["emd", "sinkhorn", "sliced"]))
def test_prop_symmetric_zero_diagonal_nonnegative_scale_invariant(seed, method):
    xs = [randn(seed + g, 6 + g, 3) + 0.5 * g for g in range(3)]
    w = wasserstein_matrix(xs, method=method, seed=1)
    torch.testing.assert_close(w, w.t())
    assert (w.diagonal() == 0).all() and (w >= 0).all()
    scaled = [x * (1 + 10 * randn(seed, len(x), 1).abs()) for x in xs]
    torch.testing.assert_close(wasserstein_matrix(scaled, method=method, seed=1), w)


@given(seed=seeds, n=st.integers(1, 9), m=st.integers(1, 9))
def test_sorted_1d_w1_matches_pot(seed, n, m):
    a, b = randn(seed, n, 3), randn(seed + 1, m, 3) + 0.5
    got = _w1_sorted(a.t().sort(1).values, b.t().sort(1).values)
    torch.testing.assert_close(got, torch.as_tensor(ot.wasserstein_1d(a.numpy(), b.numpy(), p=1)))


def test_sliced_matches_pot_sliced_wasserstein_with_the_same_projections():
    xs = [randn(g, 9 + 2 * g, 4) + 0.3 * g for g in range(3)]
    got = wasserstein_matrix(xs, method="sliced", seed=5, n_projections=30)
    proj = torch.randn(4, 30, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    proj = torch.nn.functional.normalize(proj, dim=0)
    xn = [torch.nn.functional.normalize(x, dim=1).numpy() for x in xs]
    for a, b in itertools.combinations(range(3), 2):
        ref = ot.sliced_wasserstein_distance(xn[a], xn[b], projections=proj.numpy(), p=1)
        assert abs(float(got[a, b]) - float(ref)) < 1e-10


@settings(max_examples=10)
@given(seed=seeds)
def test_prop_sliced_below_exact_below_entropic(seed):
    xs = [randn(seed + g, 12, 4) + 0.4 * g for g in range(3)]
    emd = wasserstein_matrix(xs, method="emd")
    assert (wasserstein_matrix(xs, method="sliced") <= emd + 1e-9).all()
    assert (wasserstein_matrix(xs, method="sinkhorn", reg=0.05) >= emd - 1e-6).all()


@pytest.mark.parametrize("method", ["emd", "sinkhorn", "sliced"])
def test_every_method_finds_an_obvious_centre(method):
    base = randn(0, 300, 8, dtype=torch.float32)
    shifts = [0.0, 1.0, -1.0, 2.0, -2.0]  # domain 0 sits in the middle
    feats = [base + randn(g + 1, 300, 8, dtype=torch.float32) * 0.2 + s * torch.ones(8)
             * torch.tensor([1.0] + [0.0] * 7) * 3 for g, s in enumerate(shifts)]
    out = central_domain(feats, method=method, max_samples=200, seed=3)
    assert out.index == 0 and out.distances.shape == (5, 5)
    assert out.index == central_from_distances(out.distances)


def test_seed_makes_subsampling_reproducible():
    feats = [randn(g, 50, 3) for g in range(3)]
    a = wasserstein_matrix(feats, method="emd", max_samples=10, seed=4)
    b = wasserstein_matrix(feats, method="emd", max_samples=10, seed=4)
    assert torch.equal(a, b)


def test_bad_input_names_the_argument():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="features_by_domain: expected a sequence of at least 2"):
        central_domain([x])
    with pytest.raises(ValueError, match="features_by_domain: expected a sequence"):
        central_domain(x)
    with pytest.raises(ValueError, match="features_by_domain\\[1\\]: expected shape \\(N, D\\) with D=3"):
        central_domain([x, torch.zeros(4, 2)])
    with pytest.raises(ValueError, match="features_by_domain\\[1\\]: expected at least one sample"):
        central_domain([x, torch.zeros(0, 3)])
    with pytest.raises(ValueError, match="method"):
        central_domain([x, x], method="wasserstein")
    with pytest.raises(ValueError, match="max_samples"):
        central_domain([x, x], max_samples=0)
    with pytest.raises(ValueError, match="reg"):
        central_domain([x, x], method="sinkhorn", reg=0.0)
    with pytest.raises(ValueError, match="distances: expected shape \\(G, G\\)"):
        central_from_distances(torch.zeros(2, 3))


def test_degenerate_identical_domains_have_zero_distance():
    x = randn(0, 5, 3)
    w = wasserstein_matrix([x, x.clone(), x.clone()], method="emd")
    assert float(w.abs().max()) < 1e-7
    assert central_from_distances(w) == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_features(dtype):
    feats = [randn(g, 20, 4).to(dtype) + g for g in range(3)]
    for method in ("emd", "sinkhorn", "sliced"):
        w = wasserstein_matrix(feats, method=method)
        assert w.dtype == torch.float64 and torch.isfinite(w).all()


def test_paired_wasserstein_is_the_per_domain_entry_and_zero_on_itself():
    from dgblocks.domains import paired_wasserstein

    before = [randn(s, 6, 3) for s in range(3)]
    after = [randn(s + 10, 5, 3) for s in range(3)]
    for method in ("emd", "sliced"):
        got = paired_wasserstein(before, after, method=method)
        ref = torch.stack([wasserstein_matrix([b, a], method=method)[0, 1]
                           for b, a in zip(before, after)])
        torch.testing.assert_close(got, ref)
        assert bool((got >= 0).all())
    torch.testing.assert_close(paired_wasserstein(before, before, method="emd"),
                               torch.zeros(3, dtype=torch.float64), atol=1e-7, rtol=0)
    with pytest.raises(ValueError, match="after"):
        paired_wasserstein(before, after[:2])
