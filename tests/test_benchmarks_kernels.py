"""benchmarks/kernels.py: eager vs torch.compile of the public blocks (the fused path)."""

from __future__ import annotations

import json

from benchmarks import kernels as bench


def test_suite_sizes_are_reid_sizes():
    assert bench.K == 18_530 and bench.D == 2048 and bench.BATCHES == (64, 256)
    assert bench.STYLE == (64, 256, 64, 32)


def test_quick_eager_run_writes_rows(tmp_path):
    path = bench.main(tmp_path / "kernels.json", quick=True, compiled=False, device="cpu")
    data = json.loads(path.read_text())
    assert data["suite"] == "kernels" and data["device"] == "cpu" and data["cuda"] is None
    assert {r["op"] for r in data["rows"]} == {"neg_entropy", "triplet_loss",
                                               "cross_domain_style"}
    for r in data["rows"]:
        assert r["impl"] == "eager" and r["median_s"] > 0 and r["abs_diff_vs_eager"] == 0
