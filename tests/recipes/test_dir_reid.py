"""The DIR-ReID recipe: smoke run, every variant and BA strategy takes a step, the two-phase
update touches only its own parameters, the dual-DANN reversal, the Figure 6 latents PNG on
digits, and Protocol-1 end to end on a fake tree."""

import json
from pathlib import Path

import pytest
import torch

from dgblocks.losses import LabelSmoothingCE
from dgblocks.protocols import build_benchmark
from dgblocks.sampling.backdoor import backdoor_pairs
from recipes import dir_reid as dr
from tests.data import fake_trees as ft
from tests.recipes._build import build, data_batch

TINY = ["--smoke", "--no-plots", "--threads", "1", "--steps", "2", "--log-every", "1", "--width", "0.25"]


@pytest.fixture(scope="module")
def digits():
    return build_benchmark("digits", smoke=True)


def _setup(bench, **over):
    """DIR-ReID on ``bench`` with steps 4, batch 12, K 3 (``over``: other config values), and a
    batch of 12 training images."""
    flags = {"steps": 4, "batch_size": 12, "k": 3} | over
    argv = [a for k, v in flags.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    model = build(dr.DIRReID, argv, bench=bench)
    return model, data_batch(bench, 12)


def test_smoke_synthetic_writes_results(tmp_path, capsys):
    res = dr.main([*TINY, "--out", str(tmp_path / "r.json")])
    assert "DIR-ReID full (BA mixup" in capsys.readouterr().out
    assert res["variant"] == "full" and res["ba"] == "mixup" and res["task"] == "reid"
    saved = json.loads((tmp_path / "r.json").read_text())
    for m in saved["metrics"].values():
        assert 0 <= m["R1"] <= 100 and 0 <= m["mAP"] <= 100
    logged = [json.loads(x) for x in (tmp_path / "r.metrics.jsonl").read_text().splitlines()]
    assert {"l_sid", "l_domindis", "l_idindis", "l_vdom", "l_idinvar", "l_dominvar",
            "loss2"} <= set(logged[-1])


@pytest.mark.parametrize("variant,ba,terms", [
    ("baseline", "auto", {"l_sid"}),
    ("dual_dann", "auto", {"l_sid", "l_domindis", "l_idindis", "l_vdom"}),
    ("mddan", "auto", {"l_sid", "l_domindis", "l_idindis", "l_vdom"}),
    ("full", "random", {"l_sid", "l_domindis", "l_idindis", "l_vdom", "l_idinvar",
                        "l_dominvar"}),
    ("full", "hardest", None), ("full", "mixup", None), ("full", "mixhard", None)])
def test_each_variant_and_strategy_takes_a_finite_step(digits, variant, ba, terms):
    model, batch = _setup(digits, variant=variant, ba=ba)
    logs = model.step(batch)
    if terms is not None:
        assert set(logs) - {"loss1", "loss2", "lr"} == terms
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values())


@pytest.mark.parametrize("frozen", [0, 1])
def test_two_phase_update_touches_only_its_own_parameters(digits, frozen):
    model, batch = _setup(digits, variant="full", ba="mixup")
    opt = model.optimizers[("phase1", "phase2")[frozen]]
    for group in opt.param_groups:  # freeze one phase through its learning rate
        group["lr"] = 0.0
    phase1_params = [*model.enc.encoder_parameters(), *model.c_sc.parameters(),
                     *model.c_vc.parameters()]
    heads = [p.detach().clone() for p in model.enc.head_parameters()]
    phase1 = [p.detach().clone() for p in phase1_params]
    model.step(batch)
    moved_heads = any(not torch.equal(a, b) for a, b in zip(heads, model.enc.head_parameters()))
    moved_enc = any(not torch.equal(a, b) for a, b in zip(phase1, phase1_params))
    # phase I never moves C_S/C_V; phase II never moves f_S/f_V/C_SC/C_VC
    assert (moved_heads, moved_enc) == ((True, False) if frozen == 0 else (False, True))


def test_dual_dann_reverses_the_encoder_gradient(digits):
    model, batch = _setup(digits, variant="dual_dann")
    model.grl.schedule.step(10**6)  # coefficient -> 1
    x, d = batch[0] * 2 - 1, batch[3]
    s = model.enc.encoder_s(x).detach().requires_grad_(True)
    ce = LabelSmoothingCE(eps=0.0)
    g_rev, = torch.autograd.grad(ce(model.enc.domain_head(model.grl(s)), d), s)
    g_plain, = torch.autograd.grad(ce(model.enc.domain_head(s), d), s)
    torch.testing.assert_close(g_rev, -g_plain)


def test_digits_latent_dim_2_writes_figure6_png(tmp_path):
    res = dr.main([*TINY, "--data", "digits", "--latent-dim", "2", "--ba", "random",
                   "--out", str(tmp_path / "d.json")])
    assert res["task"] == "classification" and 0 <= res["metrics"]["rot75"]["acc"] <= 100
    assert Path(res["latents_png"]).exists() and res["config"]["latent_dim"] == 2


def test_protocol1_end_to_end_on_a_fake_tree(tmp_path):
    for make in (ft.market, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.viper, ft.prid, ft.grid,
                 ft.ilids):
        make(tmp_path / "data")
    res = dr.main([*TINY, "--batch-size", "8", "--k", "3",
                   "--data", "real", "--data-root", str(tmp_path / "data"),
                   "--protocol", "protocol1", "--image-size", "64", "32", "--out", str(tmp_path / "r.json"),
                   "--eval-batch-size", "256"])
    assert res["targets"] == ["prid2011", "grid", "viper", "ilids"]
    for m in res["metrics"].values():
        assert 0 <= m["R1"] <= 100 and m["num_splits"] == 10


def test_resnet_latent_dim_must_match_the_backbone(tmp_path):
    with pytest.raises(ValueError, match="latent_dim"):
        dr.main(["--smoke", "--no-plots", "--latent-dim", "64", "--out",
                       str(tmp_path / "r.json")])


@pytest.mark.parametrize("ba", ["random", "mixup"])
def test_ba_terms_sum_over_k_as_eq11(digits, ba):
    """Eq 11: L_idinvar = mean over i of sum over k of CE_eps(C_SC(s_i + v~_ik), y_i); the dual
    L_dominvar likewise (a mean over the B x K pairs would weigh both K times less)."""
    model, batch = _setup(digits, variant="full", ba=ba, k=3, lambda3=1.0, lambda4=1.0)
    x, y, _cam, d, _ts = batch
    gen = model.generator("ba")
    state = gen.get_state()
    with torch.no_grad():
        s, v = model.enc.encoder_s(x * 2 - 1), model.enc.encoder_v(x * 2 - 1)
        idx, w = model.ba.indices(v, generator=gen)
        pairs = backdoor_pairs(s, v, idx, w)                       # (B, K, ds + dv)
        ce_id, ce = LabelSmoothingCE(eps=model.cfg.eps), LabelSmoothingCE(eps=0.0)
        idinvar = sum(ce_id(model.c_sc(pairs[:, k]), y) for k in range(3))
        dominvar = sum(w[:, k] @ torch.stack([ce(model.c_vc(pairs[i:i + 1, k]), d[idx[i:i + 1, k, 0]])
                                               for i in range(len(y))])
                       + (1 - w[:, k]) @ torch.stack([ce(model.c_vc(pairs[i:i + 1, k]),
                                                         d[idx[i:i + 1, k, 1]])
                                                      for i in range(len(y))])
                       for k in range(3)) / len(y)
    gen.set_state(state)
    logs = model.step(batch)
    torch.testing.assert_close(logs["l_idinvar"], idinvar, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logs["l_dominvar"], dominvar, rtol=1e-4, atol=1e-5)


def test_table4_single_source_uses_cameras_as_domains(tmp_path, capsys):
    res = dr.main([*TINY, "--source", "0", "--out", str(tmp_path / "r.json")])
    names = res["domain_names"]
    assert len(names) >= 2 and all(n.startswith(names[0].split("/")[0] + "/cam") for n in names)
    assert res["config"]["source"] == 0 and "src-" in " ".join(res["targets"])
    assert "domains [" in capsys.readouterr().out


def test_single_source_with_dataset_domains_runs_with_one_domain(tmp_path):
    res = dr.main([*TINY, "--source", "1", "--domains", "dataset", "--out",
                   str(tmp_path / "r.json")])
    assert len(res["domain_names"]) == 1          # C_V has one output: domain terms are 0


@pytest.mark.parametrize("ba,k", [("random", 1), ("mixup", 1), ("mixhard", 2), ("mixup", 11)])
def test_figure5_k_range_takes_a_step(digits, ba, k):
    model, batch = _setup(digits, variant="full", ba=ba, k=k)  # batch 12: K <= 11
    logs = model.step(batch)
    assert torch.isfinite(logs["l_idinvar"]) and torch.isfinite(logs["l_dominvar"])
