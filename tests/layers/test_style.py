import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.layers import CrossDomainStyle, StyleFusion
from tests._helpers import gen, randint, randn, randperm, scales, seeds


def naive(x, domains, eps_mu, eps_sigma, g, eps=1e-6):
    present = [k for k in range(g) if (domains == k).any()]
    mu, sd = {}, {}
    for k in present:
        xk = x[domains == k].transpose(0, 1).reshape(x.shape[1], -1)  # (C, B_k*H*W)
        mu[k] = xk.mean(1)
        sd[k] = (xk.var(1, unbiased=False) + eps).sqrt()
    kk = len(present)
    mus, sds = torch.stack([mu[k] for k in present]), torch.stack([sd[k] for k in present])
    out = torch.empty_like(x)
    for i in range(len(x)):
        k = int(domains[i])
        others = [j for j in present if j != k]
        mu_hat = sum(mu[j] for j in others) / (kk - 1) + eps_mu[k] * mus.var(0, unbiased=False)
        sd_hat = sum(sd[j] for j in others) / (kk - 1) + eps_sigma[k] * sds.var(0, unbiased=False)
        sd_hat = sd_hat.clamp_min(0)
        out[i] = sd_hat[:, None, None] * (x[i] - mu[k][:, None, None]) / sd[k][:, None, None] \
            + mu_hat[:, None, None]
    return out


def batch_with_domains(seed, b, g, min_domains=2):
    d = randint(seed, g, b)
    d[:min_domains] = torch.arange(min_domains)  # at least min_domains present
    return d


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, b=st.integers(2, 10), g=st.integers(2, 4), c=st.integers(1, 4),
       scale=scales)
def test_matches_naive_reference(seed, b, g, c, scale):
    x = randn(seed, b, c, 3, 2, scale=scale)
    d = batch_with_domains(seed, b, g)
    em, es = randn(seed + 1, g, c), randn(seed + 2, g, c)
    got = DF.cross_domain_style(x, d, em, es, num_domains=g)
    torch.testing.assert_close(got, naive(x, d, em, es, g))


# --- invariants ------------------------------------------------------------------------------
@given(seed=seeds, b=st.integers(2, 10), g=st.integers(2, 4), c=st.integers(1, 4))
def test_prop_zero_noise_gives_exactly_the_expanded_moments(seed, b, g, c):
    x = randn(seed, b, c, 4, 3, scale=3.0) + 2.0
    d = batch_with_domains(seed, b, g)
    z = torch.zeros(g, c, dtype=torch.float64)
    out = DF.cross_domain_style(x, d, z, z, num_domains=g, eps=0.0)
    mu, sd, n = DF.domain_style_moments(x, d, num_domains=g, eps=0.0)
    mu_hat, sd_hat = DF.expand_style_moments(mu, sd, n > 0, z, z)
    mu_o, sd_o, _ = DF.domain_style_moments(out, d, num_domains=g, eps=0.0)
    present = n > 0
    torch.testing.assert_close(mu_o[present], mu_hat[present])
    flat = sd[present] > 1e-6  # a constant channel stays constant
    torch.testing.assert_close(sd_o[present][flat], sd_hat[present][flat])
    # mu_hat[k] is the mean of the other present domains' means
    for k in present.nonzero().flatten().tolist():
        others = [j for j in present.nonzero().flatten().tolist() if j != k]
        torch.testing.assert_close(mu_hat[k], mu[others].mean(0))


@given(seed=seeds, g=st.integers(2, 5), c=st.integers(1, 4))
def test_prop_noise_moves_by_eps_times_variance(seed, g, c):
    mu, sd = randn(seed, g, c), randn(seed + 1, g, c).abs() + 0.1
    present = torch.ones(g, dtype=torch.bool)
    em = randn(seed + 2, g, c)
    z = torch.zeros(g, c, dtype=torch.float64)
    base, _ = DF.expand_style_moments(mu, sd, present, z, z)
    moved, _ = DF.expand_style_moments(mu, sd, present, em, z)
    torch.testing.assert_close(moved - base, em * mu.var(0, unbiased=False))


@given(seed=seeds, b=st.integers(2, 10), g=st.integers(2, 4))
def test_prop_batch_permutation_equivariance(seed, b, g):
    x, d = randn(seed, b, 3, 2, 2), batch_with_domains(seed, b, g)
    em, es = randn(seed + 1, g, 3), randn(seed + 2, g, 3)
    p = randperm(seed, b)
    torch.testing.assert_close(DF.cross_domain_style(x[p], d[p], em, es, num_domains=g),
                               DF.cross_domain_style(x, d, em, es, num_domains=g)[p])


@given(seed=seeds)
def test_prop_identity_in_eval_mode(seed):
    m = CrossDomainStyle(num_domains=3).eval()
    x = randn(seed, 5, 2, 3, 3)
    assert m(x) is x and m(x, randint(seed, 3, 5)) is x


# --- module == function, gradcheck -----------------------------------------------------------
def test_module_equals_function_with_the_generators_noise():
    x, d = randn(0, 6, 4, 3, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    m = CrossDomainStyle(num_domains=3)
    got = m(x, d, generator=gen(7))
    noise = torch.randn(2, 3, 4, generator=gen(7)).double()
    torch.testing.assert_close(got, DF.cross_domain_style(x, d, noise[0], noise[1], num_domains=3))
    assert not torch.allclose(got, m(x, d, generator=gen(8)))
    assert "num_domains=3" in repr(m)


def test_gradcheck():
    x = randn(0, 4, 2, 2, 2).requires_grad_()
    d = torch.tensor([0, 1, 1, 2])
    em, es = randn(1, 3, 2), randn(2, 3, 2) * 0.1
    assert torch.autograd.gradcheck(
        lambda t: DF.cross_domain_style(t, d, em, es, num_domains=3), (x,))


def test_detach_stats_stops_the_gradient_through_the_moments():
    x = randn(0, 4, 2, 2, 2).requires_grad_()
    d, z = torch.tensor([0, 0, 1, 1]), torch.zeros(2, 2, dtype=torch.float64)
    out = DF.cross_domain_style(x, d, z, z, num_domains=2, detach_stats=True)
    (g,) = torch.autograd.grad(out.sum(), x)
    mu, sd, _ = DF.domain_style_moments(x.detach(), d, num_domains=2)
    sd_hat = DF.expand_style_moments(mu, sd, torch.tensor([True, True]), z, z)[1]
    torch.testing.assert_close(g, (sd_hat / sd)[d][:, :, None, None].expand_as(x))


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    x, z = torch.zeros(4, 2, 3, 3), torch.zeros(3, 2)
    with pytest.raises(ValueError, match="domains: cross-domain style needs at least 2 domains"):
        DF.cross_domain_style(x, torch.tensor([1, 1, 1, 1]), z, z, num_domains=3)
    with pytest.raises(ValueError, match="domains: expected values in \\[0, 3\\)"):
        DF.cross_domain_style(x, torch.tensor([0, 1, 2, 3]), z, z, num_domains=3)
    with pytest.raises(ValueError, match="domains: expected shape \\(N,\\) with N=4"):
        DF.cross_domain_style(x, torch.tensor([0, 1]), z, z, num_domains=3)
    with pytest.raises(ValueError, match="x: expected 4-D"):
        DF.cross_domain_style(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), z, z, num_domains=3)
    with pytest.raises(ValueError, match="eps_mu: expected shape"):
        DF.cross_domain_style(x, torch.tensor([0, 1, 0, 1]), z[:2], z, num_domains=3)
    with pytest.raises(ValueError, match="present: expected at least 2"):
        DF.expand_style_moments(z, z, torch.tensor([True, False, False]), z, z)
    with pytest.raises(ValueError, match="num_domains: expected an int >= 2"):
        CrossDomainStyle(num_domains=1)
    with pytest.raises(ValueError, match="domains: required in training mode"):
        CrossDomainStyle(num_domains=2)(x)
    with pytest.raises(ValueError, match="channels"):
        StyleFusion(channels=0)
    with pytest.raises(ValueError, match="f_sty: expected shape"):
        StyleFusion(channels=2)(x, torch.zeros(4, 2, 2, 3))


def test_degenerate_absent_domains_and_single_sample_domains():
    x = randn(0, 2, 3, 2, 2)
    d = torch.tensor([0, 3])  # 5 known domains, 2 present, one sample each
    em, es = randn(1, 5, 3), randn(2, 5, 3)
    out = DF.cross_domain_style(x, d, em, es, num_domains=5)
    torch.testing.assert_close(out, naive(x, d, em, es, 5))


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(dtype):
    x = (randn(0, 6, 4, 3, 3) * 100).to(dtype)
    out = CrossDomainStyle(num_domains=3)(x, torch.tensor([0, 1, 2, 0, 1, 2]), generator=gen(0))
    assert out.dtype == dtype and torch.isfinite(out).all()


# --- StyleFusion (eq 9) ----------------------------------------------------------------------
def test_style_fusion_is_a_1x1_conv_on_the_concatenation():
    fuse = StyleFusion(channels=2).double()
    a, b = randn(0, 1, 2, 2, 2), randn(1, 1, 2, 2, 2)
    w, bias = fuse.fc.weight[:, :, 0, 0], fuse.fc.bias
    ref = torch.einsum("oc,bchw->bohw", w, torch.cat([a, b], 1)) + bias[:, None, None]
    torch.testing.assert_close(fuse(a, b), ref)
    assert torch.autograd.gradcheck(fuse, (a.requires_grad_(), b.requires_grad_()))
    assert "channels=2" in repr(fuse)


@settings(max_examples=10, deadline=None)
@given(c=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_style_fusion_starts_as_the_invariant_feature(c, seed):
    """init="identity": a fresh fusion returns F_inv whatever F_sty (a from-scratch network's
    main path is not scrambled); init="default" does not."""
    from dgblocks.layers import StyleFusion

    g = torch.Generator().manual_seed(seed)
    f_inv, f_sty = torch.randn(2, c, 3, 2, generator=g), torch.randn(2, c, 3, 2, generator=g)
    assert torch.equal(StyleFusion(channels=c)(f_inv, f_sty), f_inv)
    torch.manual_seed(seed)
    assert not torch.equal(StyleFusion(channels=c, init="default")(f_inv, f_sty), f_inv)
