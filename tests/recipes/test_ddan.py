"""DDAN recipe: smoke run with the cached central-domain stage, every ablation takes a step,
gradient routing of eq 9, ID-pool domains taken from the data, Protocol-1 on a fake tree."""

import json
from pathlib import Path

import pytest
import torch

from dgblocks.backbones import MobileNetV2
from dgblocks.engine import load_checkpoint, read_jsonl
from dgblocks.layers import CentralDomainDiscriminator
from dgblocks.losses import NegEntropy
from dgblocks.protocols import build_benchmark
from recipes import ddan
from tests.data import fake_trees as ft
from tests.recipes._build import build

TINY = ["--smoke", "--no-plots", "--threads", "1", "--steps", "3", "--stage1-steps", "2",
        "--log-every", "1", "--eval-batch-size", "64"]


@pytest.fixture(scope="module")
def bench():
    return build_benchmark("synthetic", smoke=True)


def test_smoke_caches_stage1_and_central_override(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    res = ddan.main([*TINY, "--out", str(tmp_path / "a.json"), "--stage-cache", cache])
    names = res["domain_names"]
    assert res["ablation"] == "full" and set(res["ot"]) == {"emd", "sinkhorn", "sliced"}
    for m, v in res["ot"].items():
        d = torch.tensor(v["distances"])
        assert d.shape == (len(names), len(names)) and torch.equal(d, d.t()), m
        assert v["central"] == names[int(d.sum(1).argmin())]  # eq 3
    assert res["central"] == res["ot"]["emd"]["central"]
    assert "Table 2 analogue (emd)" in capsys.readouterr().out
    assert len(list(Path(cache).glob("ddan-stage1-*.pt"))) == 1
    # Table 3: another central domain reuses the cached baseline (no stage-1 phase logged)
    other = [n for n in names if n != res["central"]][0]
    out = tmp_path / "b.json"
    res2 = ddan.main([*TINY, "--out", str(out), "--stage-cache", cache, "--central", other,
                      "--ablation", "da"])
    assert "stage 'stage1': loaded from" in capsys.readouterr().out
    assert res2["central"] == other and res2["ot"] == res["ot"]
    assert {r["phase"] for r in read_jsonl(out.with_suffix(".metrics.jsonl"))} == {"train"}
    assert json.loads(out.read_text())["metrics"].keys() == res["metrics"].keys()


@pytest.mark.parametrize("ablation,central,logged", [
    ("ide", 0, {"l_ide"}), ("triplet", 0, {"l_ide", "l_tri"}),
    ("da", 1, {"l_da_t", "l_da_d"}), ("da", -1, {"l_da_t", "l_da_d"}),
    ("full", 0, {"l_da_t", "l_da_d", "l_se"})])
def test_each_ablation_builds_and_steps(tmp_path, bench, ablation, central, logged):
    where = [] if central == 0 else ["--central", "all" if central < 0 else
                                     bench.domain_names[central]]
    out = tmp_path / "r.json"
    ddan.main([*TINY, "--steps", "2", "--se-start", "0", "--ablation", ablation, *where,
               "--out", str(out)])
    recs = [r for r in read_jsonl(out.with_suffix(".metrics.jsonl")) if r["phase"] == "train"]
    assert len(recs) == 2 and logged <= set(recs[-1])
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in recs)
    state = load_checkpoint(out.with_suffix(".ckpt.pt"))["objects"]["method"]
    assert any(k.startswith("net.disc.") for k in state) == (ablation in ("da", "full"))
    if central < 0:  # pairwise alignment: one output per source domain
        m = build(ddan.DDAN, ["--ablation", ablation, *where])
        assert m.net._d(torch.randn(4, m.net.neck.dim)).shape == (4, bench.num_domains)


def test_eq9_gradient_routing():
    """L_DA-T reaches theta_m only (not E, not D); L_DA-D reaches D only; L1 reaches E and M."""
    net = ddan.DDANNet(MobileNetV2(width_mult=0.25, last_stride=1), 6)
    net.disc = CentralDomainDiscriminator(in_dim=net.neck.dim)
    out = net.train()(torch.rand(4, 3, 32, 16))
    torch.testing.assert_close(out["f"], out["f_m"])
    groups = {"E": net.encoder, "M": net.mapping, "D": net.disc, "I": net.neck}

    def touched(loss):
        net.zero_grad(set_to_none=True)
        loss.backward(retain_graph=True)
        return {k for k, m in groups.items()
                if any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())}

    assert touched(NegEntropy()(out["d_gen"])) == {"M"}
    assert touched(torch.nn.functional.cross_entropy(out["d_disc"], torch.tensor([0, 1, 0, 1]))
                   ) == {"D"}
    assert touched(out["neck"].logits.logsumexp(1).mean()) == {"E", "M", "I"}
    assert touched(out["f_m"].pow(2).mean()) == {"M"}  # L_SE's input
    net.eval()
    assert net(torch.rand(2, 3, 32, 16)).shape == (2, net.neck.dim)


def test_id_pool_domains_come_from_the_data(tmp_path, bench):
    """The paper's code hard-coded (and mis-ordered) per-domain id ranges; ours learns them."""
    out = tmp_path / "r.json"
    ddan.main([*TINY, "--steps", "4", "--central", bench.domain_names[1], "--out", str(out)])
    state = load_checkpoint(out.with_suffix(".ckpt.pt"))["objects"]["method"]
    seen = state["pool.seen"].nonzero().squeeze(1)
    assert seen.numel() > 0 and int(state["pool.central"]) == 1
    truth = torch.zeros(bench.num_ids, dtype=torch.long)
    truth[bench.train.pids] = bench.train.domains
    assert torch.equal(state["pool.id_domain"][seen], truth[seen])


def test_bad_central_name_raises(tmp_path):
    with pytest.raises(ValueError, match="--central"):
        ddan.main([*TINY, "--out", str(tmp_path / "r.json"), "--central", "nowhere"])


def test_protocol1_end_to_end_on_a_fake_tree(tmp_path):
    for make in (ft.market, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.viper, ft.prid, ft.grid,
                 ft.ilids):
        make(tmp_path / "data")
    res = ddan.main([*TINY, "--steps", "2", "--batch-size", "8", "--data", "real",
                     "--data-root", str(tmp_path / "data"), "--protocol", "protocol1", "--image-size", "64", "32",
                     "--out", str(tmp_path / "r.json"), "--stage-cache", str(tmp_path / "c"),
                     "--eval-batch-size", "256"])
    assert res["targets"] == ["prid2011", "grid", "viper", "ilids"]
    assert len(res["domain_names"]) == 4 and res["central"] in res["domain_names"]
    for m in res["metrics"].values():
        assert 0 <= m["R1"] <= 100 and m["num_splits"] == 10


def test_table4_cosine_and_table2_all_domains_row(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    res = ddan.main([*TINY, "--out", str(tmp_path / "a.json"), "--stage-cache", cache])
    cos = torch.tensor(res["cosine"])
    g = len(res["domain_names"])
    assert cos.shape == (g, g) and torch.allclose(cos, cos.t())
    torch.testing.assert_close(cos.diagonal(), torch.ones(g), atol=1e-5, rtol=0)
    assert res["ot_all_domains"] is None                     # a central domain: no such row
    assert "Table 4 analogue" in capsys.readouterr().out
    res = ddan.main([*TINY, "--out", str(tmp_path / "b.json"), "--stage-cache", cache,
                     "--central", "all", "--ablation", "da"])
    row = res["ot_all_domains"]                              # W1(baseline_d, aligned_d) per d
    assert len(row) == g and all(v >= 0 for v in row)
    assert "Table 2 'All domains'" in capsys.readouterr().out


def test_dualnorm_backbone_keeps_instance_norm_in_e_and_splits_off_m():
    net = build(ddan.DDAN, ["--backbone", "dualnorm", "--width", "0.25"]).net
    norms = {type(m).__name__ for m in net.encoder.modules()}
    assert "InstanceNorm2d" in norms                         # DualNorm's IN stays in E
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.mapping.modules())
    assert isinstance(net.encoder.get_submodule(net.encoder.stage_names[-1]), torch.nn.Identity)
    assert net.eval()(torch.rand(2, 3, 64, 32)).shape == (2, net.neck.dim)


@pytest.mark.parametrize("flags,has_se", [(["--k", "0"], False), (["--k", "1"], True),
                                          (["--tau", "2e-5"], True), (["--tau", "2.0"], True)])
def test_figure3_edge_values(tmp_path, bench, flags, has_se):
    out = tmp_path / "r.json"
    ddan.main([*TINY, "--steps", "2", "--se-start", "0", "--central", bench.domain_names[0],
               *flags, "--out", str(out)])
    recs = [r for r in read_jsonl(out.with_suffix(".metrics.jsonl")) if r["phase"] == "train"]
    assert ("l_se" in recs[-1]) == has_se                   # k = 0 disables L_SE (Figure 3a)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in recs)
