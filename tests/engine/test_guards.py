"""Nothing lost, nothing silent: a non-finite loss stops the run at a finite checkpoint; outputs
are checked before training; results and metrics are strict, durable JSON; a corrupted
metrics file does not break a resume; the stage cache key covers how a run computes."""

import dataclasses
import errno
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dgblocks.engine import NonFiniteLoss, arg, fit, load_checkpoint, read_jsonl, setup
from dgblocks.engine.outputs import OutputError, check_writable
from dgblocks.engine.results import write_json
from dgblocks.engine.stage_cache import settings_key, stage_key
from dgblocks.methods import Method, Stage

DATA = TensorDataset(torch.randn(32, 3, generator=torch.Generator().manual_seed(0)),
                     torch.arange(32) % 4)


@dataclasses.dataclass
class Cfg:
    steps: int = arg(8, "steps")
    nan_at: int = arg(-1, "the step whose loss is NaN (-1: none)")


class Lin(Method):
    def __init__(self, cfg, bench, *, seed=0):
        super().__init__(cfg, bench, seed=seed)
        self.lin = nn.Linear(3, 4)

    def stages(self):
        return [Stage("train", self.cfg.steps, data=DATA, sampler="random", batch_size=4)]

    def configure_optimizers(self):
        return {"main": (torch.optim.SGD(self.lin.parameters(), lr=0.1), None)}

    def update(self, batch):
        x, y = batch
        l_ce = nn.functional.cross_entropy(self.lin(x), y)
        l_bad = torch.zeros(()) * (math.nan if self.ctx.step == self.cfg.nan_at else 1.0)
        loss = l_ce + l_bad
        self.minimize(loss)
        return {"loss": loss.detach(), "l_ce": l_ce.detach(), "l_bad": l_bad.detach()}


def _fit(tmp_path, *flags):
    cfg, run = setup(Cfg, ["--out", str(tmp_path / "r.json"), "--no-plots", *flags], name="t")
    run.bench = SimpleNamespace(num_ids=4, name="t")
    m = Lin(cfg, run.bench)
    fit(m, run)
    return m, run


def test_nan_stops_the_run_naming_step_and_term_and_keeps_a_finite_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLoss, match=r"step 3: loss term 'loss'|step 3: loss term 'l_bad'"):
        _fit(tmp_path, "--nan-at", "3", "--ckpt-every", "2", "--log-every", "4")
    ck = load_checkpoint(tmp_path / "r.ckpt.pt")
    assert ck["step"] == 2                                   # the last finite one
    assert all(torch.isfinite(v).all() for v in ck["objects"]["method"].values()
               if isinstance(v, torch.Tensor) and v.is_floating_point())
    text = (tmp_path / "r.metrics.jsonl").read_text()
    assert "NaN" not in text                                  # strict JSON: null


def test_a_finite_run_is_unaffected(tmp_path):
    m, _ = _fit(tmp_path, "--ckpt-every", "2")
    assert load_checkpoint(tmp_path / "r.ckpt.pt")["step"] == 8 and m.lr() == 0.1


def test_a_fresh_run_never_destroys_an_earlier_runs_files(tmp_path):
    _fit(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(OutputError, match="--resume auto.*--overwrite"):
        _fit(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    _fit(tmp_path, "--resume", "auto")                      # continuing it is fine
    _fit(tmp_path, "--overwrite")                           # and so is replacing it


def test_unwritable_outputs_are_refused_before_training(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="--out"):
        setup(Cfg, ["--out", str(tmp_path / "file" / "r.json")], name="t")
    with pytest.raises(OutputError, match="folder"):
        setup(Cfg, ["--out", str(tmp_path)], name="t")
    real = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match="No space left"):
        check_writable(tmp_path / "d", flag="--out")
    monkeypatch.setattr(os, "fsync", real)
    assert not [p for p in (tmp_path / "d").iterdir()]        # the probe is removed


def test_results_json_is_strict_and_leaves_no_temp_file(tmp_path):
    path = write_json(tmp_path / "r.json", {"a": float("nan"), "b": (1, Path("x")),
                                            "c": torch.tensor([1.5, float("inf")])})
    assert json.loads(path.read_text()) == {"a": None, "b": [1, "x"], "c": [1.5, None]}
    with pytest.raises(ValueError, match=r"payload\.bad"):
        write_json(tmp_path / "s.json", {"bad": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_random_bytes_in_the_metrics_file_do_not_break_a_resume(tmp_path):
    _fit(tmp_path, "--ckpt-every", "4", "--log-every", "1")
    metrics = tmp_path / "r.metrics.jsonl"
    good = read_jsonl(metrics)
    with metrics.open("ab") as f:
        f.write(os.urandom(300) + b"\n\xff\xfe{not json\n")
    assert read_jsonl(metrics) == good
    _fit(tmp_path, "--resume", "auto")                       # resumes (all done), no error


def _key(**over):
    args = SimpleNamespace(data="synthetic", data_root="", protocol="", smoke=True, seed=0,
                           amp="none", compile=False, compile_backend="inductor", threads=0,
                           deterministic=False)
    for k, v in over.items():
        setattr(args, k, v)
    bench = SimpleNamespace(name="b", domain_names=["a"], num_ids=4, train=DATA)
    run = SimpleNamespace(args=args, bench=bench, image_size=(64, 32),
                          device=torch.device(over.pop("device", "cpu")),
                          dist=SimpleNamespace(world_size=1))
    m = Lin(Cfg(), bench)
    return settings_key(stage_key(run, m, m.stages()[0]))


def test_stage_cache_key_covers_how_the_stage_computes():
    base = _key()
    for over in ({"threads": 2}, {"amp": "bf16"}, {"device": "cuda"}, {"compile": True},
                 {"deterministic": True}, {"seed": 1}, {"smoke": False}):
        assert _key(**over) != base, over
    assert _key() == base
