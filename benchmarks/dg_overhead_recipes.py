"""One builder per recipe: the recipe's own ``build_model``, ``make_losses`` and ``train_step``
(``recipes.<name>``) on a fixed batch, with the optimisers its ``main`` uses, returned as a
:class:`~benchmarks.dg_overhead_cases.Case` beside the plain step of the same backbone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from benchmarks.dg_overhead_cases import (
    K_INST,
    Case,
    Setting,
    bench_of,
    forward_flops,
    identity,
    load_recipe,
    make_batch,
    plain_step,
    schedule,
    step_flops,
)
from dgblocks.backbones import build_backbone


def baseline_case(s: Setting) -> Case:
    """AGG: BNNeck, label-smoothed CE + batch-hard triplet, Adam (one backbone)."""
    r = load_recipe("baseline")
    cfg = r.Config(backbone=s.backbone, width=s.width)
    batch = make_batch(s)
    model = r.build_model(cfg, bench_of(s)).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    kw = dict(augment=identity, losses=r.make_losses(cfg), opt=opt, sched=schedule(opt), cfg=cfg)
    return Case("baseline", s.backbone, lambda: r.train_step(model, batch, **kw),
                plain_step(build_backbone(s.backbone, width=s.width), s.num_ids, batch[0],
                           batch[1]), 1.0, "one backbone (BNNeck, LS-CE, triplet on top)",
                {"backbone": list(model.backbone.parameters()),
                 "BNNeck": list(model.neck.parameters())})


def dir_reid_case(s: Setting) -> Case:
    """DIR-ReID full: f_S and f_V, entropies, BA (K pairs), phase I and phase II steps."""
    r = load_recipe("dir_reid")
    from dgblocks.sampling import BackdoorAdjustment

    cfg = r.resolve(r.Config(backbone=s.backbone, width=s.width), digits=False)
    cfg.k = min(cfg.k, s.batch - 1)  # BA draws K partners j != i (K=10 at B=64)
    model = r.build_model(cfg, bench_of(s)).train()
    opts, scheds = r.make_optimisers(model, cfg, digits=False)
    kw = dict(augment=identity, losses=r.make_losses(cfg),
              ba=BackdoorAdjustment(k=cfg.k, strategy=cfg.ba),
              gen=torch.Generator(torch.get_default_device()).manual_seed(0), opts=opts,
              scheds=scheds, cfg=cfg)
    batch = make_batch(s)
    last = cfg.latent_dim if s.backbone in ("mobilenetv2", "dualnorm") else None
    plain = build_backbone(s.backbone, width=s.width, last_channel=last)
    enc = model.enc
    return Case("dir_reid", s.backbone, lambda: r.train_step(model, batch, **kw),
                plain_step(plain, s.num_ids, batch[0], batch[1]), 2.0,
                "two encoders f_S (with IN / IBN) and f_V, each forward + backward",
                {"f_S": list(enc.encoder_s.parameters()), "f_V": list(enc.encoder_v.parameters()),
                 "C_S, C_V (phase II)": list(enc.head_parameters()),
                 "C_SC, C_VC (BA heads)": [*model.c_sc.parameters(), *model.c_vc.parameters()]})


def ddan_case(s: Setting) -> Case:
    """DDAN full (stage 2): L1, L_DA-T on the re-run mapping stage, L_SE from a filled ID pool,
    L_DA-D, ID-pool update."""
    r = load_recipe("ddan")
    from dgblocks.memory import IDPool

    cfg = r.Config(backbone=s.backbone, width=s.width, ablation="full")
    net = r.build_model(cfg, bench_of(s), ablation="full", central=0).train()
    dim = net.neck.dim
    pool = IDPool(num_ids=s.num_ids, dim=dim, num_domains=s.num_domains, k=cfg.k,
                  alpha=cfg.alpha, central=0)
    g = torch.Generator().manual_seed(1)  # every identity seen once: L_SE has its neighbours
    feats = torch.rand(s.num_ids, dim, generator=g, device="cpu").to(torch.get_default_device())
    batch = make_batch(s)
    dom_of = torch.arange(s.num_ids) % s.num_domains  # an identity stays in one domain: the
    dom_of[batch[1].cpu()] = batch[3].cpu()           # batch's own where it has one
    pool.update(feats, labels=torch.arange(s.num_ids), domains=dom_of.to(feats.device))
    pool.end_epoch()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr,
                           weight_decay=cfg.weight_decay)
    kw = dict(pool=pool, central=0, step=cfg.steps, cfg=cfg, augment=identity,
              losses=r.make_losses(cfg),
              opt=opt, sched=schedule(opt), ablation="full")
    # 4. f_m = M(z.detach()) re-runs the mapping stage M: its share of the backbone's FLOPs
    probe = build_backbone(s.backbone, width=s.width).eval()
    last = probe.get_submodule(probe.stage_names[-1])
    seen = {}
    last.register_forward_hook(lambda m, i, o: seen.setdefault("z", i[0]))
    total = forward_flops(probe, torch.rand(1, 3, *s.size))  # the hook keeps M's input
    frac = forward_flops(last, seen["z"]) / total
    return Case("ddan", s.backbone, lambda: r.train_step(net, batch, **kw),
                plain_step(build_backbone(s.backbone, width=s.width), s.num_ids, batch[0],
                           batch[1]), 1.0 + frac,
                f"one backbone + the mapping stage M ({probe.stage_names[-1]}, {frac:.3f} of "
                "its forward FLOPs) re-run on detached E(x) for L_DA-T / L_SE",
                {"E": list(net.encoder.parameters()), "M": list(net.mapping.parameters()),
                 "I (BNNeck)": list(net.neck.parameters()), "D": list(net.disc.parameters())})


def cdvm_case(s: Setting) -> Case:
    """CDVM: global-local stages, style expansion + fusion, hyper-networks, second-order meta step
    (on a ResNet: the model wraps a ResNet stem)."""
    r = load_recipe("cdvm")
    from dgblocks.meta import MetaDomainSplitter, MetaObjective

    def objective(**flags: Any) -> Any:
        c = r.Config(backbone=s.cdvm_backbone, steps=100_000, **flags)
        return r.build_model(c, bench_of(s)).train(), c

    def step_of(obj: Any, cfg: Any, batch: tuple[Tensor, ...]) -> Callable[[], Any]:
        opt = torch.optim.Adam(obj.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        kw = dict(augment=identity, splitter=MetaDomainSplitter(num_domains=s.num_domains),
                  meta=MetaObjective(inner_lr=cfg.meta_lr, first_order=cfg.first_order,
                                     fused_norm=cfg.fused_norm),
                  opt=opt, sched=schedule(opt), cfg=cfg)
        return lambda: r.train_step(obj, batch, **kw)

    batch = make_batch(s)
    obj, cfg = objective()
    # the paper's meta step (meta-train at theta, meta-test at theta', second order) in FLOPs
    # of the plain step, on one batch of K images per domain: on the plain backbone, with the
    # per-domain local blocks (eq 1), and on the whole architecture (+ the 2C -> C fusion
    # convolutions of every stage, eq 9, and the hyper-networks, 3.4)
    small = make_batch(Setting(**{**s.__dict__, "batch": K_INST * s.num_domains}))
    unit = step_flops(plain_step(build_backbone(s.cdvm_backbone), s.num_ids, small[0], small[1]))

    def meta_passes(**flags: Any) -> float:
        o, c = objective(**flags)
        return step_flops(step_of(o, c, small)) / unit

    detail = {"meta step, plain backbone": meta_passes(dis=False, aug=False, attr=False),
              "+ local blocks": meta_passes(ws=False, aug=False, attr=False),
              "+ fusion convolutions, hyper-networks (all)": meta_passes()}
    passes = detail["+ fusion convolutions, hyper-networks (all)"]
    # where the time goes: the same step with blocks switched off (Table 4 / 5 switches)
    ablations = {name: step_of(*objective(**flags), batch) for name, flags in (
        ("meta step, plain backbone (no L_dis, f_aug, L_attr)", dict(dis=False, aug=False,
                                                                       attr=False)),
        ("+ global-local blocks, domain classifiers (L_inv, L_spe)",
         dict(ws=False, aug=False, attr=False)),
        ("+ L_ws", dict(aug=False, attr=False)),
        ("+ style expansion and fusion (f_aug)", dict(attr=False)),
        ("full step, PyTorch's double backward of batch norm (--no-fused-norm)",
         dict(fused_norm=False)))}
    stages = [m for m in obj.model.backbone.modules() if isinstance(m, r.CDVMStage)]
    return Case("cdvm", s.cdvm_backbone, step_of(obj, cfg, batch),
                plain_step(build_backbone(s.cdvm_backbone), s.num_ids, batch[0], batch[1]),
                passes, "meta-train pass at theta, meta-test pass at theta' and second-order "
                "backward through the inner gradient, on the paper's architecture (per-domain "
                "local blocks, a 2C -> C fusion convolution per stage): its FLOPs are "
                f"{passes:.2f} plain steps ({detail['meta step, plain backbone']:.2f} on the "
                f"plain backbone, {detail['+ local blocks']:.2f} with the local blocks)",
                {"global branches": [p for st in stages for p in st.gl.global_branch.parameters()],
                 "local branches": [p for st in stages for p in st.gl.local_branches.parameters()],
                 "domain classifiers": [p for st in stages for p in st.dom_cls.parameters()],
                 "style fusion": [p for st in stages for p in st.fuse.parameters()],
                 "hyper-networks": [p for st in stages for p in st.hyper.parameters()],
                 "BNNeck": list(obj.model.neck.parameters())}, passes_detail=detail,
                ablations=ablations)


def episodic_case(s: Setting) -> Case:
    """Episodic: F + E + C on the all-source batch, frozen F_j, F_k on the episode batch
    (per-domain extractors of the same backbone and width, F's output = the backbone's)."""
    r = load_recipe("episodic")

    feat = build_backbone(s.backbone, width=s.width).out_channels  # F = the plain backbone
    cfg = r.Config(backbone=s.backbone, width=s.width, ext_width=s.width, feat_dim=feat)
    model = r.build_model(cfg, bench_of(s)).train()
    extractors = [r.extractor(cfg, cfg.ext_width, s.size).eval().requires_grad_(False)
                  for _ in range(s.num_domains)]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [100_000], gamma=0.1)
    batch, (xi, pid_i, *_) = make_batch(s, seed=0), make_batch(s, seed=1)
    g = s.num_domains
    episode = ((xi, pid_i), (1 % g, 2 % g))  # D_i batch; frozen F_j, F_k
    x1 = torch.rand(1, 3, *s.size)
    share = forward_flops(extractors[1], x1) / forward_flops(model.F.eval(), x1)
    model.train()
    passes = 1.0 + 2 * share / 3      # a forward is ~1/3 of forward + backward (FLOPs)
    kw = dict(augment=identity, losses=r.make_losses(cfg), opt=opt, sched=sched, cfg=cfg)
    return Case("episodic", s.backbone,
                lambda: r.train_step(model, extractors, batch, episode, **kw),
                plain_step(build_backbone(s.backbone, width=s.width, last_channel=feat),
                           s.num_ids, batch[0], batch[1]), passes,
                "global extractor F forward + backward, plus forward-only passes of two frozen "
                "per-domain extractors F_j, F_k (same backbone) on the episode batch, each 1/3 "
                "of a forward + backward",
                {"F": list(model.F.parameters()), "E": list(model.E.parameters()),
                 "C": list(model.C.parameters())},
                [p for e in extractors for p in e.parameters()])


def adin_case(s: Setting) -> Case:
    """ADIN adversarial phase: L_I (CE + centres) + CaNE on camera and time heads; f_N by CE."""
    r = load_recipe("adin")
    from dgblocks import losses

    cfg = r.Config(backbone=s.backbone, adv="cane", nuisance="camera+time")
    sizes = {"camera": 6, "time": r.PERIODS}
    # the recipe's f_E, f_I, f_N at the setting's width (its build_model fixes MobileNetV2 at 0.5)
    model = r.ADIN(build_backbone(s.backbone, width=s.width), s.num_ids, sizes,
                   cfg.hidden).train()
    center = losses.CenterLoss(num_classes=s.num_ids, dim=model.f_E.out_channels)
    opt = torch.optim.Adam([*model.f_E.parameters(), *model.f_I.parameters(),
                            *center.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt_n = torch.optim.Adam(model.f_N.parameters(), lr=cfg.lr_n, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(2)  # CaNE's prior from (random) training labels
    labels = {"camera": torch.randint(0, 6, (1000,), generator=g, device="cpu"),
              "time": torch.randint(0, r.PERIODS, (1000,), generator=g, device="cpu")}
    batch = make_batch(s)
    kw = dict(phase="adversarial", augment=identity, ce=losses.LabelSmoothingCE(eps=cfg.eps),
              center=center, l_adv=r.adversarial_losses(cfg, labels, sizes), opt=opt,
              opt_n=opt_n, sched=torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), cfg=cfg,
              periods=r.PERIODS)
    return Case("adin", s.backbone, lambda: r.train_step(model, batch, **kw),
                plain_step(build_backbone(s.backbone, width=s.width), s.num_ids, batch[0],
                           batch[1]), 1.0,
                "one encoder f_E (adversarial phase: f_I, center loss, CaNE on f_N, then f_N "
                "re-trained on detached features)",
                {"f_E": list(model.f_E.parameters()), "f_I": list(model.f_I.parameters()),
                 "f_N": list(model.f_N.parameters()), "centres": list(center.parameters())})


BUILDERS: dict[str, Callable[[Setting], Case]] = {
    "baseline": baseline_case, "dir_reid": dir_reid_case, "ddan": ddan_case,
    "cdvm": cdvm_case, "episodic": episodic_case, "adin": adin_case}
