"""Engine speed switches on the CPU: metrics reach the host only every --log-every steps,
--amp bf16 runs a recipe's steps under autocast with finite losses, --compile runs (aot_eager)."""

import math

import pytest
import torch
from torch.utils.data import TensorDataset

from dgblocks.engine import accel, logging, read_jsonl, setup


def _run(tmp_path, *flags):
    return setup(None, ["--out", str(tmp_path / "r.json"), "--device", "cpu", "--no-plots",
                        "--ckpt-every", "1000", *flags], name="t")[1]


def test_metrics_reach_the_host_only_every_log_every(tmp_path, monkeypatch):
    converted = []
    real = logging._scalar
    monkeypatch.setattr(logging, "_scalar", lambda v: converted.append(v) or real(v))
    run = _run(tmp_path, "--log-every", "5")
    data = TensorDataset(torch.randn(40, 3), torch.arange(40))
    batches = run.batches(data, batch_size=4, sampler="random")
    for _step, (x, _y) in run.steps(batches, total=12):
        run.log(loss=x.sum(), norm=x.norm())           # tensors: no .item() in the loop
    assert len(converted) == 2 * 4                       # steps 0, 5, 10 and the last, 11
    assert [r["step"] for r in read_jsonl(run.out.with_suffix(".metrics.jsonl"))] == [0, 5, 10, 11]


def test_steps_run_under_the_amp_autocast(tmp_path):
    run = _run(tmp_path, "--amp", "bf16")
    batches = run.batches(TensorDataset(torch.randn(8, 4)), batch_size=4, sampler="random")
    for _step, (x,) in run.steps(batches, total=2):
        assert (x @ torch.randn(4, 4)).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")          # restored after the loop


def test_autocast_rejects_unknown_modes():
    with pytest.raises(ValueError, match="amp"):
        accel.autocast("cpu", "fp8")


def test_sync_debug_is_a_no_op_off_cuda():
    with accel.sync_debug("cpu"):
        assert torch.ones(1).item() == 1


def _finite_losses(out):
    records = [r for r in read_jsonl(out.with_suffix(".metrics.jsonl")) if "loss" in r]
    assert records and all(math.isfinite(r["loss"]) for r in records)


def test_baseline_smoke_with_amp_bf16(tmp_path):
    from recipes import baseline

    out = tmp_path / "amp" / "results.json"
    res = baseline.main(["--smoke", "--no-plots", "--device", "cpu", "--amp", "bf16",
                         "--log-every", "1", "--out", str(out)])
    _finite_losses(out)
    assert math.isfinite(res["summary"]["average"]["mAP"])


def test_baseline_smoke_with_compile(tmp_path):
    from recipes import baseline

    out = tmp_path / "compiled" / "results.json"
    try:
        baseline.main(["--smoke", "--no-plots", "--device", "cpu", "--compile",
                       "--compile-backend", "aot_eager", "--steps", "3", "--out", str(out)])
    finally:
        torch._dynamo.reset()
    _finite_losses(out)
