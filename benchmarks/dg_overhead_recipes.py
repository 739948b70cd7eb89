"""One builder per recipe: the recipe's own :class:`~dgblocks.methods.Method` (``recipes.<name>``,
its networks, losses and optimisers as its ``__init__`` and ``configure_optimizers`` make them)
taking its training step on a fixed batch, returned as a
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
    step_flops,
)
from dgblocks.backbones import build_backbone
from dgblocks.methods import Batch, Stage


def method_of(name: str, s: Setting, stage: str = "train", **config: Any) -> Any:
    """Recipe ``name``'s Method at ``config`` on the setting's sizes, ready to step: training
    mode, augmentation off, its main stage current."""
    r = load_recipe(name)
    cls = next(v for v in vars(r).values() if isinstance(v, type) and
               v.__module__ == r.__name__ and hasattr(v, "Config") and hasattr(v, "update"))
    m = cls(r.Config(**config), bench_of(s), seed=0).train()
    m.augment, m.stage = identity, Stage(stage, getattr(m.cfg, "steps", 1))
    return m


def stepper(m: Any, batch: tuple[Tensor, ...]) -> Callable[[], Any]:
    """One training step of method ``m`` on ``batch``."""
    b = Batch(*batch)
    return lambda: m.step(b)


def baseline_case(s: Setting) -> Case:
    """AGG: BNNeck, label-smoothed CE + batch-hard triplet, Adam (one backbone)."""
    m = method_of("baseline", s, backbone=s.backbone, width=s.width, steps=300)
    batch = make_batch(s)
    return Case("baseline", s.backbone, stepper(m, batch),
                plain_step(build_backbone(s.backbone, width=s.width), s.num_ids, batch[0],
                           batch[1]), 1.0, "one backbone (BNNeck, LS-CE, triplet on top)",
                {"backbone": list(m.net.backbone.parameters()),
                 "BNNeck": list(m.net.neck.parameters())})


def dir_reid_case(s: Setting) -> Case:
    """DIR-ReID full: f_S and f_V, entropies, BA (K pairs), phase I and phase II steps."""
    r = load_recipe("dir_reid")
    cfg = r.resolve(r.Config(backbone=s.backbone, width=s.width), digits=False)
    cfg.k = min(cfg.k, s.batch - 1)  # BA draws K partners j != i (K=10 at B=64)
    m = method_of("dir_reid", s, **vars(cfg))
    batch = make_batch(s)
    last = cfg.latent_dim if s.backbone in ("mobilenetv2", "dualnorm") else None
    plain = build_backbone(s.backbone, width=s.width, last_channel=last)
    enc = m.enc
    return Case("dir_reid", s.backbone, stepper(m, batch),
                plain_step(plain, s.num_ids, batch[0], batch[1]), 2.0,
                "two encoders f_S (with IN / IBN) and f_V, each forward + backward",
                {"f_S": list(enc.encoder_s.parameters()), "f_V": list(enc.encoder_v.parameters()),
                 "C_S, C_V (phase II)": list(enc.head_parameters()),
                 "C_SC, C_VC (BA heads)": [*m.c_sc.parameters(), *m.c_vc.parameters()]})


def ddan_case(s: Setting) -> Case:
    """DDAN full (stage 2): L1, L_DA-T on the re-run mapping stage, L_SE from a filled ID pool,
    L_DA-D, ID-pool update."""
    m = method_of("ddan", s, backbone=s.backbone, width=s.width, ablation="full",
                  central="d0")
    net, dim = m.net, m.net.neck.dim
    g = torch.Generator().manual_seed(1)  # every identity seen once: L_SE has its neighbours
    feats = torch.rand(s.num_ids, dim, generator=g, device="cpu").to(torch.get_default_device())
    batch = make_batch(s)
    dom_of = torch.arange(s.num_ids) % s.num_domains  # an identity stays in one domain: the
    dom_of[batch[1].cpu()] = batch[3].cpu()           # batch's own where it has one
    m.pool.set_central(0)
    m.pool.update(feats, labels=torch.arange(s.num_ids), domains=dom_of.to(feats.device))
    m.pool.end_epoch()
    m.ctx.step = m.cfg.steps  # past se_start: L_SE on
    # 4. f_m = M(z.detach()) re-runs the mapping stage M: its share of the backbone's FLOPs
    probe = build_backbone(s.backbone, width=s.width).eval()
    last = probe.get_submodule(probe.stage_names[-1])
    seen = {}
    last.register_forward_hook(lambda mod, i, o: seen.setdefault("z", i[0]))
    total = forward_flops(probe, torch.rand(1, 3, *s.size))  # the hook keeps M's input
    frac = forward_flops(last, seen["z"]) / total
    return Case("ddan", s.backbone, stepper(m, batch),
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

    def objective(**flags: Any) -> Any:
        m = method_of("cdvm", s, backbone=s.cdvm_backbone, steps=100_000, **flags)
        return m, m.cfg

    def step_of(obj: Any, cfg: Any, batch: tuple[Tensor, ...]) -> Callable[[], Any]:
        return stepper(obj, batch)

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
    stages = [m for m in obj.net.backbone.modules() if isinstance(m, r.CDVMStage)]
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
                 "BNNeck": list(obj.net.neck.parameters())}, passes_detail=detail,
                ablations=ablations)


def episodic_case(s: Setting) -> Case:
    """Episodic: F + E + C on the all-source batch, frozen F_j, F_k on the episode batch
    (per-domain extractors of the same backbone and width, F's output = the backbone's)."""
    feat = build_backbone(s.backbone, width=s.width).out_channels  # F = the plain backbone
    m = method_of("episodic", s, backbone=s.backbone, width=s.width, ext_width=s.width,
                  feat_dim=feat)
    m.ext.eval().requires_grad_(False)                       # 1. frozen F_d
    batch, episode = make_batch(s, seed=0), make_batch(s, seed=1)
    m.streams = [_Repeat(episode)] * s.num_domains           # the D_i batch of every episode
    x1 = torch.rand(1, 3, *s.size)
    share = forward_flops(m.ext[1 % s.num_domains], x1) / forward_flops(m.F.eval(), x1)
    m.train()
    m.ext.eval()
    passes = 1.0 + 2 * share / 3      # a forward is ~1/3 of forward + backward (FLOPs)
    return Case("episodic", s.backbone, stepper(m, batch),
                plain_step(build_backbone(s.backbone, width=s.width, last_channel=feat),
                           s.num_ids, batch[0], batch[1]), passes,
                "global extractor F forward + backward, plus forward-only passes of two frozen "
                "per-domain extractors F_j, F_k (same backbone) on the episode batch, each 1/3 "
                "of a forward + backward",
                {"F": list(m.F.parameters()), "E": list(m.E.parameters()),
                 "C": list(m.C.parameters())},
                [p for e in m.ext for p in e.parameters()])


class _Repeat:
    """A batch stream that gives the same batch forever."""

    def __init__(self, batch: tuple[Tensor, ...]) -> None:
        self.batch = batch

    def __next__(self) -> tuple[Tensor, ...]:
        return self.batch


def adin_case(s: Setting) -> Case:
    """ADIN adversarial phase: L_I (CE + centres) + CaNE on camera and time heads; f_N by CE."""
    m = method_of("adin", s, stage="alternate", backbone=s.backbone, adv="cane",
                  nuisance="camera+time", steps=100_000, val_every=100_000)
    m.schedule.phase = "adversarial"
    batch = make_batch(s)
    return Case("adin", s.backbone, stepper(m, batch),
                plain_step(build_backbone(s.backbone), s.num_ids, batch[0], batch[1]), 1.0,
                "one encoder f_E (adversarial phase: f_I, center loss, CaNE on f_N, then f_N "
                "re-trained on detached features)",
                {"f_E": list(m.net.parameters()), "f_I": list(m.f_I.parameters()),
                 "f_N": list(m.f_N.parameters()), "centres": list(m.center.parameters())})


BUILDERS: dict[str, Callable[[Setting], Case]] = {
    "baseline": baseline_case, "dir_reid": dir_reid_case, "ddan": ddan_case,
    "cdvm": cdvm_case, "episodic": episodic_case, "adin": adin_case}
