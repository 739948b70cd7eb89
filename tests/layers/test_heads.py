import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dgblocks.layers import CentralDomainDiscriminator, NuisanceHeads
from tests._helpers import randn, seeds


def naive_mlp(seq, x):
    lin1, bn, _, lin2 = seq
    h = x @ lin1.weight.t() + lin1.bias
    h = (h - bn.running_mean) / (bn.running_var + bn.eps).sqrt() * bn.weight + bn.bias
    return h.clamp_min(0) @ lin2.weight.t() + lin2.bias


# --- reference (eval mode: BN with running statistics) ---------------------------------------
@given(seed=seeds, b=st.integers(1, 6))
def test_discriminator_matches_naive_mlp(seed, b):
    torch.manual_seed(seed)
    d = CentralDomainDiscriminator(in_dim=5, hidden=7).double().eval()
    x = randn(seed, b, 5)
    torch.testing.assert_close(d(x), naive_mlp(d.net, x))


@given(seed=seeds, sizes=st.lists(st.integers(2, 6), min_size=1, max_size=3))
def test_nuisance_heads_one_head_per_label(seed, sizes):
    heads = NuisanceHeads(in_dim=4, sizes=sizes, hidden=5).double().eval()
    x = randn(seed, 3, 4)
    out = heads(x)
    assert isinstance(out, tuple) and [o.shape[1] for o in out] == sizes
    for o, h in zip(out, heads.heads):
        torch.testing.assert_close(o, naive_mlp(h, x))


def test_discriminator_defaults_follow_ddan_and_train_mode_batchnorm():
    d = CentralDomainDiscriminator(in_dim=16)
    assert d.net[0].out_features == 128 and d.net[3].out_features == 2
    assert d(torch.randn(4, 16)).shape == (4, 2)
    assert "hidden=128" in repr(d)


def test_named_nuisances_give_a_dict_and_gradcheck():
    heads = NuisanceHeads(in_dim=3, sizes={"camera": 4, "period": 2}, hidden=4).double()
    x = randn(0, 5, 3).requires_grad_()
    out = heads(x)
    assert list(out) == ["camera", "period"] and out["period"].shape == (5, 2)
    assert "camera" in repr(heads)
    assert torch.autograd.gradcheck(lambda t: heads(t)["camera"], (x,))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="x: expected shape \\(B, D\\) with D=16"):
        CentralDomainDiscriminator(in_dim=16)(torch.zeros(2, 8))
    with pytest.raises(ValueError, match="sizes: expected at least one"):
        NuisanceHeads(in_dim=4, sizes=[])
    with pytest.raises(ValueError, match="sizes: expected an int >= 2"):
        NuisanceHeads(in_dim=4, sizes=[3, 1])
    with pytest.raises(ValueError, match="sizes: expected a sequence or mapping"):
        NuisanceHeads(in_dim=4, sizes=3)
    with pytest.raises(ValueError, match="in_dim"):
        CentralDomainDiscriminator(in_dim=0)


def test_degenerate_single_sample_in_eval_mode():
    d = CentralDomainDiscriminator(in_dim=4).eval()
    assert d(torch.randn(1, 4)).shape == (1, 2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(dtype):
    heads = NuisanceHeads(in_dim=8, sizes=[3, 4]).to(dtype)
    d = CentralDomainDiscriminator(in_dim=8).to(dtype)
    x = (randn(0, 4, 8) * 100).to(dtype)
    assert all(torch.isfinite(o).all() for o in heads(x)) and torch.isfinite(d(x)).all()
