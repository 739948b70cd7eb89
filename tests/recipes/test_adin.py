"""ADIN recipe: in-process smoke run, every --adv / --nuisance / --backbone switch takes a
step, the alternation switches phase on the validation error and survives --resume, and the
real-data direct-transfer path end to end on fake dataset trees."""

import json
from pathlib import Path

import pytest
import torch

from dgblocks.backbones import DualBranch, MobileNetV2
from dgblocks.engine import read_jsonl
from recipes import adin
from tests.data import fake_trees

TINY = ["--smoke", "--no-plots", "--threads", "1", "--warmup-steps", "2",
        "--nuisance-steps", "2", "--steps", "4", "--val-every", "2", "--log-every", "1"]


def test_smoke_run_writes_results_and_alternation_log(tmp_path):
    out = tmp_path / "r.json"
    res = adin.main([*TINY, "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["targets"] == res["targets"] and len(res["targets"]) == 3   # 1 source + 2
    alt = saved["alternation"]
    assert [c["step"] for c in alt["checks"]] == [0, 2, 4]
    assert alt["steps"]["adversarial"] + alt["steps"]["identity"] == 4
    assert Path(saved["alternation_png"]).exists()
    prior = saved["nuisance_prior"]
    assert set(prior) == {"camera", "time"} and abs(sum(prior["camera"]) - 1) < 1e-6
    # --skew 0.5 makes camera 0 the most frequent nuisance class
    assert prior["camera"][0] > prior["camera"][2]


def test_alternation_switches_and_resume_restores_phase(tmp_path):
    out = tmp_path / "r.json"
    # absolute thresholds below any error: e_0 (checked at step 0) sends it to the identity
    # phase for good (the error never falls below i_target = -0.5)
    argv = [*TINY, "--out", str(out), "--thresholds", "absolute", "--i-target", "-0.5",
            "--i-trigger", "-0.1", "--ckpt-every", "1"]
    res = adin.main(argv)
    alt = res["alternation"]
    assert alt["phase"] == "identity" and [e["step"] for e in alt["switches"]] == [0]
    assert alt["steps"] == {"adversarial": 0, "identity": 4}
    logged = [r for r in read_jsonl(out.with_suffix(".metrics.jsonl"))
              if r["phase"] == "alternate"]
    assert [r["adversarial"] for r in logged] == [0.0] * 4
    assert not any("l_adv" in r for r in logged)
    again = adin.main([*argv, "--resume", "auto"])          # every phase done: state restored
    assert again["alternation"] == alt and again["e0"] == res["e0"]


def _setup(tmp_path, argv):
    cfg, run = adin.setup(adin.Config, [*TINY, "--out", str(tmp_path / "x.json"), *argv],
                          name="adin")
    bench, val, periods = adin.build_data(run, cfg)
    train = bench.train
    labels = adin.nuisance_labels(train.camids, train.timestamps, cfg, periods)
    sizes = {k: (int(v.max()) + 1 if k != "time" else periods) for k, v in labels.items()}
    sizes = {k: max(s, 2) for k, s in sizes.items()}
    f_e = MobileNetV2(width_mult=0.25, last_stride=1)
    if cfg.head == "dual_branch":
        f_e = DualBranch(backbone=f_e, num_stripes=2, dim=16)
    model = adin.ADIN(f_e, bench.num_ids, sizes, 32)
    center = adin.losses.CenterLoss(num_classes=bench.num_ids, dim=f_e.out_channels)
    opt = torch.optim.Adam([*model.f_E.parameters(), *model.f_I.parameters(),
                            *center.parameters()], lr=1e-3)
    opt_n = torch.optim.Adam(model.f_N.parameters(), lr=1e-3)
    idx = torch.arange(16)
    batch = (torch.stack([train[i][0] for i in idx.tolist()]), train.pids[idx],
             train.camids[idx], train.domains[idx], train.timestamps[idx])
    kw = dict(augment=lambda x: x, ce=adin.losses.LabelSmoothingCE(eps=0.0), center=center,
              l_adv=adin.adversarial_losses(cfg, labels, sizes), opt=opt, opt_n=opt_n,
              cfg=cfg, periods=periods)
    return model, batch, kw


@pytest.mark.parametrize("argv", [
    ["--adv", "none"], ["--adv", "rg"], ["--adv", "ne"], ["--adv", "cane"],
    ["--adv", "cane_focal"], ["--nuisance", "camera"], ["--nuisance", "time"],
    ["--nuisance", "joint"], ["--head", "dual_branch", "--adv", "ne"], ["--skew", "0"],
])
def test_each_switch_builds_and_steps(tmp_path, argv):
    model, batch, kw = _setup(tmp_path, argv)
    model.train()
    before = [p.detach().clone() for p in model.f_N.parameters()]
    for phase in ("identity", "warmup_nuisance", "adversarial"):
        logs = adin.train_step(model, batch, phase=phase, **kw)
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.f_N.parameters()))


def test_warmup_nuisance_leaves_encoder_untouched(tmp_path):
    model, batch, kw = _setup(tmp_path, [])
    enc = [p.detach().clone() for p in model.f_E.parameters()]
    adin.train_step(model, batch, phase="warmup_nuisance", **kw)
    assert all(torch.equal(a, b) for a, b in zip(enc, model.f_E.parameters()))


def test_rg_gives_the_encoder_the_reversed_nuisance_gradient(tmp_path):
    """RG: the encoder's gradient of L_adv is minus that of the nuisance CE."""
    model, batch, kw = _setup(tmp_path, ["--adv", "rg"])
    model.eval()                                    # deterministic forward (BN running stats)
    x, _, cam, _, period = batch
    y = adin.nuisance_labels(cam, period, kw["cfg"], kw["periods"])
    grads = []
    for loss_fn in (lambda k, z: kw["l_adv"][k](z, y[k]),
                    lambda k, z: torch.nn.functional.cross_entropy(z, y[k])):
        model.zero_grad()
        f = model(x)
        logits = model.f_N(f)
        sum(loss_fn(k, logits[k]) for k in y).backward()
        grads.append(next(model.f_E.parameters()).grad.clone())
    torch.testing.assert_close(grads[0], -grads[1])


def test_real_data_direct_transfer_on_fake_trees(tmp_path):
    root = tmp_path / "data"
    for make in (fake_trees.market, fake_trees.duke):
        make(root)
    out = tmp_path / "real.json"
    res = adin.main([*TINY, "--out", str(out), "--data", "real", "--data-root", str(root),
                     "--protocol", "direct:M->D", "--nuisance", "camera", "--val-ids", "1",
                     "--batch-size", "4", "--num-instances", "2", "--skew", "0",
                     "--image-size", "32", "16"])
    assert res["targets"] == ["dukemtmc"] and res["benchmark"] == "direct:M->D"
    assert res["nuisance_sizes"] == {"camera": 2}
    assert 0 <= res["metrics"]["dukemtmc"]["mAP"] <= 100


def test_digits_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--data"):
        adin.main([*TINY, "--out", str(tmp_path / "d.json"), "--data", "digits"])


def test_multi_source_trains_on_all_sources_and_tests_on_unseen_targets(tmp_path):
    res = adin.main([*TINY, "--source", "-1", "--skew", "0", "--nuisance", "camera",
                     "--out", str(tmp_path / "r.json")])
    assert all(t.startswith("tgt-") for t in res["targets"]) and len(res["targets"]) == 2
