"""benchmarks/blocks.py: every case agrees with its reference; the runner writes the row format."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import _meta
from benchmarks.blocks import ROW_FORMAT, SPECS, main, run
from benchmarks.blocks_case import Case, agreement, step

REFERENCES = [s for s in SPECS if s.reference is not None]


def test_every_public_block_has_a_spec():
    from dgblocks import layers, losses

    covered = {s.block.split("(")[0] for s in SPECS}
    public = {f"losses.{n}" for n in losses.__all__}
    public |= {f"layers.{n}" for n in layers.__all__ if not n.endswith("Output")}
    assert public <= covered, sorted(public - covered)
    for extra in ("sampling.BackdoorAdjustment", "memory.IDPool.update",
                  "distances.euclidean_distance"):
        assert extra in covered


@pytest.mark.parametrize("spec", REFERENCES, ids=[s.block for s in REFERENCES])
def test_ours_agrees_with_the_reference_on_the_tiny_inputs(spec):
    diff = agreement(spec.build(**spec.tiny))
    assert diff is not None and diff <= spec.tol, f"{spec.block}: max rel diff {diff:.2e}"


def test_agreement_detects_a_wrong_reference():
    x = torch.randn(4, 3, requires_grad=True)
    ok = Case(lambda: x.exp().sum(), lambda: x.exp().sum(), [x])
    wrong_value = Case(lambda: x.exp().sum(), lambda: x.exp().sum() * 1.001, [x])
    wrong_grad = Case(lambda: x.exp().sum(), lambda: x.exp().sum() + (x - x.detach()).sum(), [x])
    assert agreement(ok) == 0.0
    assert agreement(wrong_value) > 1e-4
    assert agreement(wrong_grad) > 1e-2
    with pytest.raises(ValueError, match="reference: expected"):
        agreement(Case(lambda: x.exp(), lambda: x.exp().T, [x]))


def test_step_runs_the_backward_and_clears_the_grads():
    x = torch.randn(5, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.clone()))
    step(lambda: x * 2, [x])
    assert len(seen) == 1 and x.grad is None


def test_tiny_run_rows_follow_the_documented_format():
    specs = [s for s in SPECS if s.block in ("losses.TripletLoss", "layers.ConstantSchedule")]
    rows = run(specs, mode="tiny", min_run_time=0.001)
    assert len(rows) == 2
    for row in rows:
        assert set(row) == set(ROW_FORMAT)
        assert row["ours_median_s"] > 0 and row["ours_cpu_s"] >= 0
    trip, const = rows
    assert trip["pass"] == "forward+backward" and const["pass"] == "forward"
    assert trip["ratio"] == pytest.approx(trip["reference_median_s"] / trip["ours_median_s"])
    assert trip["max_rel_diff"] < 1e-5
    assert const["reference"] is None and const["ratio"] is None
    with pytest.raises(ValueError, match="mode"):
        run(specs, mode="huge")


def test_command_line_writes_the_json(tmp_path, monkeypatch):
    monkeypatch.setattr(_meta, "RESULTS", tmp_path)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # keep the test's threads
    main(["--quick", "--only", "ConsistencyLoss", "--min-run-time", "0.001", "--out", "t"])
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["suite"] == "t" and data["mode"] == "quick"
    assert [r["case"] for r in data["rows"]] == ["B=64 D=256"]
    assert len(data["load_average_1_5_15min_at_start"]) == 3
    with pytest.raises(ValueError, match="--only"):
        main(["--quick", "--only", "NoSuchBlock"])
