"""Run and the engine's loop (``fit``): a two-stage method resumes exactly from a kill inside
either stage or at their boundary (in-process; the SIGKILL tests of the recipes live in
tests/recipes/)."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dgblocks.engine import arg, fit, read_jsonl, setup
from dgblocks.methods import Method, Stage


@dataclass
class Cfg:
    steps_a: int = arg(5, "stage A steps")
    steps_b: int = arg(7, "stage B steps")


DATA = TensorDataset(torch.randn(24, 3, generator=torch.Generator().manual_seed(0)),
                     torch.arange(24) % 4)


class Killed(Exception):
    """Abandons a run where a kill would."""


class TwoStage(Method):
    """Dropout, torch.rand and a method generator in every step; a value computed between
    the stages; ``stop`` = (stage, step) raises there, as a kill would."""

    def __init__(self, cfg, bench, *, seed=0, stop=None):
        super().__init__(cfg, bench, seed=seed)
        self.model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.3), nn.Linear(8, 4))
        self.stop = stop

    def stages(self):
        return [Stage(n, k, data=DATA, sampler="random", batch_size=4)
                for n, k in (("a", self.cfg.steps_a), ("b", self.cfg.steps_b))]

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        return {"main": (opt, torch.optim.lr_scheduler.StepLR(opt, 3, 0.5))}

    def update(self, batch):
        if self.stop == (self.stage.name, self.ctx.step):
            raise Killed
        x, y = batch
        gen = self.generator("noise", 1, device="cpu")
        noise = torch.rand(x.shape) * 0.01 + torch.rand(1, generator=gen) * 0.01
        loss = nn.functional.cross_entropy(self.model(x + noise), y)
        self.minimize(loss)
        return {"loss": loss.detach()}

    def end_stage(self, stage):
        if stage.name == "a":
            self.state["between"] = float(self.model[0].weight.detach().sum())


def _train(tmp_path, *, resume=False, stop=None):
    out = tmp_path / "r.json"
    argv = ["--out", str(out), "--ckpt-every", "2", "--log-every", "1", "--seed", "5",
            "--no-plots"] + (["--resume", "auto"] if resume else [])
    cfg, run = setup(Cfg, argv, name="t")
    run.bench = SimpleNamespace(num_ids=4, name="t")
    method = TwoStage(cfg, run.bench, seed=5, stop=stop)
    try:
        fit(method, run)
    except Killed:
        return None, run, method
    return [p.detach().clone() for p in method.parameters()], run, method


@pytest.mark.parametrize("stop", [("a", 2), ("a", 4), ("b", 0), ("b", 5), ("b", 6)])
def test_resume_matches_uninterrupted(tmp_path, stop):
    ref, ref_run, ref_m = _train(tmp_path / "ref")
    _train(tmp_path / "k", stop=stop)
    got, run, m = _train(tmp_path / "k", resume=True)
    for a, b in zip(ref, got):
        assert torch.equal(a, b)
    assert m.state["between"] == ref_m.state["between"]
    recs = read_jsonl(run.out.with_suffix(".metrics.jsonl"))
    ref_recs = read_jsonl(ref_run.out.with_suffix(".metrics.jsonl"))
    assert [(r["phase"], r["step"]) for r in recs] == [(r["phase"], r["step"]) for r in ref_recs]
    assert [r["loss"] for r in recs] == [r["loss"] for r in ref_recs]


def test_finished_run_resumes_to_the_end(tmp_path):
    ref, _, _ = _train(tmp_path)
    got, _, _ = _train(tmp_path, resume=True)  # every stage done: nothing trains
    assert all(torch.equal(a, b) for a, b in zip(ref, got))


def test_register_rejects_plain_objects(tmp_path):
    _, run = setup(None, ["--out", str(tmp_path / "x.json")], name="t")
    with pytest.raises(ValueError, match="thing"):
        run.register(thing=3)
    assert run.progress == 0.0


def test_explicit_resume_of_missing_file_raises(tmp_path):
    with pytest.raises(RuntimeError, match="missing.pt"):
        setup(None, ["--out", str(tmp_path / "x.json"), "--resume", str(tmp_path / "missing.pt")])
