"""Every recipe's smoke run on CUDA, with step 1 of each training loop under
``torch.cuda.set_sync_debug_mode("error")`` (no host sync in a training step), plain and with
``--amp bf16``; the baseline also with ``--compile``. Skipped without a CUDA device."""

import importlib
import math

import pytest
import torch

from dgblocks.engine import read_jsonl

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

RECIPES = ("baseline", "dir_reid", "ddan", "cdvm", "episodic", "adin")


def _main(name, tmp_path, *flags):
    out = tmp_path / name / "results.json"
    argv = ["--smoke", "--device", "cuda", "--no-plots", "--ckpt-every", "1000",
            "--out", str(out), *flags]
    res = importlib.import_module(f"recipes.{name}").main(argv)
    losses = [v for r in read_jsonl(out.with_suffix(".metrics.jsonl"))
              for k, v in r.items() if k.startswith(("loss", "l_")) and isinstance(v, float)]
    assert losses and all(math.isfinite(v) for v in losses), name
    return res


@pytest.mark.parametrize("amp", ["none", "bf16"])
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_step_on_cuda_without_host_sync(name, amp, tmp_path, monkeypatch):
    monkeypatch.setenv("DGBLOCKS_SYNC_DEBUG_STEP", "1")
    res = _main(name, tmp_path, "--amp", amp)
    assert math.isfinite(res["summary"]["average"]["mAP"])


def test_baseline_compiled_on_cuda(tmp_path):
    try:
        _main("baseline", tmp_path, "--compile")
    finally:
        torch._dynamo.reset()
