"""CDVM recipe: smoke run, every ablation switch takes a step, Protocol-1 on a fake real tree,
leave-one-source-out, and the meta step's gradient against finite differences."""

import copy
import json

import pytest
import torch

from dgblocks.data import SyntheticReIDConfig, synthetic_reid
from dgblocks.meta import meta_objective, module_loss, module_params
from dgblocks.protocols import leave_one_out
from recipes import cdvm
from tests.data import fake_trees as ft
from tests.recipes._build import batch as _batch
from tests.recipes._build import build as _build
from tests.recipes._build import fake_bench

FAST = ["--smoke", "--no-plots", "--threads", "1", "--base-width", "4"]


def build(flags, num_domains=2, num_ids=8, base_width=4):
    method = _build(cdvm.CDVM, ["--backbone", "resnet_small", "--base-width", str(base_width),
                                *flags], bench=fake_bench(num_ids, num_domains))
    return method.cfg, method.net, method


def batch(num_domains=2, per_domain=8, seed=0):
    return _batch(num_domains * per_domain, num_domains=num_domains, seed=seed)


def take_step(cfg, method, num_domains=2, per_domain=8):
    method.augment = lambda x: x
    method.train()
    logs = method.step(batch(num_domains, per_domain))
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
    pairs = [p for m in model.modules() if isinstance(m, cdvm.layers.GlobalLocalBlock)
             for p in m.branch_pairs()]
    assert objective.use_ws == (cfg.dis and cfg.ws) and bool(pairs) == (cfg.dis or cfg.aug)
    assert float(objective.ws(pairs)) != 0 if pairs else True
    assert (float(logs["l_attr"]) != 0) == cfg.attr
    assert ("l_mte" in logs) == cfg.meta
    model.eval()  # inference needs no domain labels
    assert model(torch.rand(3, 3, 32, 16)).shape == (3, model.neck.dim)


def smooth(objective):
    """ReLU and max-pool swapped for SiLU / average pooling: at a kink the inner gradient jumps,
    so theta' does, and a central difference straddling it means nothing."""
    for _, parent in list(objective.named_modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (torch.nn.ReLU, torch.nn.MaxPool2d)):
                setattr(parent, name, torch.nn.SiLU() if isinstance(child, torch.nn.ReLU)
                        else torch.nn.AvgPool2d(3, 2, 1))
    return objective.double().train()


def split_batch(seed=1, num_domains=3):
    x, pid, _, dom, _ = batch(num_domains=num_domains, seed=seed)
    tr, te = dom != num_domains - 1, dom == num_domains - 1  # the last domain is held out
    return (x[tr].double(), pid[tr], dom[tr]), (x[te].double(), pid[te], dom[te],
                                                list(range(num_domains - 1)))


def test_meta_gradient_matches_finite_differences():
    """The default configuration (L_dis with its GRL on, elastic style expansion, L_ws), second
    order, three sources: the update direction is the reversed gradient g(theta) of L_mtr plus
    the derivative of L_mte(theta - eta g(theta)), which a central difference checks (float64).
    L_attr is off: L_v's |w_m - w_n| sits at its kink at initialisation."""
    cfg, model, objective = build(["--no-attr", "--steps", "100"], num_domains=3, base_width=2)
    smooth(objective)
    for m in objective.modules():
        if isinstance(m, cdvm.layers.GradientReversal):
            m.step(10)  # DANN warm start at p = 0.1: c = 0.462, as in the recipe's early steps
    assert 0.1 < float(next(m for m in objective.modules()
                             if isinstance(m, cdvm.layers.GradientReversal)).coeff) < 0.9
    train_b, test_b = split_batch(seed=2)  # seed 1 puts a batch-hard choice at a kink
    fn = module_loss(objective, lambda call, b: sum(call(*b).values()))
    params, eta = module_params(objective), 0.05

    def reversed_grad(p):  # the layer's own first-order backward: g(theta)
        torch.manual_seed(0)  # the same style noise in every evaluation
        p = {k: v.detach().requires_grad_() for k, v in p.items()}
        with torch.enable_grad():
            return dict(zip(p, torch.autograd.grad(fn(p, train_b), list(p.values()),
                                                   allow_unused=True)))

    def meta_test(p):  # L_mte(theta - eta g(theta))
        g = reversed_grad(p)
        return fn({k: v - eta * g[k] if g[k] is not None else v for k, v in p.items()}, test_b)

    torch.manual_seed(0)
    out = meta_objective(fn, params, train_b, test_b, inner_lr=eta)
    grads = torch.autograd.grad(out.loss, list(params.values()), allow_unused=True)
    gen = torch.Generator().manual_seed(0)
    v = {k: torch.randn(p.shape, generator=gen, dtype=p.dtype) for k, p in params.items()}
    h = 1e-5
    with torch.no_grad():
        plus = meta_test({k: p + h * v[k] for k, p in params.items()})
        minus = meta_test({k: p - h * v[k] for k, p in params.items()})
    g0 = reversed_grad(params)
    expected = (plus - minus) / (2 * h) + sum((g0[k] * v[k]).sum() for k in params
                                              if g0[k] is not None)
    analytic = sum((gr * v[k]).sum() for gr, k in zip(grads, params) if gr is not None)
    torch.testing.assert_close(analytic, expected, rtol=1e-4, atol=1e-6)


def test_meta_train_loss_does_not_see_the_meta_test_images():
    cfg, _, objective = build([], num_domains=3)
    twin = copy.deepcopy(objective)
    x, pid, cam, dom, ts = batch(num_domains=3)
    other = x.clone()
    other[dom == 2] = torch.rand_like(other[dom == 2])  # only the meta-test domain's images
    logs = []
    for obj, images in ((objective, x), (twin, other)):
        obj.augment = lambda t: t
        probe = cdvm.MetaDomainSplitter(num_domains=3, seed=0)
        while probe.next()[1].tolist() != [2]:
            obj.splitter.next()  # advance to a step whose meta-test domain is 2
        torch.manual_seed(0)
        logs.append(obj.train().step(_batch(len(x), num_domains=3)._replace(images=images)))
    assert torch.equal(logs[0]["l_mtr"], logs[1]["l_mtr"])
    assert not torch.equal(logs[0]["l_mte"], logs[1]["l_mte"])


def test_meta_test_takes_the_unseen_domain_path():
    """No domain classifier and no re-styling on the meta-test domain, whose own local branch
    is left out of the mean."""
    _, model, objective = build([], num_domains=3)
    objective.train()
    x, pid, dom, seen = split_batch()[1]
    called = []
    hooks = [b.register_forward_hook(lambda m, i, o: called.append(m))
             for st in model.modules() if isinstance(st, cdvm.CDVMStage)
             for b in (st.dom_cls, st.style, st.gl.local_branches[2])]
    objective(x.float(), pid, dom, seen)
    assert called == []
    for h in hooks:
        h.remove()


def test_protocol1_on_a_fake_real_tree(tmp_path):
    for make in (ft.market, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.viper, ft.prid, ft.grid,
                 ft.ilids):
        make(tmp_path)
    payload = cdvm.main([*FAST, "--data", "real", "--data-root", str(tmp_path), "--protocol",
                         "protocol1", "--image-size", "64", "32", "--steps", "1", "--batch-size", "8", "--num-instances", "2",
                         "--out", str(tmp_path / "r.json")])
    assert list(payload["metrics"]) == ["prid2011", "grid", "viper", "ilids"]


def test_leave_one_source_out_trains_on_the_rest(tmp_path):
    bench = leave_one_out(synthetic_reid(SyntheticReIDConfig.smoke(num_sources=3)), 1)
    cfg, model, objective = build([], num_domains=bench.num_domains, num_ids=bench.num_ids)
    take_step(cfg, objective, num_domains=2)
    with pytest.raises(ValueError, match="2 source domains"):
        cdvm.main([*FAST, "--holdout", "0", "--out", str(tmp_path / "r.json")])


def test_init_steps_train_the_plain_path_only():
    """--init-steps: a stage before CDVM's that trains the stem, the global branches and the
    head on L_ce + L_tri + L_cent (the stand-in for a pretrained backbone); the local branches,
    fusion, hyper-networks and domain classifiers stay as built, the GRL clock stands still."""
    cfg, model, method = build(["--init-steps", "2"])
    init, main = method.stages()
    assert (init.name, init.steps, init.clocks, main.name) == ("init", 2, False, "train")
    method.augment = lambda x: x
    method.train()
    before = {n: p.detach().clone() for n, p in method.named_parameters()}
    logs = method.init_step(batch())
    assert set(logs) == {"l_ce", "l_tri", "l_cent"} and all(map(torch.isfinite, logs.values()))
    moved = {n for n, p in method.named_parameters() if not torch.equal(p, before[n])}
    cdvm_own = ("local_branches", "fuse", "hyper", "dom_cls")
    assert not {n for n in moved if any(k in n for k in cdvm_own)}
    assert any("global_branch" in n for n in moved) and any("classifier" in n for n in moved)
    logs = take_step(cfg, method)  # then CDVM's own step, with every term
    assert float(logs["l_attr"]) != 0 and "l_mte" in logs


def test_init_steps_default_is_400_from_scratch_and_0_with_pretrained_weights(monkeypatch):
    monkeypatch.setattr(cdvm, "load_pretrained", lambda net, path: "loaded")  # no file needed
    auto = ["--init-steps", "-1"]  # the default (--smoke, which build() adds, gives 2)
    for flags, want in ((auto, 400), ([*auto, "--pretrained", "w.pt"], 0),
                        (["--init-steps", "7"], 7)):
        cfg, _, method = build(flags)  # the constructor resolves it, whoever builds the method
        assert cfg.init_steps == want and sum(s.steps for s in method.stages()[:-1]) == want


def test_init_lr_sets_the_init_stage_learning_rate_only():
    for flags, want in ((["--init-lr", "0.02"], 0.02), ([], 0.001)):
        _, _, method = build(["--init-steps", "2", "--lr", "0.001", *flags])
        opt = method.optimizers
        assert opt["init"].param_groups[0]["initial_lr"] == pytest.approx(want)
        assert opt["main"].param_groups[0]["initial_lr"] == pytest.approx(0.001)
