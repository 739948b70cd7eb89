"""The linear-probe diagnostic: exact on features that carry the label, chance on those that do
not, and a finished recipe run rebuilt from its JSON and checkpoint."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from dgblocks.data import ReIDDataset
from scripts.probe_features import PROBES, load_run, main, probe, summary_table

pytest.importorskip("sklearn")


def _bench(n_ids=20, per_id=6, domains=2, cams=3):
    g = torch.Generator().manual_seed(0)
    pids = torch.arange(n_ids).repeat_interleave(per_id)
    dom = pids % domains
    cam = torch.randint(0, cams, (pids.numel(),), generator=g)
    imgs = torch.zeros(pids.numel(), 3, 8, 4, dtype=torch.uint8)
    imgs[:, 0, 0, 0] = dom.to(torch.uint8) * 100          # the domain, written in one pixel
    imgs[:, 1, 0, 0] = cam.to(torch.uint8) * 80           # the camera, in another
    return SimpleNamespace(train=ReIDDataset(imgs, pids=pids, camids=cam, domains=dom))


def _labels(x):
    return (x[:, 0, 0, 0] * 255 / 100).round().long(), (x[:, 1, 0, 0] * 255 / 80).round().long()


def test_features_carrying_the_labels_are_probed_exactly():
    def encode(x):
        d, c = _labels(x)
        return torch.cat([2 * F.one_hot(d, 2), F.one_hot(d * 3 + c, 6)], 1).float()

    out = probe(SimpleNamespace(encode=encode), _bench(n_ids=60))
    assert all(out[p] == 100.0 for p in PROBES)
    assert out["same-domain neighbours chance"] < 60.0


def test_domain_blind_features_have_neighbours_at_chance():
    def encode(x):            # the identity-free camera only, the same in both domains
        return F.one_hot(_labels(x)[1], 3).float() + 0.01 * torch.randn(x.shape[0], 3)

    out = probe(SimpleNamespace(encode=encode), _bench(n_ids=40))
    assert abs(out["same-domain neighbours"] - out["same-domain neighbours chance"]) < 15.0
    assert out["domain"] < 75.0


def test_constant_features_score_chance():
    enc = SimpleNamespace(encode=lambda x: torch.zeros(x.shape[0], 4))
    out = probe(enc, _bench())
    for p in PROBES[:3]:                     # the linear probes: the majority class
        assert out[p] <= out[f"{p} chance"] + 1e-6


def test_summary_table_has_a_row_per_run_and_chance():
    rows = [{"run": "a", "seed": s} | {p: 50.0 + s for p in PROBES}
            | {f"{p} chance": 10.0 for p in PROBES} for s in (0, 1)]
    t = summary_table(rows)
    assert "| a | 0, 1 | 50.5 ± 0.7 |" in t and "| chance | - | 10.0 |" in t


def test_a_finished_run_is_rebuilt_and_probed(tmp_path):
    from recipes.baseline import main as baseline

    out = tmp_path / "agg" / "seed0.json"
    baseline(["--smoke", "--no-plots", "--threads", "1", "--out", str(out)])
    trained, bench = load_run(out)
    fresh, _ = load_run(out, trained=False)
    x = torch.stack([bench.train[i][0] for i in range(2)]).float() / 255
    assert not torch.allclose(trained.encode(x), fresh.encode(x))   # the checkpoint was loaded
    rows = main([str(out), "--untrained", "--max-train", "200"])
    assert [r["run"] for r in rows] == ["agg", "untrained (agg)"]


def test_bad_run_path_names_the_argument(tmp_path):
    with pytest.raises(ValueError, match="run"):
        load_run(tmp_path / "missing.json")


def test_episodic_rows_get_the_extractor_agreement(tmp_path):
    from recipes.episodic import main as episodic

    out = tmp_path / "epi" / "seed0.json"
    episodic(["--smoke", "--no-plots", "--threads", "1", "--out", str(out)])
    method, bench = load_run(out)
    got = probe(method, bench, max_train=200)
    assert -100.0 <= got["extractor agreement"] <= 100.0
    table = summary_table([{"run": "epi", "seed": 0} | got])
    assert "extractor agreement (%)" in table
