"""Method: the state_dict is everything exact resume needs; configured hyper-parameters win on
resume; stages are validated; the clock rule; LocalContext; seeded construction."""

import copy
import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dgblocks.methods import Batch, LocalContext, Method, Stage, TrainConfig
from dgblocks.methods.optim import OptimizerSlot, build_optimizer
from tests.recipes._build import fake_bench


class Toy(Method):
    """A linear classifier with dropout, a generator draw and a GRL clock in every step."""

    def __init__(self, cfg, bench, *, seed=0):
        super().__init__(cfg, bench, seed=seed)
        from dgblocks.layers import DannSchedule, GradientReversal

        self.lin = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 3))
        self.grl = GradientReversal(schedule=DannSchedule(max_steps=10))

    def configure_optimizers(self):
        return {"main": self.make_optimizer(self.lin.parameters())}

    def update(self, batch):
        x, y = batch.images, batch.pids
        x = x + 0.01 * torch.rand(x.shape, generator=self.generator("noise", device="cpu"))
        loss = nn.functional.cross_entropy(self.lin(self.grl(x)), y)
        self.minimize(loss)
        self.state["n"] = self.state.get("n", 0) + 1
        return {"loss": loss.detach()}

    def encode(self, x):
        return self.lin(x)


def _batch(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.zeros(6, dtype=torch.long)
    return Batch(torch.randn(6, 4, generator=g), torch.arange(6) % 3, z, z, z)


def _toy(**cfg):
    torch.manual_seed(0)
    return Toy(TrainConfig(**({"steps": 8, "lr": 0.05} | cfg)), fake_bench(num_ids=3))


def test_state_dict_is_all_exact_resume_needs():
    a = _toy()
    for s in range(3):
        a.step(_batch(s))
    saved = copy.deepcopy(a.state_dict())  # (state_dict tensors alias the live ones)
    torch.manual_seed(1)  # the RNGs a resumed run restores (dropout draws)
    for s in range(3, 6):
        a.step(_batch(s))
    b = _toy()
    b.load_state_dict(saved)
    torch.manual_seed(1)
    for s in range(3, 6):
        b.step(_batch(s))
    for (n, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        if isinstance(p, torch.Tensor):
            assert torch.equal(p, q), n
    assert a.state == b.state == {"n": 6}
    assert a.lr() == b.lr() and int(a.grl.schedule.steps) == 6


def test_configured_learning_rate_wins_on_resume():
    a = _toy(lr=0.05)
    for s in range(4):
        a.step(_batch(s))
    b = _toy(lr=0.01)                        # --resume-changed --lr 0.01
    b.load_state_dict(a.state_dict())
    assert b.lr() == pytest.approx(a.lr() * 0.01 / 0.05)
    c = _toy(lr=0.05)                        # unchanged: bit for bit as saved
    c.load_state_dict(a.state_dict())
    assert c.lr() == a.lr()


def test_optimizer_slot_keeps_other_hyper_parameters_from_the_config():
    cfg = TrainConfig(steps=4, optimizer="sgd", momentum=0.9, weight_decay=1e-3)
    p = nn.Parameter(torch.ones(2))
    slot = OptimizerSlot(*build_optimizer([p], cfg))
    other = OptimizerSlot(*build_optimizer([p], dataclasses.replace(cfg, momentum=0.5,
                                                                     weight_decay=0.0)))
    other.load(slot.optimizer.state_dict(), slot.scheduler.state_dict())
    g = other.optimizer.param_groups[0]
    assert g["momentum"] == 0.5 and g["weight_decay"] == 0.0


def test_extra_state_of_another_method_is_refused():
    with pytest.raises(ValueError, match="state"):
        _toy().set_extra_state({"nothing": 1})
    state = _toy().get_extra_state()
    state["optimizers"]["other"] = state["optimizers"]["main"]
    with pytest.raises(ValueError, match="other"):
        _toy().set_extra_state(state)


def test_clocks_advance_once_per_clocked_step():
    m = _toy()
    m.stage = Stage("pre", 3, clocks=False)
    m.step(_batch(0))
    assert int(m.grl.schedule.steps) == 0 and m.ctx.step == 1
    m.stage = Stage("train", 3)
    m.step(_batch(1))
    assert int(m.grl.schedule.steps) == 1 and m.ctx.step == 2


@pytest.mark.parametrize("kw,name", [({"name": ""}, "name"), ({"steps": -1}, "steps"),
                                     ({"sampler": "x"}, "sampler"),
                                     ({"batch_size": 0}, "batch_size"),
                                     ({"update": 3}, "update"), ({"cache": "abc"}, "cache")])
def test_stage_rejects_bad_fields_by_name(kw, name):
    with pytest.raises(ValueError, match=name):
        Stage(**({"name": "s", "steps": 1} | kw))


def test_method_rejects_bad_construction():
    with pytest.raises(ValueError, match="cfg"):
        Toy({"steps": 3}, fake_bench())
    with pytest.raises(ValueError, match="bench"):
        Toy(TrainConfig(), object())
    with pytest.raises(ValueError, match="seed"):
        Toy(TrainConfig(), fake_bench(), seed="1")


@settings(max_examples=10, deadline=None)
@given(parts=st.lists(st.integers(0, 100), min_size=1, max_size=3))
def test_seeded_builds_alike_and_leaves_the_global_rng_alone(parts):
    m = _toy()
    state = torch.get_rng_state()
    with m.seeded(*parts):
        a = nn.Linear(3, 3)
    torch.manual_seed(123)                 # whatever ran before: the same network
    with m.seeded(*parts):
        b = nn.Linear(3, 3)
    assert torch.equal(a.weight, b.weight)
    torch.set_rng_state(state)
    with m.seeded(*parts):
        nn.Linear(3, 3)
    assert torch.equal(torch.get_rng_state(), state)


def test_generator_state_survives_on_its_device():
    m = _toy()
    g = m.generator("ba")
    g.manual_seed(7)
    saved = m.get_extra_state()
    n = _toy()
    n.set_extra_state(saved)
    assert torch.equal(n.generator("ba").get_state(), g.get_state())


def test_local_context_makes_streams_and_rejects_non_modules(tmp_path):
    from dgblocks.protocols import build_benchmark

    bench = build_benchmark("synthetic", smoke=True)
    ctx = LocalContext(nn.Linear(2, 2), out=tmp_path / "r.json")
    x, pid, *_ = next(ctx.batches(bench.train, name="s", batch_size=8, num_instances=2))
    assert x.shape[0] == 8 and pid.unique().numel() == 4
    with pytest.raises(ValueError, match="method"):
        LocalContext(None)


class TwoStage(Toy):
    """Toy with a warm-up optimiser ("init", stage "init") before the main one."""

    def configure_optimizers(self):
        return {"init": self.make_optimizer(self.lin.parameters(), lr=0.3),
                "main": self.make_optimizer(self.lin.parameters())}

    def update(self, batch):
        name = "init" if self.stage is not None and self.stage.name == "init" else "main"
        self.minimize(nn.functional.cross_entropy(self.lin(batch.images), batch.pids), name)
        return {}


def test_lr_defaults_to_the_optimiser_the_current_stage_steps():
    torch.manual_seed(0)
    m = TwoStage(TrainConfig(steps=8, lr=0.05, warmup=0.0, schedule="constant"),
                 fake_bench(num_ids=3))
    assert m.lr() == pytest.approx(0.3)            # before any step: the first optimiser
    for name in ("init", "train"):
        m.stage = Stage(name, 2)
        m.step(_batch(0))
        assert m.lr() == pytest.approx(0.3 if name == "init" else 0.05), name
    assert m.lr("init") == pytest.approx(0.3)      # a name still wins
