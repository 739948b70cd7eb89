"""scripts/synthetic_gap.py runs end to end on the smoke benchmark and writes its report."""

import pytest


@pytest.mark.slow  # trains a CNN: about a minute on a busy 2-core machine
def test_synthetic_gap_smoke(tmp_path, capsys):
    from scripts import synthetic_gap as mod

    out = tmp_path / "gap.md"
    mod.main(["--smoke", "--seeds", "0", "--epochs", "1", "--out", str(out)])
    text = out.read_text()
    assert "source val" in text and "unseen targets" in text and "Command:" in text
    assert "seed 0:" in capsys.readouterr().out
