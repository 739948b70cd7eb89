"""scripts/synthetic_gap.py runs end to end on the smoke benchmark and writes its report."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "synthetic_gap.py"


@pytest.mark.slow  # trains a CNN: about a minute on a busy 2-core machine
def test_synthetic_gap_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("synthetic_gap", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "gap.md"
    mod.main(["--smoke", "--seeds", "0", "--epochs", "1", "--out", str(out)])
    text = out.read_text()
    assert "source val" in text and "unseen targets" in text and "Command:" in text
    assert "seed 0:" in capsys.readouterr().out
