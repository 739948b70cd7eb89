"""domain_cosine_similarity (DDAN Table 4, domain level) and domain_table."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dgblocks.domains import domain_cosine_similarity, domain_table
from tests._helpers import randint, randn, randperm, seeds


def _reference(f, d, g):  # the formula with a loop, float64
    means = []
    for k in range(g):
        x = f[d == k].double()
        means.append((x / x.norm(dim=1, keepdim=True)).mean(0))
    return torch.tensor([[float(a @ b / (a.norm() * b.norm())) for b in means] for a in means],
                        dtype=torch.float64)


def _labels(seed, n, g):  # every domain present
    return torch.cat([torch.arange(g), randint(seed, g, n - g)])


def test_matches_the_formula_in_float64():
    f, d = randn(0, 30, 5), _labels(0, 30, 4)
    torch.testing.assert_close(domain_cosine_similarity(f, d), _reference(f, d, 4))


@given(seed=seeds, n=st.integers(4, 40), g=st.integers(1, 4), dim=st.integers(1, 6))
def test_prop_invariants(seed, n, g, dim):
    f, d = randn(seed, n, dim) + 0.5, _labels(seed, n, g)
    s = domain_cosine_similarity(f, d)
    assert s.shape == (g, g)
    torch.testing.assert_close(s, s.t())
    assert bool((s >= -1).all() and (s <= 1).all())
    means = torch.stack([torch.nn.functional.normalize(f[d == k], dim=1).mean(0)
                         for k in range(g)])
    nonzero = means.norm(dim=1) > 1e-6
    torch.testing.assert_close(s.diagonal()[nonzero], torch.ones(int(nonzero.sum()),
                                                                 dtype=s.dtype))
    scale = randn(seed + 1, n, 1).abs() + 0.1           # positive per-sample scales
    torch.testing.assert_close(domain_cosine_similarity(f * scale, d), s)
    p = randperm(seed, n)
    torch.testing.assert_close(domain_cosine_similarity(f[p], d[p]), s)


def test_dtype_device_and_fp16_finite():
    f, d = randn(1, 12, 4, dtype=torch.float32), _labels(1, 12, 3)
    assert domain_cosine_similarity(f, d).dtype == torch.float32
    assert torch.isfinite(domain_cosine_similarity(f.half(), d)).all()


def test_zero_mean_domain_has_similarity_zero():
    f = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    s = domain_cosine_similarity(f, torch.tensor([0, 0, 1]))
    assert s[0].tolist() == [0.0, 0.0] and s[1, 1] == 1


def test_bad_input_names_the_argument():
    f = torch.randn(4, 3)
    with pytest.raises(ValueError, match="features"):
        domain_cosine_similarity(torch.randn(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="domains: expected shape"):
        domain_cosine_similarity(f, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="domains: expected at least one image per domain"):
        domain_cosine_similarity(f, torch.tensor([0, 0, 2, 2]))
    with pytest.raises(ValueError, match="domains"):
        domain_cosine_similarity(f, torch.tensor([0, 1, 2, 3]), num_domains=2)
    with pytest.raises(ValueError, match="features: expected at least one image"):
        domain_cosine_similarity(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_domain_table_layout_and_bad_shape():
    text = domain_table(["x", "y", "z"], torch.eye(3), title="T", corner="c", digits=1)
    assert text.splitlines() == ["T", "| c | x | y | z |", "| --- | --- | --- | --- |",
                                 "| x | 1.0 | 0.0 | 0.0 |", "| y | 0.0 | 1.0 | 0.0 |",
                                 "| z | 0.0 | 0.0 | 1.0 |"]
    with pytest.raises(ValueError, match="matrix"):
        domain_table(["x"], torch.eye(2), title="T")
