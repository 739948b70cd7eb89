"""benchmarks/kernels.py: without a CUDA device it times nothing and says so in its JSON."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import kernels as bench


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU path only")
def test_without_cuda_writes_a_skip_record(tmp_path, capsys):
    path = bench.main(tmp_path / "kernels.json")
    data = json.loads(path.read_text())
    assert data["cuda"] is None and data["skipped"] == "no CUDA GPU"
    assert data["rows"] == [] and data["meta"]["torch"] == torch.__version__
    assert "skipped" in capsys.readouterr().out


def test_suite_sizes_are_reid_sizes():
    assert bench.K == 18_530 and bench.D == 2048 and bench.BATCHES == (64, 256)
