import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dgblocks.layers import SubspaceHypernet
from tests._helpers import randn, randperm, scales, seeds


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, b=st.integers(1, 6), groups=st.sampled_from([1, 2, 4]), scale=scales)
def test_matches_group_loop_reference(seed, b, groups, scale):
    torch.manual_seed(seed)
    net = SubspaceHypernet(channels=8, groups=groups).double()
    x = randn(seed, b, 8, 3, 2, scale=min(scale, 10.0))
    out = net(x)
    w = torch.softmax(net.net(x.mean((2, 3))), dim=1) * groups
    torch.testing.assert_close(out.weights, w)
    size = 8 // groups
    for v in range(groups):
        sl = slice(v * size, (v + 1) * size)
        torch.testing.assert_close(out.feature[:, sl], x[:, sl] * w[:, v, None, None, None])


# --- invariants ------------------------------------------------------------------------------
@given(seed=seeds, scale=scales)
def test_prop_weights_in_unit_interval(seed, scale):
    net = SubspaceHypernet(channels=8, groups=4, gate="sigmoid").double()
    w = net(randn(seed, 5, 8, 2, 2, scale=scale)).weights
    assert ((w >= 0) & (w <= 1)).all()
    torch.testing.assert_close(w, torch.sigmoid(net.net(randn(seed, 5, 8, 2, 2,
                                                              scale=scale).mean((2, 3)))))


@given(seed=seeds, scale=scales)
def test_prop_softmax_weights_average_one(seed, scale):
    """The default gate only moves emphasis between groups: the weights average to 1, so the
    hyper-network cannot scale the whole feature to zero (the collapse of docs/decisions.md)."""
    w = SubspaceHypernet(channels=8, groups=4).double()(randn(seed, 5, 8, 2, 2, scale=scale)).weights
    assert (w >= 0).all()
    torch.testing.assert_close(w.mean(1), torch.ones(5, dtype=torch.float64))


def test_bad_gate_names_the_argument():
    with pytest.raises(ValueError, match="gate"):
        SubspaceHypernet(channels=8, groups=4, gate="tanh")


@given(seed=seeds)
def test_prop_weights_invariant_to_spatial_permutation(seed):
    net = SubspaceHypernet(channels=4, groups=2).double()
    x = randn(seed, 3, 4, 3, 3)
    p = randperm(seed, 9)
    xp = x.flatten(2)[:, :, p].view_as(x)
    torch.testing.assert_close(net(xp).weights, net(x).weights)


def test_vector_input_and_gradcheck():
    net = SubspaceHypernet(channels=4, groups=2, hidden=3).double()
    x = randn(0, 3, 4).requires_grad_()
    out = net(x)
    assert out.feature.shape == (3, 4) and out.weights.shape == (3, 2)
    assert torch.autograd.gradcheck(lambda t: net(t).feature, (x,))
    assert "groups=2" in repr(net)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="groups: expected a divisor of channels=6"):
        SubspaceHypernet(channels=6, groups=4)
    with pytest.raises(ValueError, match="channels"):
        SubspaceHypernet(channels=0)
    with pytest.raises(ValueError, match="x: expected shape \\(B, C, H, W\\) or \\(B, C\\) with C=8"):
        SubspaceHypernet(channels=8)(torch.zeros(2, 4, 3, 3))


def test_degenerate_single_sample_single_pixel():
    out = SubspaceHypernet(channels=4, groups=4)(torch.randn(1, 4, 1, 1))
    assert out.weights.shape == (1, 4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(dtype):
    net = SubspaceHypernet(channels=8).to(dtype)
    out = net((randn(0, 2, 8, 3, 3) * 100).to(dtype))
    assert out.feature.dtype == dtype and torch.isfinite(out.feature).all()
