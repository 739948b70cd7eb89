"""ADIN recipe: in-process smoke run, every --adv / --nuisance / --backbone switch takes a
step, the alternation switches phase on the validation error and survives --resume, the
bounded camera skew, and the real-data direct-transfer path of the paper's Tables 2-4 end to
end on fake dataset trees."""

import json
from pathlib import Path

import pytest
import torch

from dgblocks import protocols as dt
from dgblocks.engine import parse_config, read_jsonl
from dgblocks.layers.alternation import AlternatingSchedule
from recipes import adin
from tests.data import fake_trees
from tests.recipes._build import build, data_batch

TINY = ["--smoke", "--no-plots", "--threads", "1", "--backbone", "cnn", "--warmup-steps", "2",
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
    # --skew -1 (auto) is 0.75 on one synthetic source: camera 0 the most frequent class
    assert prior["camera"][0] > prior["camera"][2]
    kept = saved["skew"]
    assert kept["skew"] == 0.75 and min(kept["camera"]["kept"]) >= 1
    assert kept["camera"]["kept"][0] == kept["camera"]["of"][0]


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
    model = build(adin.ADIN, [*TINY, *argv])
    model.augment = lambda x: x
    return model, data_batch(model.bench, 16)


@pytest.mark.parametrize("argv", [
    ["--adv", "none"], ["--adv", "rg"], ["--adv", "ne"], ["--adv", "cane"],
    ["--adv", "cane_focal"], ["--nuisance", "camera"], ["--nuisance", "time"],
    ["--nuisance", "joint"], ["--head", "dual_branch", "--adv", "ne"], ["--skew", "0"],
])
def test_each_switch_builds_and_steps(tmp_path, argv):
    model, batch = _setup(tmp_path, argv)
    model.train()
    before = [p.detach().clone() for p in model.f_N.parameters()]
    model.schedule.phase = "adversarial"
    for step in (model.identity_step, model.nuisance_step, model.update):
        logs = step(batch)
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.f_N.parameters()))


def test_warmup_nuisance_leaves_encoder_untouched(tmp_path):
    model, batch = _setup(tmp_path, [])
    enc = [p.detach().clone() for p in model.net.parameters()]
    model.nuisance_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(enc, model.net.parameters()))


def test_rg_gives_the_encoder_the_reversed_nuisance_gradient(tmp_path):
    """RG: the encoder's gradient of L_adv is minus that of the nuisance CE."""
    model, batch = _setup(tmp_path, ["--adv", "rg"])
    model.eval()                                    # deterministic forward (BN running stats)
    x, _, cam, _, period = batch
    y = dt.nuisance_labels(model.cfg.nuisance, cam, period, periods=adin.PERIODS)
    grads = []
    for loss in (lambda f: model.f_N(f, y),
                 lambda f: sum(torch.nn.functional.cross_entropy(z, y[k])
                               for k, z in model.f_N.heads(f).items())):
        model.zero_grad()
        loss(model.net(x)).backward()
        grads.append(next(model.net.parameters()).grad.clone())
    torch.testing.assert_close(grads[0], -grads[1])


REAL = ["--data", "real", "--val-ids", "1", "--batch-size", "4", "--num-instances", "2",
        "--image-size", "32", "16"]


def _more_ids(root):
    """Three more 3-image training identities in the fake MSMT17, Duke and VeRi trees (and
    MSMT17's 1-image identities unlisted), so that the held-out validation identity has a
    gallery image whatever the draw."""
    ms = root / "MSMT17_V1"
    lines = []
    for pid in (20, 21, 22):
        for k, (cam, t) in enumerate(((1, "morning"), (14, "noon"), (15, "afternoon"))):
            rel = f"{pid:04d}/{pid:04d}_{k:03d}_{cam:02d}_0303{t}_0015_0.jpg"
            fake_trees.touch(ms / "train" / rel)
            lines.append(f"{rel} {pid}")
    old = (ms / "list_train.txt").read_text().splitlines()      # pid 0's two images kept
    (ms / "list_train.txt").write_text("\n".join([*old[:2], *lines]) + "\n")
    (ms / "list_val.txt").write_text("")                           # its 1-image identity
    for i in (30, 31, 32):
        for cam, frame in ((1, 100), (7, 5000), (20, 90000)):
            fake_trees.touch(root / "VeRi" / "image_train" / f"{i:04d}_c{cam:03d}_{frame:08d}_0.jpg")
            fake_trees.touch(root / "DukeMTMC-reID" / "bounding_box_train" /
                             f"{i:04d}_c{1 + cam % 8}_f{frame:07d}.jpg")


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for make in (fake_trees.market, fake_trees.duke, fake_trees.msmt17, fake_trees.veri,
                 fake_trees.vehicleid):
        make(root)
    _more_ids(root)
    return root


@pytest.mark.parametrize("protocol, nuisance, targets", [
    ("direct:D->M", "camera", ["market1501"]),                           # Table 2
    ("direct:MS->D+M", "camera+time", ["dukemtmc", "market1501"]),        # Table 3
    ("direct:veri776->vehicleid-1600+vehicleid-3200", "camera",          # Table 4
     ["vehicleid-1600", "vehicleid-3200"]),
])
def test_real_data_paper_tables_on_fake_trees(tmp_path, real_root, protocol, nuisance, targets):
    res = adin.main([*TINY, *REAL, "--out", str(tmp_path / "real.json"), "--data-root",
                     str(real_root), "--protocol", protocol, "--nuisance", nuisance])
    assert res["targets"] == targets and res["benchmark"] == protocol
    for t in targets:
        assert set(res["metrics"][t]) >= {"R1", "R5", "R10", "mAP"}
        assert 0 <= res["metrics"][t]["mAP"] <= 100
    kept = res["skew"]                         # --skew auto is off on real data: all kept
    assert kept["skew"] == 0 and kept["camera"]["kept"] == kept["camera"]["of"]
    assert set(res["nuisance_sizes"]) == set(nuisance.split("+"))


def test_skew_on_real_data_keeps_every_msmt17_camera(tmp_path, real_root):
    """An explicit --skew on real data: cameras 1, 14, 15 skewed, none emptied (the old rule
    kept 0.5 ** 14 of MSMT17's 15th camera, i.e. nothing; see the protocol tests)."""
    from dgblocks.protocols import build_benchmark

    argv = [*TINY, *REAL, "--data-root", str(real_root), "--protocol", "direct:MS->D",
            "--skew", "0.5"]
    cfg, args = parse_config(adin.Config, argv)
    bench = adin.ADIN.prepare_benchmark(cfg, build_benchmark(
        "real", root=str(real_root), protocol="direct:MS->D", image_size=(32, 16)), args)
    kept = bench.info["skew"]["camera"]
    assert kept["class"] == [0, 1, 2] and min(kept["kept"]) >= 1
    assert kept["kept"][0] == kept["of"][0] and kept["kept"][2] < kept["of"][2]
    assert torch.bincount(bench.train.camids).min() >= 1


def test_table2_camera_only_prints_r1_r5_r10_map(tmp_path, capsys):
    res = adin.main([*TINY, "--nuisance", "camera", "--adv", "ne",
                     "--out", str(tmp_path / "t2.json")])
    assert "| target | R1 | R5 | R10 | mAP |" in capsys.readouterr().out
    assert res["nuisance_sizes"] == {"camera": 3}


def test_absolute_thresholds_enter_the_adversarial_phase(tmp_path):
    """Before, absolute i_target 0.02 / i_trigger 0.05 sent every run to the identity phase
    at e_0 for good (validation errors are 0.1-0.6 here)."""
    res = adin.main([*TINY, "--thresholds", "absolute", "--out", str(tmp_path / "a.json")])
    alt = res["alternation"]
    assert (alt["checks"][0]["i_target"], alt["checks"][0]["i_trigger"]) == (0.3, 0.4)
    assert alt["steps"]["adversarial"] > 0


def test_absolute_threshold_defaults_alternate_on_a_measured_error_curve():
    """The validation errors of a default synthetic CaNE run (seed 0, adversarial throughout,
    checks every 10 steps): the defaults switch both ways; the old 0.02 / 0.05 only once."""
    errors = [0.367, 0.413, 0.287, 0.313, 0.257, 0.25, 0.237, 0.24, 0.223, 0.153, 0.233]
    for (lo, hi), both in ((adin.THRESHOLDS["absolute"], True), ((0.02, 0.05), False)):
        s = AlternatingSchedule(i_target=lo, i_trigger=hi)
        for k, e in enumerate(errors):
            s.update(e, step=10 * k)
        assert ({w["to"] for w in s.switches} == {"identity", "adversarial"}) == both


def test_digits_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--data"):
        adin.main([*TINY, "--out", str(tmp_path / "d.json"), "--data", "digits"])


def test_multi_source_trains_on_all_sources_and_tests_on_unseen_targets(tmp_path):
    res = adin.main([*TINY, "--source", "-1", "--nuisance", "camera",
                     "--out", str(tmp_path / "r.json")])
    assert all(t.startswith("tgt-") for t in res["targets"]) and len(res["targets"]) == 2
    assert res["skew"]["skew"] == 0                # auto: off with several sources


def test_multi_source_skew_keeps_domains_and_every_camera(tmp_path):
    bench = build(adin.ADIN, [*TINY, "--source", "-1", "--skew", "0.5"]).bench
    train = bench.train
    assert train.domains.unique().numel() == bench.num_domains > 1
    assert torch.bincount(train.camids).min() >= 1 and train.camids.max() >= 3


def test_too_many_validation_identities_name_the_flag(tmp_path):
    """More --val-ids than the source holds: the error names the flag, not a helper's
    argument."""
    from dgblocks.protocols import build_benchmark

    train = build_benchmark("synthetic", smoke=True).train
    with pytest.raises(ValueError, match="--val-ids"):
        dt.hold_out_identities(train, 10_000, arg="--val-ids")
    with pytest.raises(ValueError, match="num_ids"):
        dt.hold_out_identities(train, 10_000)
