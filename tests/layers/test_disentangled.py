import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from dgblocks.layers import DisentangledEncoders
from dgblocks.losses import NegEntropy
from tests._helpers import randn, seeds


def make(dim=4):
    return DisentangledEncoders(encoder_s=nn.Linear(6, dim), encoder_v=nn.Linear(6, dim), dim=dim,
                                num_ids=5, num_domains=3).double()


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, b=st.integers(1, 8))
def test_matches_manual_composition_with_shared_heads(seed, b):
    torch.manual_seed(seed)
    m = make()
    x = randn(seed, b, 6)
    out = m(x)
    s, v = m.encoder_s(x), m.encoder_v(x)
    torch.testing.assert_close(out.s, s)
    torch.testing.assert_close(out.v, v)
    torch.testing.assert_close(out.id_s, s @ m.id_head.weight.t() + m.id_head.bias)
    torch.testing.assert_close(out.id_v, v @ m.id_head.weight.t() + m.id_head.bias)
    torch.testing.assert_close(out.dom_s, s @ m.domain_head.weight.t() + m.domain_head.bias)
    torch.testing.assert_close(out.dom_v, v @ m.domain_head.weight.t() + m.domain_head.bias)


# --- invariants ------------------------------------------------------------------------------
@given(seed=seeds)
def test_prop_detach_sends_no_head_gradient_into_the_encoders(seed):
    m = make()
    out = m(randn(seed, 3, 6), detach=True)
    (out.id_s.sum() + out.dom_v.sum() + out.id_v.sum() + out.dom_s.sum()).backward()
    assert all(p.grad is None for p in m.encoder_parameters())
    assert all(p.grad is not None for p in m.head_parameters())


def test_parameter_groups_partition_the_module():
    m = make()
    ids = [id(p) for p in m.encoder_parameters()] + [id(p) for p in m.head_parameters()]
    assert sorted(ids) == sorted(id(p) for p in m.parameters()) and len(set(ids)) == len(ids)
    assert "num_ids=5" in repr(m)


def test_gradcheck():
    m = make()
    x = randn(0, 2, 6).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: m(t).id_v, (x,))


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    bad = DisentangledEncoders(encoder_s=nn.Linear(6, 3), encoder_v=nn.Linear(6, 4), dim=4,
                               num_ids=5, num_domains=3)
    with pytest.raises(ValueError, match="encoder_s output: expected shape \\(B, D\\) with D=4"):
        bad(torch.zeros(2, 6))
    enc = nn.Linear(6, 4)
    with pytest.raises(ValueError, match="encoder_v: expected a module distinct"):
        DisentangledEncoders(encoder_s=enc, encoder_v=enc, dim=4, num_ids=5, num_domains=3)
    with pytest.raises(ValueError, match="encoder_s: expected an nn.Module"):
        DisentangledEncoders(encoder_s=None, encoder_v=enc, dim=4, num_ids=5, num_domains=3)
    with pytest.raises(ValueError, match="num_domains"):
        DisentangledEncoders(encoder_s=nn.Linear(6, 4), encoder_v=enc, dim=4, num_ids=5,
                             num_domains=0)


def test_one_domain_is_accepted_and_its_domain_terms_vanish():
    """One source without camera labels (DIR-ReID Table 4 uses cameras as domains instead)."""
    enc = DisentangledEncoders(encoder_s=nn.Linear(6, 4), encoder_v=nn.Linear(6, 4), dim=4,
                               num_ids=5, num_domains=1)
    out = enc(torch.randn(3, 6))
    assert out.dom_s.shape == out.dom_v.shape == (3, 1)
    zero = torch.zeros(3, dtype=torch.long)
    torch.testing.assert_close(nn.functional.cross_entropy(out.dom_v, zero), torch.tensor(0.0))
    torch.testing.assert_close(NegEntropy()(out.dom_s), torch.tensor(0.0))


def test_degenerate_empty_batch():
    out = make()(torch.zeros(0, 6, dtype=torch.float64))
    assert out.id_s.shape == (0, 5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(dtype):
    m = DisentangledEncoders(encoder_s=nn.Linear(6, 4), encoder_v=nn.Linear(6, 4), dim=4,
                             num_ids=5, num_domains=3).to(dtype)
    out = m((randn(0, 3, 6) * 100).to(dtype))
    assert out.dom_v.dtype == dtype and all(torch.isfinite(t).all() for t in out)
