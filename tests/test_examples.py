"""The examples run: the README's composing block, examples/quickstart.py, and
examples/new_method.py (docs/new_method.md), which with its three terms off is
recipes/baseline.py exactly."""

import json
import re
import runpy
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DET = ["--smoke", "--deterministic", "--threads", "1", "--no-plots"]


def test_readme_composing_block_runs_and_trains_the_camera_head():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Composing blocks in a training step"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102
    before = scope["cam_head"].weight.detach().clone()
    loss, l_cam = scope["train_step"](torch.rand(8, 3, 64, 32), torch.arange(8) // 2,
                                      torch.randint(0, 6, (8,)))
    assert torch.isfinite(loss) and torch.isfinite(l_cam)
    assert not torch.equal(before, scope["cam_head"].weight)  # the adversary's head trains


def test_quickstart_runs(capsys):
    runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    assert capsys.readouterr().out


def _new_method():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import new_method
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return new_method


def test_new_method_smoke_logs_its_three_terms(tmp_path):
    out = tmp_path / "r.json"
    res = _new_method().main([*DET, "--log-every", "1", "--out", str(out)])
    assert set(res["metrics"]) == set(res["targets"])
    last = [json.loads(x) for x in out.with_suffix(".metrics.jsonl").read_text().splitlines()][-1]
    assert {"l_id", "l_tri", "l_cane", "l_se", "l_heads"} <= set(last)
    assert last["l_cane"] != 0 and res["config"]["style"]


def test_new_method_with_its_terms_off_is_the_baseline_recipe(tmp_path):
    from recipes import baseline

    a = _new_method().main([*DET, "--no-style", "--beta", "0", "--lambda-se", "0",
                            "--out", str(tmp_path / "a.json")])
    b = baseline.main([*DET, "--out", str(tmp_path / "b.json")])
    assert a["metrics"] == b["metrics"]
