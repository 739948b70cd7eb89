"""Every recipe at the papers' image size (256 x 128) from a rendered dataset tree, through
the real loaders, with two loader worker processes: it trains, evaluates, and a SIGKILL
mid-run resumes bit-identically (the workers die with their run and restart on resume)."""

from __future__ import annotations

import json
import time

import pytest

from dgblocks.data.render_tree import render_tree
from tests.recipes.test_kill_resume import CASES, alive, kill_and_resume

AFTER = {r: after for r, (_, after) in CASES.items()} | {
    "episodic": 8}  # inside its last stage (stages F_init, F_0..F_3 take a checkpoint each)
RECIPES = {"baseline": [], "dir_reid": [], "ddan": [], "cdvm": [], "episodic": [],
           "adin": ["--val-ids", "4"]}  # the rendered MSMT17 keeps few identities under --smoke


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("rendered")
    render_tree(path, scale=0.01, per_id=4, seed=0, progress=False)  # stored at 256 x 128
    return path


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(RECIPES))
def test_recipe_at_256x128_with_workers_resumes_bit_identically(root, tmp_path, recipe):
    extra = ["--data", "real", "--data-root", str(root), "--image-size", "256", "128",
             "--workers", "2", *RECIPES[recipe]]
    workers: list[int] = []
    kill_and_resume(tmp_path, recipe, extra, after=AFTER[recipe], children=workers)
    assert len(workers) >= 2, "the run had no loader workers when it was killed"
    deadline = time.time() + 30  # torch's workers check for their parent every 5 s
    while any(alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in workers), "loader workers outlived their killed run"
    res = json.loads((tmp_path / "kill" / "r.json").read_text())
    assert res["image_size"] == [256, 128] and res["config"].get("workers", 2) == 2
    assert res["metrics"], "no target evaluated"


@pytest.mark.slow
def test_vit_b16_trains_on_the_rendered_tree(root, tmp_path):
    """ViT-B/16 (86M parameters, from scratch, 16 x 8 patches of 256 x 128) through the real
    loaders and two workers: the loss of its first step falls (measured 14.6 -> 6-7 in 8
    steps; about 2 minutes on 2 CPU cores)."""
    from dgblocks.engine import read_jsonl
    from recipes import baseline

    out = tmp_path / "vit.json"
    res = baseline.main(["--data", "real", "--data-root", str(root), "--protocol", "protocol1",
                         "--image-size", "256", "128", "--workers", "2", "--backbone",
                         "vit_b16", "--steps", "8", "--batch-size", "8", "--num-instances", "2",
                         "--lr", "1e-4", "--log-every", "1", "--no-plots", "--out", str(out)])
    assert res["image_size"] == [256, 128] and res["config"]["backbone"] == "vit_b16"
    loss = [r["loss"] for r in read_jsonl(out.with_suffix(".metrics.jsonl")) if "loss" in r]
    assert len(loss) == 8 and sum(loss[-3:]) / 3 < 0.6 * loss[0], loss
