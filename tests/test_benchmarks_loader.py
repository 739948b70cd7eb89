"""benchmarks/loader.py: decode + augmentation per worker and Batches with 0/1/2 workers."""

from __future__ import annotations

import json

from benchmarks import loader


def test_small_run_writes_every_case(tmp_path):
    path = loader.main(tmp_path / "loader.json", small=True)
    data = json.loads(path.read_text())
    assert data["suite"] == "loader_small" and data["image_size"] == [256, 128]
    assert len(data["load_before"]) == 3 and len(data["load_after"]) == 3
    cases = {r["case"]: r for r in data["rows"]}
    assert set(cases) == {"pil_decode", "load_image", "load_image+augment", "augment_batch",
                          *(f"batches{a}_w{w}" for a in ("", "_aug") for w in (0, 1, 2))}
    assert cases["pil_decode"]["ratio_vs_pil"] == 1.0
    for r in data["rows"]:
        assert r["images_per_s"] > 0 and r["median_s"] > 0
    assert cases["batches_w2"]["workers"] == 2 and cases["batches_w0"]["images"] == 32
    assert data["batch"] == 16 and data["rounds"] == 3 and cases["load_image"]["images"] == 32
