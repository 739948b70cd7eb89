"""DDAN's Table 2 and Table 4 from a sweep folder: means over seeds, the All-domains row."""

import json

import pytest

from scripts.ddan_tables import main


def _write(out, variant, seed, d, cos, all_row=None):
    p = out / variant / f"seed{seed}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({
        "seed": seed, "domain_names": ["a", "b"], "cosine": cos, "ot_all_domains": all_row,
        "ot": {"emd": {"central": "a", "distances": [[0, d], [d, 0]]}}}))


def test_tables_average_over_seeds(tmp_path):
    _write(tmp_path, "da", 0, 0.2, [[1, 0.5], [0.5, 1]])
    _write(tmp_path, "da", 1, 0.4, [[1, 0.7], [0.7, 1]])
    _write(tmp_path, "all", 0, 0.2, [[1, 0.9], [0.9, 1]], all_row=[1.0, 3.0])
    text = main([str(tmp_path), "--md", str(tmp_path / "t.md")])
    assert "| a | 0.000 ± 0.000 | 0.300 ± 0.141 | 0.300 ± 0.141 |" in text
    assert "| All domains | 1.000 ± 0.000 | 3.000 ± 0.000 | 4.000 ± 0.000 |" in text
    assert "| da | 2 | 0.600 ± 0.141 | 0.600 ± 0.141 |" in text
    assert (tmp_path / "t.md").read_text() == text


def test_a_folder_without_ddan_runs_names_the_argument(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="out"):
        main([str(tmp_path)])
