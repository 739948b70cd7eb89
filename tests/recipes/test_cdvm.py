"""CDVM recipe: smoke run, every ablation switch takes a step, Protocol-1 on a fake real tree,
leave-one-source-out, and the meta step's gradient against finite differences."""

import json
from types import SimpleNamespace

import pytest
import torch

from dgblocks.data import SyntheticReIDConfig, synthetic_reid
from dgblocks.engine import parse_config
from dgblocks.meta import MetaObjective, meta_objective, module_loss, module_params
from dgblocks.protocols import leave_one_out
from recipes import cdvm
from tests.data import fake_trees as ft

FAST = ["--smoke", "--no-plots", "--threads", "1", "--base-width", "4"]


def build(flags, num_domains=2, num_ids=8, base_width=4):
    cfg, _ = parse_config(cdvm.Config, ["--smoke", "--base-width", str(base_width), *flags])
    objective = cdvm.build_model(cfg, SimpleNamespace(num_ids=num_ids, num_domains=num_domains))
    return cfg, objective.model, objective


def batch(num_domains=2, per_domain=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = num_domains * per_domain
    x = torch.rand(n, 3, 32, 16, generator=g)
    pid = torch.arange(n) // 4
    dom = torch.arange(n) // per_domain
    return x, pid, torch.zeros(n, dtype=torch.long), dom, torch.zeros(n, dtype=torch.long)


def take_step(cfg, objective, num_domains=2, per_domain=8):
    opt = torch.optim.Adam(objective.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    from dgblocks.meta import MetaDomainSplitter

    splitter = MetaDomainSplitter(num_domains=num_domains, seed=0)
    objective.train()
    logs = cdvm.train_step(objective, batch(num_domains, per_domain), augment=lambda x: x,
                           splitter=splitter, meta=MetaObjective(inner_lr=cfg.meta_lr), opt=opt,
                           sched=sched, cfg=cfg)
    assert torch.isfinite(logs["loss"])
    return logs


def test_smoke_run_end_to_end(tmp_path):
    out = tmp_path / "r.json"
    payload = cdvm.main([*FAST, "--steps", "1", "--out", str(out)])
    assert out.exists() and json.loads(out.read_text())["recipe"] == "cdvm"
    assert set(payload["metrics"]) == {"tgt-night", "tgt-lowres"}
    assert 0 <= payload["summary"]["average"]["mAP"] <= 100


@pytest.mark.parametrize("flags", [
    [], ["--no-dis"], ["--no-aug"], ["--no-attr"], ["--no-dis", "--no-aug", "--no-attr"],
    ["--no-ws", "--expansion", "determined", "--subspaces", "2", "--first-order"], ["--no-meta"],
], ids=lambda f: " ".join(f) or "full")
def test_each_switch_builds_and_takes_a_step(flags):
    cfg, model, objective = build(flags)
    logs = take_step(cfg, objective)
    n_gl = sum(isinstance(m, cdvm.layers.GlobalLocalBlock) for m in model.modules())
    assert n_gl == (4 if cfg.dis or cfg.aug else 0)  # one per backbone stage
    assert (float(logs["l_ws"]) != 0) == (cfg.dis and cfg.ws)
    assert (float(logs["l_attr"]) != 0) == cfg.attr
    assert ("l_mte" in logs) == cfg.meta
    model.eval()  # inference needs no domain labels
    assert model(torch.rand(3, 3, 32, 16)).shape == (3, model.neck.dim)


def test_meta_gradient_matches_finite_differences():
    """The recipe's full objective, second order, against a central difference (float64;
    no GRL, whose backward is by design not the loss gradient; deterministic expansion; no
    L_v, whose |w_m - w_n| sits at its kink at initialisation; ReLU and max-pool swapped for
    smooth SiLU / average pooling: at a kink the inner gradient jumps, so theta' does)."""
    cfg, model, objective = build(["--no-dis", "--no-attr", "--expansion", "determined"],
                                  base_width=2)
    for _, parent in list(objective.named_modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (torch.nn.ReLU, torch.nn.MaxPool2d)):
                setattr(parent, name, torch.nn.SiLU() if isinstance(child, torch.nn.ReLU)
                        else torch.nn.AvgPool2d(3, 2, 1))
    objective.double().train()
    x, pid, _, dom, _ = batch(seed=1)
    x = x.double()
    tr, te = dom == 0, dom == 1
    fn = module_loss(objective, lambda call, b: call(*b))
    params = module_params(objective)

    def f(p):
        return meta_objective(fn, p, (x, pid, dom, tr), (x, pid, dom, te), inner_lr=0.05).loss

    grads = torch.autograd.grad(f(params), list(params.values()))
    g = torch.Generator().manual_seed(0)
    v = {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in params.items()}
    h = 1e-5
    plus = f({k: (p + h * v[k]).detach().requires_grad_() for k, p in params.items()})
    minus = f({k: (p - h * v[k]).detach().requires_grad_() for k, p in params.items()})
    fd = (plus - minus).detach() / (2 * h)
    analytic = sum((gr * v[k]).sum() for gr, k in zip(grads, params))
    torch.testing.assert_close(analytic, fd, rtol=1e-4, atol=1e-6)


def test_protocol1_on_a_fake_real_tree(tmp_path):
    for make in (ft.market, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.viper, ft.prid, ft.grid,
                 ft.ilids):
        make(tmp_path)
    payload = cdvm.main([*FAST, "--data", "real", "--data-root", str(tmp_path), "--protocol",
                         "protocol1", "--steps", "1", "--batch-size", "8", "--num-instances", "2",
                         "--out", str(tmp_path / "r.json")])
    assert list(payload["metrics"]) == ["prid2011", "grid", "viper", "ilids"]


def test_leave_one_source_out_trains_on_the_rest(tmp_path):
    bench = leave_one_out(synthetic_reid(SyntheticReIDConfig.smoke(num_sources=3)), 1)
    cfg, model, objective = build([], num_domains=bench.num_domains, num_ids=bench.num_ids)
    take_step(cfg, objective, num_domains=2)
    with pytest.raises(ValueError, match="2 source domains"):
        cdvm.main([*FAST, "--holdout", "0", "--out", str(tmp_path / "r.json")])
