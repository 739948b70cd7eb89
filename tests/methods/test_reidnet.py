"""ReIDNet and StageBlock: stage channels, blocks inside stages get the context they ask for
(and only for the call), aux outputs, train vs eval outputs."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dgblocks.backbones import build_backbone
from dgblocks.layers import CrossDomainStyle
from dgblocks.methods import ReIDNet, StageBlock


class Probe(nn.Module):
    """Records the domains it was given; returns (x, domains) as aux."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, domains=None):
        self.seen.append(domains)
        return x, domains


def _net():
    torch.manual_seed(0)
    return ReIDNet(build_backbone("resnet_tiny"), num_ids=5)


def test_stage_channels_match_the_stages_outputs():
    net = _net()
    shapes = {}
    for name in net.stage_names():
        net.backbone.get_submodule(name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, o.shape[1]))
    net.eval()(torch.rand(1, 3, 64, 32))
    assert net.stage_channels(image_size=(64, 32)) == shapes


def test_block_gets_the_domains_of_the_call_only():
    net, probe = _net(), Probe()
    net.insert_after("layer2", probe)
    d = torch.tensor([0, 0, 1, 1])
    out = net(torch.rand(4, 3, 64, 32), domains=d)
    assert torch.equal(probe.seen[-1], d) and out.logits.shape == (4, 5)
    assert torch.equal(list(net.aux().values())[0], d)
    net.eval()(torch.rand(2, 3, 64, 32))               # no context: the block gets None
    assert probe.seen[-1] is None
    assert all(b.context == {} for b in net.modules() if isinstance(b, StageBlock))


def test_context_is_cleared_when_the_forward_raises():
    net = _net()
    net.insert_after("layer1", Probe())
    with pytest.raises(ValueError):
        net(torch.rand(4, 3, 64, 32, dtype=torch.float64).long(), domains=torch.zeros(4))
    assert all(b.context == {} for b in net.modules() if isinstance(b, StageBlock))


def test_keywords_a_block_does_not_accept_are_not_passed():
    sb = StageBlock(nn.Identity())
    sb.context = {"domains": torch.zeros(2)}
    assert sb(torch.ones(2, 3)).shape == (2, 3)


@settings(max_examples=6, deadline=None)
@given(stage=st.sampled_from(["layer1", "layer2", "layer3"]), b=st.sampled_from([4, 6]))
def test_cross_domain_style_in_a_stage_keeps_shapes_and_is_identity_in_eval(stage, b):
    net = _net()
    ref = _net()
    net.insert_after(stage, CrossDomainStyle(num_domains=2))
    x, d = torch.rand(b, 3, 64, 32), torch.arange(b) % 2
    net.eval(), ref.eval()
    torch.testing.assert_close(net(x), ref(x))          # eval: the style block is the identity
    assert net.train()(x, domains=d).feat_pre_bn.shape == (b, net.dim)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="backbone"):
        ReIDNet(nn.Linear(2, 2), num_ids=3)
    with pytest.raises(ValueError, match="block"):
        StageBlock(3)
    with pytest.raises(ValueError, match="name"):
        _net().insert_after("layer9", nn.Identity())
