"""NuisanceAdversary: the encoder's loss never trains the heads, the heads' update never reaches
the features, RG reverses the gradient, CaNE's prior comes from the labels, state survives."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dgblocks.methods import NuisanceAdversary


def _adv(loss="cane", n=3, seed=0):
    torch.manual_seed(seed)
    labels = {"camera": torch.tensor([0, 0, 0, 1, 2] * 4) % n}
    return NuisanceAdversary(in_dim=6, sizes={"camera": n}, loss=loss, labels=labels, hidden=8)


@settings(max_examples=12, deadline=None)
@given(loss=st.sampled_from(["rg", "ne", "cane", "cane_focal"]), n=st.integers(2, 5),
       seed=st.integers(0, 1000))
def test_encoder_loss_leaves_heads_and_update_leaves_features(loss, n, seed):
    adv = _adv(loss, n, seed)
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(8, 6, generator=g, requires_grad=True)
    y = {"camera": torch.arange(8) % n}
    adv(f, y).backward()
    assert f.grad is not None and all(p.grad is None for p in adv.parameters())
    f.grad = None
    before = [p.detach().clone() for p in adv.parameters()]
    adv.update(f, y)
    assert f.grad is None
    assert any(not torch.equal(a, p) for a, p in zip(before, adv.parameters()))


def test_rg_gives_the_features_the_reversed_ce_gradient():
    adv = _adv("rg").eval()
    f = torch.randn(8, 6, requires_grad=True)
    y = {"camera": torch.arange(8) % 3}
    g_adv, = torch.autograd.grad(adv(f, y), f)
    g_ce, = torch.autograd.grad(torch.nn.functional.cross_entropy(adv.heads(f)["camera"],
                                                                  y["camera"]), f)
    torch.testing.assert_close(g_adv, -g_ce)


def test_cane_prior_is_the_label_frequency():
    adv = _adv("cane")
    torch.testing.assert_close(adv.losses["camera"].prior, torch.tensor([0.6, 0.2, 0.2]))


def test_optimizer_state_round_trips():
    a, b = _adv(), _adv()
    f, y = torch.randn(8, 6), {"camera": torch.arange(8) % 3}
    a.update(f, y)
    b.load_state_dict(a.state_dict())
    assert b.optimizer.state_dict()["state"].keys() == a.optimizer.state_dict()["state"].keys()


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="loss"):
        NuisanceAdversary(in_dim=4, sizes={"c": 2}, loss="x")
    with pytest.raises(ValueError, match="labels"):
        NuisanceAdversary(in_dim=4, sizes={"c": 2}, loss="cane")
    with pytest.raises(ValueError, match="sizes"):
        NuisanceAdversary(in_dim=4, sizes={}, loss="ne")
    with pytest.raises(ValueError, match="lr"):
        NuisanceAdversary(in_dim=4, sizes={"c": 2}, loss="ne", lr=0.0)
    with pytest.raises(ValueError, match="labels"):
        _adv("ne")(torch.randn(4, 6), {"time": torch.zeros(4, dtype=torch.long)})
    with pytest.raises(ValueError, match="state"):
        _adv().set_extra_state([1])
