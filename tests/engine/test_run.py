"""Run: the checkpointing step loop resumes exactly (in-process; the SIGKILL test of the
baseline recipe lives in tests/recipes/test_baseline.py)."""

from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dgblocks.engine import arg, read_jsonl, setup


@dataclass
class Cfg:
    steps_a: int = arg(5, "phase A steps")
    steps_b: int = arg(7, "phase B steps")


DATA = TensorDataset(torch.randn(24, 3, generator=torch.Generator().manual_seed(0)),
                     torch.arange(24) % 4)


def _train(tmp_path, *, resume=False, stop=None):
    """Two phases; the step uses dropout, torch.rand and a registered generator. ``stop``
    (phase, step) abandons the run there, as a kill would."""
    out = tmp_path / "r.json"
    argv = ["--out", str(out), "--ckpt-every", "2", "--log-every", "1", "--seed", "5",
            "--no-plots"] + (["--resume", "auto"] if resume else [])
    cfg, run = setup(Cfg, argv, name="t")
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.3), nn.Linear(8, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 3, 0.5)
    gen = torch.Generator().manual_seed(1)
    run.register(model=model, opt=opt, sched=sched, gen=gen)
    for phase, total in (("a", cfg.steps_a), ("b", cfg.steps_b)):
        if phase == "b":
            run.cached("between", lambda: float(model[0].weight.detach().sum()))
        batches = run.batches(DATA, batch_size=4, sampler="random")
        for step, (x, y) in run.steps(batches, total, phase=phase):
            noise = torch.rand(x.shape) * 0.01 + torch.rand(1, generator=gen) * 0.01
            loss = nn.functional.cross_entropy(model(x + noise), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            run.log(loss=loss)
            if stop == (phase, step):
                return None, run
    return [p.detach().clone() for p in model.parameters()], run


@pytest.mark.parametrize("stop", [("a", 2), ("a", 4), ("b", 0), ("b", 5), ("b", 6)])
def test_resume_matches_uninterrupted(tmp_path, stop):
    ref, ref_run = _train(tmp_path / "ref")
    _, killed = _train(tmp_path / "k", stop=stop)
    got, run = _train(tmp_path / "k", resume=True)
    for a, b in zip(ref, got):
        assert torch.equal(a, b)
    assert run.state["between"] == ref_run.state["between"]
    recs = read_jsonl(run.out.with_suffix(".metrics.jsonl"))
    ref_recs = read_jsonl(ref_run.out.with_suffix(".metrics.jsonl"))
    assert [(r["phase"], r["step"]) for r in recs] == [(r["phase"], r["step"]) for r in ref_recs]
    assert [r["loss"] for r in recs] == [r["loss"] for r in ref_recs]


def test_finished_run_resumes_to_the_end(tmp_path):
    ref, _ = _train(tmp_path)
    got, run = _train(tmp_path, resume=True)  # every phase done: nothing trains
    run.restore_finished()
    assert all(torch.equal(a, b) for a, b in zip(ref, got))


def test_register_rejects_plain_objects(tmp_path):
    _, run = setup(None, ["--out", str(tmp_path / "x.json")], name="t")
    with pytest.raises(ValueError, match="thing"):
        run.register(thing=3)
    assert run.progress == 0.0


def test_explicit_resume_of_missing_file_raises(tmp_path):
    with pytest.raises(RuntimeError, match="missing.pt"):
        setup(None, ["--out", str(tmp_path / "x.json"), "--resume", str(tmp_path / "missing.pt")])
