"""Resume refuses a checkpoint written with other settings (naming the flags), the metrics
log has no duplicate lines after a resume, and what ran is recorded."""

from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dgblocks.engine import arg, read_jsonl, setup
from dgblocks.engine.resume import ResumeError

DATA = TensorDataset(torch.randn(24, 3, generator=torch.Generator().manual_seed(0)),
                     torch.arange(24) % 4)


@dataclass
class Cfg:
    steps: int = arg(6, "steps")
    batch_size: int = arg(4, "batch size")


def _train(out, *extra, stop=None, batch=4):
    cfg, run = setup(Cfg, ["--out", str(out), "--ckpt-every", "2", "--log-every", "1",
                           "--no-plots", *extra], name="t")
    model = nn.Linear(3, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run.register(model=model, opt=opt)
    for step, (x, y) in run.steps(run.batches(DATA, batch_size=batch, sampler="random"),
                                  cfg.steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log(loss=loss)
        if step == stop:
            return run
    return run


@pytest.mark.parametrize("flags,named", [
    (["--seed", "1"], "--seed 0 -> 1"), (["--steps", "8"], "--steps 6 -> 8"),
    (["--batch-size", "8"], "--batch-size 4 -> 8"),
])
def test_resume_with_other_settings_is_refused_naming_the_flags(tmp_path, flags, named):
    out = tmp_path / "r.json"
    _train(out, stop=3)
    with pytest.raises(ResumeError, match=named):
        _train(out, "--resume", "auto", *flags)
    with pytest.warns(RuntimeWarning, match=named):  # the explicit override
        run = _train(out, "--resume", "auto", "--resume-changed", *flags)
    assert run.step == (8 if "--steps" in flags else 6)


def test_resume_with_only_logistics_changed_is_allowed(tmp_path):
    out = tmp_path / "r.json"
    _train(out, stop=3)
    _train(out, "--resume", "auto", "--threads", "1", "--log-every", "2", "--ckpt-every", "3")


@pytest.mark.parametrize("stop", [0, 1, 3, 4])
def test_metrics_log_has_no_duplicate_lines_after_resume(tmp_path, stop):
    """A kill before the first checkpoint used to leave a duplicated step-0 line."""
    out = tmp_path / "r.json"
    _train(out, stop=stop)
    _train(out, "--resume", "auto")
    steps = [r["step"] for r in read_jsonl(out.with_suffix(".metrics.jsonl"))]
    assert steps == list(range(6))


def test_effective_batch_size_is_recorded(tmp_path):
    run = _train(tmp_path / "r.json", "--batch-size", "6", batch=4)
    assert run.effective == {"batch_size": 4}
