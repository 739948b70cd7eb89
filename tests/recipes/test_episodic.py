"""Episodic recipe: smoke run, stage-1 cache, frozen extractors, ablation switches, Protocol 1."""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch

import tests.data.fake_trees as ft
from dgblocks.engine import parse_config
from dgblocks.engine.stage_cache import settings_key, stage_key
from dgblocks.protocols import build_benchmark
from recipes import episodic as ep
from tests.recipes._build import build, data_batch

TINY = ["--width", "0.25", "--ext-width", "0.25", "--feat-dim", "32", "--emb-dim", "32",
        "--no-plots", "--threads", "1"]


def _run(tmp_path, *flags, name="r"):
    return ep.main(["--smoke", "--steps", "2", "--stage1-steps", "2", *TINY,
                    "--stage-cache", str(tmp_path / "cache"), "--out",
                    str(tmp_path / name / "r.json"), *flags])


def test_smoke_run_and_stage1_cache(tmp_path, capsys):
    first = _run(tmp_path)
    assert set(first["metrics"]) == set(first["targets"]) and first["variant"] == "episodic"
    cached = sorted((tmp_path / "cache").glob("episodic-F*.pt"))
    assert len(cached) == 3                             # one F_d per source domain + initial F
    again = _run(tmp_path, name="again")                      # stage 2 alone, from the cache
    assert "loaded from" in capsys.readouterr().out
    assert again["metrics"] == first["metrics"]               # cache hit == fresh stage 1
    assert sorted((tmp_path / "cache").glob("episodic-F*.pt")) == cached


@functools.cache
def _bench():
    return build_benchmark("synthetic", smoke=True)


def _setup(flags):
    cfg, args = parse_config(ep.Config, ["--smoke", *TINY, *flags])
    return cfg, args, _bench()


class _Run:  # the attributes stage_key reads
    def __init__(self, cfg, args, bench):
        self.args, self.bench, self.image_size = args, bench, (64, 32)
        self.device, self.dist = torch.device("cpu"), dataclasses.make_dataclass(
            "D", [("world_size", int)])(1)


def _key(cfg, run, d):  # the file name's key of F_d's stage cache (d = -1: F's initialisation)
    m = ep.Episodic(cfg, run.bench, seed=run.args.seed)
    stage = {s.name: s for s in m.stages()}[f"F{d}" if d >= 0 else "Finit"]
    return settings_key(stage_key(run, m, stage))


def test_cache_key_follows_stage1_config_and_seed():
    cfg, args, bench = _setup([])
    key = _key(cfg, _Run(cfg, args, bench), 0)
    init = _key(cfg, _Run(cfg, args, bench), -1)
    assert len({key, init, _key(cfg, _Run(cfg, args, bench), 1)}) == 3
    for flags in (["--stage1-steps", "5"], ["--ext-width", "0.35"], ["--margin", "0.5"],
                  ["--seed", "1"], ["--feat-dim", "16"]):
        c, a, _ = _setup(flags)
        assert _key(c, _Run(c, a, bench), 0) != key, flags
    for flags in (["--lr", "0.1"], ["--steps", "9"], ["--no-consistency"]):
        c, a, _ = _setup(flags)
        assert _key(c, _Run(c, a, bench), 0) == key, flags  # stage 2 only: reused
    for flags in (["--method", "dann"], ["--method", "baseline"]):  # Table IV rows share F's init
        c, a, _ = _setup(flags)
        assert _key(c, _Run(c, a, bench), -1) == init, flags
    for flags in (["--width", "0.5"], ["--init-steps", "7"]):  # F's init, not the F_d
        c, a, _ = _setup(flags)
        assert _key(c, _Run(c, a, bench), -1) != init, flags
        assert _key(c, _Run(c, a, bench), 0) == key, flags


def _step(flags):
    """One stage-2 step of the method configured by ``flags`` (extractors untrained)."""
    model = build(ep.Episodic, [*TINY, *flags], bench=_bench())
    stage = model.stages()[-1]
    model.stage = stage
    model.train()
    model.begin_stage(stage)
    model.augment = lambda x: x
    return model, model.ext, model.step(data_batch(_bench(), 8))


def test_frozen_extractors_receive_no_gradient():
    before = [{k: v.clone() for k, v in f.state_dict().items()}
              for f in build(ep.Episodic, TINY, bench=_bench()).ext]
    model, extractors, logs = _step([])
    assert {"l_cls", "l_tri", "l_consis"} <= set(logs)
    for f, b in zip(extractors, before):
        assert all(p.grad is None and not p.requires_grad for p in f.parameters())
        assert all(torch.equal(v, b[k]) for k, v in f.state_dict().items())  # incl. BN stats
    assert model.E[0].weight.grad is not None and model.E[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("flags,present,absent", [
    (["--no-triplet"], {"l_cls", "l_consis"}, {"l_tri", "l_dom"}),
    (["--no-consistency"], {"l_cls", "l_tri"}, {"l_consis", "l_dom"}),
    (["--method", "baseline"], {"l_cls"}, {"l_tri", "l_consis", "l_dom"}),
    (["--method", "dann"], {"l_cls", "l_dom"}, {"l_tri", "l_consis"}),
])
def test_ablation_switches_take_a_step(flags, present, absent):
    model, _, logs = _step(flags)
    assert present <= set(logs) and not absent & set(logs)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values())
    assert (model.D is not None) == ("dann" in flags)
    if model.D is not None:
        assert int(model.D[0].schedule.steps) == 1                # GRL warm-up advanced


def test_sample_episode_distinct_domains():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert len(set(ep.sample_episode(4, g))) == 3
    i, j, k = ep.sample_episode(2, g)
    assert {j, k} == {0, 1} and i in (0, 1)
    assert ep.sample_episode(1, g) == (0, 0, 0)


def _protocol1(tmp_path, *flags):
    for f in (ft.market, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.viper, ft.prid, ft.grid,
              ft.ilids):
        f(tmp_path / "data")
    return ep.main(["--data", "real", "--data-root", str(tmp_path / "data"), "--protocol",
                    "protocol1", "--image-size", "64", "32", "--steps", "1", "--stage1-steps", "1", "--batch-size", "8",
                    "--stage-cache", str(tmp_path / "cache"), "--out", str(tmp_path / "r.json"),
                    "--eval-batch-size", "256", *TINY, *flags])


def test_protocol1_through_the_loaders(tmp_path, monkeypatch):
    """Fake Market/CUHK02/CUHK03/CUHK-SYSU trees through the real loaders, 4 extractors,
    one episode; evaluation trimmed to one split of one target (the full one is slow)."""
    import dgblocks.protocols as protocols

    real = protocols.build_benchmark

    def trimmed(*a, **kw):
        b = real(*a, **kw)
        b.targets = [dataclasses.replace(b.targets[-1], splits=b.targets[-1].splits[:1])]
        return b

    monkeypatch.setattr(protocols, "build_benchmark", trimmed)
    out = _protocol1(tmp_path)
    assert out["targets"] == ["ilids"] and out["benchmark"] == "protocol1"
    assert len(list((tmp_path / "cache").glob("episodic-F[0-9]-*.pt"))) == 4


@pytest.mark.slow
def test_protocol1_end_to_end_on_fake_tree(tmp_path):
    out = _protocol1(tmp_path)
    assert out["targets"] == ["prid2011", "grid", "viper", "ilids"]
    assert len(list((tmp_path / "cache").glob("episodic-F[0-9]-*.pt"))) == 4


@pytest.mark.parametrize("method", ["episodic", "baseline"])
def test_table3_dualnorm_global_extractor_takes_a_step(method):
    """Table III: the paper's F is the DualNorm backbone; ``--method baseline`` with it is the
    DualNorm row. The F_d keep their own backbone (``--ext-backbone``)."""
    cfg, _, bench = _setup(["--backbone", "dualnorm", "--ext-backbone", "cnn"])
    f_d = ep.extractor(cfg, cfg.ext_width, (64, 32), cfg.ext_backbone)
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in f_d.modules())
    model, _, logs = _step(["--backbone", "dualnorm", "--ext-backbone", "cnn", "--method",
                            method])
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in model.F.modules())
    assert model.eval()(torch.rand(2, 3, 64, 32)).shape == (2, cfg.emb_dim)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logs.values())
    assert ("l_tri" in logs) == (method == "episodic")


def test_ext_backbone_is_in_the_f_d_cache_key_only():
    cfg, args, bench = _setup([])
    c, a, _ = _setup(["--ext-backbone", "resnet_tiny"])
    assert _key(c, _Run(c, a, bench), 0) != _key(cfg, _Run(cfg, args, bench), 0)
    assert _key(c, _Run(c, a, bench), -1) == _key(cfg, _Run(cfg, args, bench), -1)


def test_f_d_with_their_own_backbone_ignore_backbone_in_their_key():
    """With --ext-backbone the F_d never read --backbone: changing it keeps their cache and
    changes F's (whose initialisation does read it)."""
    a_cfg, a_args, bench = _setup(["--ext-backbone", "resnet_tiny"])
    b_cfg, b_args, _ = _setup(["--ext-backbone", "resnet_tiny", "--backbone", "resnet_small"])
    ra, rb = _Run(a_cfg, a_args, bench), _Run(b_cfg, b_args, bench)
    assert _key(a_cfg, ra, 0) == _key(b_cfg, rb, 0)
    assert _key(a_cfg, ra, -1) != _key(b_cfg, rb, -1)


def test_smoke_dualnorm_f_with_cnn_extractors(tmp_path):
    res = _run(tmp_path, "--backbone", "dualnorm", "--ext-backbone", "cnn")
    assert res["config"]["backbone"] == "dualnorm" and res["config"]["ext_backbone"] == "cnn"
    assert set(res["metrics"]) == set(res["targets"])
