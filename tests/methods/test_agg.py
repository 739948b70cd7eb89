"""AGG: the loss is the sum of its terms, terms a subclass adds are minimised, a sub-module with
its own optimiser is left out of the main one, the config is checked when it is built."""

import pytest
import torch

from dgblocks.methods import AGG, AGGConfig, NuisanceAdversary, owned_parameters
from dgblocks.methods.agg import iter_batches
from dgblocks.protocols import build_benchmark


def _bench():
    return build_benchmark("synthetic", smoke=True)


class WithAdversary(AGG):
    def __init__(self, cfg, bench, *, seed=0):
        super().__init__(cfg, bench, seed=seed)
        self.adv = NuisanceAdversary(in_dim=self.net.dim, sizes={"cam": 3}, loss="ne")

    def terms(self, out, batch):
        return super().terms(out, batch) | {"l_adv": 0.5 * self.adv(out.feat_pre_bn, {
            "cam": batch.camids % 3})}


def test_loss_is_the_sum_of_the_terms_and_the_step_moves_the_net():
    torch.manual_seed(0)
    bench = _bench()
    m = WithAdversary(AGGConfig(steps=4, batch_size=8), bench)
    before = m.net.backbone.conv1.weight.detach().clone()
    logs = m.step(next(iter_batches(bench, 8)))
    assert set(logs) == {"loss", "l_id", "l_tri", "l_adv"}
    torch.testing.assert_close(logs["loss"], logs["l_id"] + logs["l_tri"] + logs["l_adv"])
    assert not torch.equal(before, m.net.backbone.conv1.weight)


def test_the_main_optimiser_leaves_the_adversary_heads_out():
    m = WithAdversary(AGGConfig(steps=4, batch_size=8), _bench())
    main = {id(p) for g in m.optimizers["main"].param_groups for p in g["params"]}
    owned = owned_parameters(m)
    assert owned == {id(p) for p in m.adv.parameters()} and not main & owned
    assert main == {id(p) for p in m.parameters()} - owned


def test_config_values_are_checked_when_built():
    with pytest.raises(ValueError, match="lr"):
        AGGConfig(lr=-1.0)
    with pytest.raises(ValueError, match="schedule"):
        AGGConfig(schedule="linear")
    with pytest.raises(ValueError, match="module"):
        owned_parameters("net")
