"""domain_cosine_similarity (DDAN Table 4, domain level), domain_table and encode_domains."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dgblocks.data.base import ReIDDataset
from dgblocks.domains import domain_cosine_similarity, domain_table, encode_domains
from tests._helpers import randn, randperm, seeds


def _reference(xs):  # the formula with loops, float64
    means = [(x / x.norm(dim=1, keepdim=True)).mean(0) for x in xs]
    return torch.tensor([[float(a @ b / (a.norm() * b.norm())) for b in means] for a in means],
                        dtype=torch.float64)


def test_matches_the_formula_in_float64():
    xs = [randn(s, n, 5) for s, n in enumerate((3, 7, 1, 4))]
    torch.testing.assert_close(domain_cosine_similarity(xs), _reference(xs))


@given(seed=seeds, g=st.integers(1, 4), n=st.integers(1, 8), dim=st.integers(1, 6))
def test_prop_invariants(seed, g, n, dim):
    xs = [randn(seed + k, n + k, dim) + 0.5 for k in range(g)]
    s = domain_cosine_similarity(xs)
    assert s.shape == (g, g)
    torch.testing.assert_close(s, s.t())
    assert bool((s >= -1).all() and (s <= 1).all())
    nonzero = torch.stack([torch.nn.functional.normalize(x, dim=1).mean(0).norm()
                           for x in xs]) > 1e-6
    torch.testing.assert_close(s.diagonal()[nonzero], torch.ones(int(nonzero.sum()),
                                                                 dtype=s.dtype))
    scaled = [x * (randn(seed + 9, len(x), 1).abs() + 0.1) for x in xs]  # positive scales
    torch.testing.assert_close(domain_cosine_similarity(scaled), s)
    shuffled = [x[randperm(seed, len(x))] for x in xs]
    torch.testing.assert_close(domain_cosine_similarity(shuffled), s)


def test_dtype_and_fp16_finite():
    xs = [randn(1, 4, 3, dtype=torch.float32), randn(2, 5, 3, dtype=torch.float32)]
    assert domain_cosine_similarity(xs).dtype == torch.float32
    assert torch.isfinite(domain_cosine_similarity([x.half() for x in xs])).all()


def test_zero_mean_domain_has_similarity_zero():
    s = domain_cosine_similarity([torch.tensor([[1.0, 0.0], [-1.0, 0.0]]),
                                  torch.tensor([[0.0, 1.0]])])
    assert s[0].tolist() == [0.0, 0.0] and s[1, 1] == 1


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="features_by_domain: expected a non-empty"):
        domain_cosine_similarity([])
    with pytest.raises(ValueError, match="features_by_domain: expected a non-empty"):
        domain_cosine_similarity(torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"features_by_domain\[1\]: expected shape"):
        domain_cosine_similarity([torch.randn(3, 2), torch.randn(3, 4)])
    with pytest.raises(ValueError, match=r"features_by_domain\[1\]: expected at least one row"):
        domain_cosine_similarity([torch.randn(3, 2), torch.zeros(0, 2)])


def test_domain_table_layout_and_bad_shape():
    text = domain_table(["x", "y", "z"], torch.eye(3), title="T", corner="c", digits=1)
    assert text.splitlines() == ["T", "| c | x | y | z |", "| --- | --- | --- | --- |",
                                 "| x | 1.0 | 0.0 | 0.0 |", "| y | 0.0 | 1.0 | 0.0 |",
                                 "| z | 0.0 | 0.0 | 1.0 |"]
    with pytest.raises(ValueError, match="matrix"):
        domain_table(["x"], torch.eye(2), title="T")


def test_encode_domains_subsamples_within_each_domain():
    n = 10
    img = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 2, 2).contiguous()
    doms = torch.tensor([0, 1, 0, 1, 0, 1, 0, 0, 2, 2])
    ds = ReIDDataset(img, pids=list(range(n)), camids=[0] * n, domains=doms)
    which = lambda x: (x[:, :1, 0, 0] * 255).round()  # noqa: E731 - the image's index
    full = encode_domains(which, ds, 3)
    assert [f.flatten().tolist() for f in full] == [[0, 2, 4, 6, 7], [1, 3, 5], [8, 9]]
    sub = encode_domains(which, ds, 3, max_per_domain=2, seed=1)
    for d, f in enumerate(sub):
        ids = f.flatten().long()
        assert len(ids) == min(2, int((doms == d).sum())) and len(set(ids.tolist())) == len(ids)
        assert bool((doms[ids] == d).all())
    with pytest.raises(ValueError, match="max_per_domain"):
        encode_domains(which, ds, 3, max_per_domain=0)
