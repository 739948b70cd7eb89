"""scripts/make_performance.py: docs/performance.md from the benchmark JSONs (committed ones,
synthetic ones for every section, missing and malformed files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scripts.make_performance import CUDA_NOTE, main, render
from scripts.performance_sections import SECTIONS, secs

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
META = {"commit": "abc1234", "date_utc": "2026-01-01T00:00:00Z", "processor": "x86_64",
        "cpu_count": 2, "torch": "2.13.0+cpu", "torch_threads": 2, "cuda": None}


def a_number(name: str, d: dict) -> str:
    """A number of the JSON that its section must show."""
    if name == "eval_ranking":
        return f"{d['speedup']:.1f}x"
    if name == "eval_streaming":
        return f"{d['rows'][1]['peak_rss_gb']:.2f} GB"
    if name == "id_pool":
        return f"update {d['update_speedup']:.1f}x"
    if name == "central_domain":
        return secs(d["rows"][0]["median_s"])
    if name == "blocks":
        return secs(d["rows"][0]["ours_median_s"])
    if name == "dg_overhead":
        return f"{d['rows'][0]['overhead_excl_passes']:+.1%}"
    if name == "loader":
        return f"| {d['rows'][0]['images_per_s']:.1f} | 1.00 |"
    return f"{d['rows'][0]['images_per_s']:.1f}"


def test_committed_jsons_render_with_their_numbers(tmp_path):
    out = main(["--results", str(RESULTS), "--out", str(tmp_path / "performance.md")])
    text = out.read_text()
    assert text.startswith("# Performance\n") and "## CUDA" in text
    for name, (title, command, _) in SECTIONS.items():
        assert f"## {title}\n" in text
        path = RESULTS / f"{name}.json"
        if path.exists():
            d = json.loads(path.read_text())
            assert command in text and d["meta"]["commit"] in text
            assert a_number(name, d) in text, name
        else:
            assert f"`benchmarks/results/{name}.json` is missing" in text
    assert "Could not read" not in text
    assert render(RESULTS) == text                     # deterministic


def _fake(tmp_path: Path) -> Path:
    """A results folder with a small JSON for every section."""
    rows = {
        "blocks": [{"block": "losses.TripletLoss", "case": "B=64 D=256", "pass": "forward+backward",
                    "ours_median_s": 0.00123, "reference_median_s": 0.0369, "ratio": 30.0,
                    "cpu_ratio": 29.0, "max_rel_diff": 1e-7},
                   {"block": "layers.BNNeck", "case": "B=64", "pass": "forward+backward",
                    "ours_median_s": 0.002, "reference_median_s": 0.001, "ratio": 0.5,
                    "cpu_ratio": 0.5, "max_rel_diff": 0.0}],
        "eval_ranking": [{"case": "m", "impl": "ours", "threads": 2, "median_s": 0.3}],
        "eval_streaming": [{"path": "full", "seconds": 100.0, "peak_rss_gb": 12.2,
                            "rss_after_setup_gb": 0.9, "mAP": 0.13, "R1": 0.5},
                           {"path": "streaming", "seconds": 80.0, "peak_rss_gb": 1.75,
                            "rss_after_setup_gb": 0.9}],
        "central_domain": [{"method": "sliced", "median_s": 1.5}],
        "id_pool": [{"op": "update", "impl": "dgblocks", "median_s": 0.006}],
        "dg_overhead": [{"recipe": "ddan", "backbone": "mobilenetv2", "plain_median_s": 10.0,
                         "dg_median_s": 12.5, "ratio": 1.25, "passes": 1.15,
                         "overhead_excl_passes": 0.10, "meets_goal": True,
                         "passes_note": "one backbone", "not_per_step": "stage 1",
                         "cpu_ratio": 1.2, "overhead_excl_passes_cpu": 0.05},
                        {"recipe": "cdvm", "backbone": "resnet_tiny", "plain_median_s": 2.0,
                         "dg_median_s": 20.0, "ratio": 10.0, "passes": 4.0,
                         "overhead_excl_passes": 6.0, "meets_goal": False,
                         "passes_note": "meta", "not_per_step": "none",
                         "cpu_ratio": 9.0, "overhead_excl_passes_cpu": 5.0}],
        "throughput": [{"method": "baseline (AGG)", "train_seconds": 20.0, "images_per_s": 48.0,
                        "ratio_vs_baseline": 1.0},
                       {"method": "DDAN", "train_seconds": 40.0, "images_per_s": 24.0,
                        "ratio_vs_baseline": 0.5}],
        "loader": [{"case": c, "workers": w, "images": 64, "median_s": 0.1, "iqr_s": 0.01,
                    "images_per_s": v, "ratio_vs_pil": v / 2000.0}
                   for c, w, v in (("pil_decode", None, 2000.0), ("load_image", None, 1500.0),
                                   ("batches_w0", 0, 1000.0), ("batches_w2", 2, 1800.0))],
    }
    extra = {"eval_ranking": {"speedup": 12.34}, "id_pool": {"update_speedup": 4.5},
             "eval_streaming": {"identical_results": True, "goal_peak_rss_gb": 2.5,
                                "problem": {"num_q": 11659, "num_g": 82161}},
             "central_domain": {"goal_fast_methods_under_10s": True},
             "dg_overhead": {"setting": {"name": "issue", "size": [256, 128]}}}
    for name, r in rows.items():
        d = {"suite": name, "meta": META, "rows": r, **extra.get(name, {}),
             "load_average_1_5_15min_at_end": [1.0, 2.0, 3.0]}
        (tmp_path / f"{name}.json").write_text(json.dumps(d))
    return tmp_path


def test_every_section_shows_its_numbers_and_goal(tmp_path):
    text = render(_fake(tmp_path))
    assert "| [Blocks](#blocks) | ratio >= 0.8 vs naive reference (CPU) | 1 / 2 rows | no |" in text
    assert "layers.BNNeck (B=64, 0.50)" in text
    assert "| [Evaluation ranking](#evaluation-ranking) | >= 10x vs per-query loop | 12.3x | yes |" \
        in text
    assert "| streaming < 2.5 GB, no slower than full | 1.75 GB, 80.00 s (full 12.20 GB, " \
        "100.00 s) | yes |" in text and "11,659 queries x 82,161 gallery" in text
    assert "1 / 2 recipes (CPU time: 1 / 2) | no |" in text and "+600.0%" in text
    assert "Meeting the goal (wall time): ddan; by CPU time: ddan." in text
    assert "| 9.00 | +500.0% | no |" in text
    assert "| DDAN | 40.0 | 24.0 | 0.50 |" in text and "lowest 0.50 of AGG" in text
    assert "| [Input pipeline](#input-pipeline) | decode >= 0.5x Pillow loop; 2 workers >= 0 | " \
        "0.75x; 1.80x | yes |" in text and "| batches_w2 | 2 | 1800.0 | 0.90 |" in text
    assert "load average (1 / 5 / 15 min) end 1.0 / 2.0 / 3.0" in text
    assert CUDA_NOTE in text


def test_missing_and_malformed_files_get_notes(tmp_path):
    shutil.copy(RESULTS / "eval_ranking.json", tmp_path / "eval_ranking.json")
    (tmp_path / "id_pool.json").write_text(json.dumps({"suite": "id_pool", "meta": META}))
    (tmp_path / "kernels.json").write_text(json.dumps({"cuda": "NVIDIA H100", "rows": []}))
    text = render(tmp_path)
    assert "`benchmarks/results/dg_overhead.json` is missing" in text
    assert "`benchmarks/results/blocks.json` is missing" in text
    assert "Could not read `id_pool.json` (KeyError" in text
    assert "Speed-up:" in text                         # the one complete JSON still renders
    assert "`kernels.json`: NVIDIA H100" in text and CUDA_NOTE not in text


def test_bad_results_folder_raises(tmp_path):
    with pytest.raises(ValueError, match="--results"):
        main(["--results", str(tmp_path / "nope"), "--out", str(tmp_path / "p.md")])
