"""DIR-ReID: disentangled encoders (MDDAN) + backdoor adjustment (BA).

Zhang et al., "Learning Domain Invariant Representations for Generalizable Person
Re-Identification" (DIR-ReID), IEEE TIP 2022 / arXiv:2103.15890. Readings of the paper: docs/recipes/dir_reid.md.

Algorithm (one step; C_S = identity head, C_V = domain head, shared by both latent spaces):
    1. draw a batch (x, y, d) from the mixed sources;
    2. s = f_S(x) (IN-augmented identity encoder), v = f_V(x) (domain encoder);
    3. BA: pair each s_i with K domain factors v~_ik chosen by --ba (eq 8-10);
    4. Phase I (f_S, f_V, C_SC, C_VC; C_S, C_V frozen) minimises
       L_sid + l1 L_domindis + L_vdom + l2 L_idindis + l3 L_idinvar + l4 L_dominvar
       L_sid = CE_eps(C_S(s), y) (eq 2);  L_domindis = -H(C_V(s)) (eq 3-4);
       L_vdom = CE(C_V(v), d) (eq 7);     L_idindis = -H(C_S(v)) (eq 6);
       L_idinvar = sum_k CE_eps(C_SC(s_i + v~_ik), y_i) (eq 11; sum over k, mean over i);
       L_dominvar = sum_k CE(C_VC(s_i + v~_ik), domain of v~_ik) (the dual term of eq 15);
    5. Phase II (C_S, C_V on the detached s, v of step 2) minimises
       L_sid + L_sdom + L_vdom + L_vid (eq 12-14).
Variants (Tables 5 and 8): baseline = f_S + C_S, L_sid only; dual_dann = steps 4-5 without BA
and with gradient reversal + misclassification (CE behind a GRL) in place of the entropies;
mddan = steps 4-5 without BA; full = everything. Test: s = f_S(x) (ReID) or C_S(f_S(x)) (digits).

    python recipes/dir_reid.py --smoke
    python recipes/dir_reid.py --variant mddan             # synthetic ReID
    python recipes/dir_reid.py --data digits --ba random   # rotated digits, test on 75 deg
    python recipes/dir_reid.py --data digits --latent-dim 2  # + Figure 6 analogue PNG
    python recipes/dir_reid.py --data real --data-root DIR --protocol protocol1
    python recipes/dir_reid.py --source 0                  # Table 4: one source, cameras as domains
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dgblocks.backbones import BACKBONES, DigitsCNN, MobileNetV2, build_backbone
from dgblocks.data.transforms import train_transform
from dgblocks.engine import arg, image_size, normalize_input, setup, warmup_cosine
from dgblocks.layers import DannSchedule, DisentangledEncoders, GradientReversal
from dgblocks.losses import LabelSmoothingCE, NegEntropy
from dgblocks.protocols import DOMAIN_LABELS, source_domains
from dgblocks.sampling import BackdoorAdjustment, backdoor_linear

VARIANTS = ("baseline", "dual_dann", "mddan", "full")


@dataclass
class Config:
    variant: str = arg("full", "baseline | dual_dann | mddan | full (Table 5/8 rows)",
                       choices=VARIANTS)
    ba: str = arg("auto", "BA strategy (3.3); auto: mixup for ReID, mixhard for digits",
                  choices=("auto", "random", "hardest", "mixup", "mixhard"))
    k: int = arg(10, "K domain factors per sample (4.4: K=10; Figure 5 sweeps it); 1 <= K < "
                 "batch size; mixhard needs K >= 2", smoke=4)
    source: int = arg(-1, "-1: every source; N: synthetic source N alone, the others are "
                      "targets (Table 4; real data: --protocol direct:M->D)")
    domains: str = arg("auto", "domain labels d: dataset | camera ((source, camera) pairs, "
                       "Table 4) | auto: camera with one source", choices=DOMAIN_LABELS)
    lambda1: float = arg(1.0, "weight of L_domindis (4.2)")
    lambda2: float = arg(0.1, "weight of L_idindis (4.2)")
    lambda3: float = arg(1.0, "weight of L_idinvar (4.2)")
    lambda4: float = arg(1.0, "weight of L_dominvar (4.2)")
    eps: float = arg(0.1, "label smoothing of the identity losses (4.2)")
    backbone: str = arg("resnet_tiny", "f_S and f_V on ReID data: resnet_tiny (f_S with IBN-a; "
                        "learns from scratch on CPU) | mobilenetv2 (4.2; f_S with IN; at chance "
                        "from scratch here) | ... (digits: the Table 6 CNN)", choices=BACKBONES)
    latent_dim: int = arg(0, "size of s and v; 0: 2 (digits, Table 6) or the backbone's output "
                          "(MobileNetV2 1280; ResNets have no other size)")
    width: float = arg(0.5, "MobileNetV2 width multiplier (0.5: fast on 2 CPU cores)")
    steps: int = arg(-1, "training steps (0: the untrained network); -1: 600 (ReID, 12 epochs of "
                     "the synthetic sources) or 200 (digits); the paper's 150 / 500 epochs do not "
                     "fit a CPU run", smoke=6)
    batch_size: int = arg(0, "batch size; 0: 64 (ReID; paper 128; digits; paper 100)",
                          smoke=16)
    optimizer: str = arg("adam", "ReID: adam (the from-scratch regime of every recipe: warm-up "
                         "then cosine, docs/decisions.md) | sgd (4.2: momentum 0.9, /10 after 2/3)",
                         choices=("adam", "sgd"))
    lr: float = arg(0.0, "0: Adam 6e-3 (ReID regime), SGD 0.02 (4.2) or Adam 1e-3 (digits, E.2)")
    weight_decay: float = arg(5e-4, "weight decay (ReID; not given in the paper)")


class DIRReID(nn.Module):
    """f_S, f_V with shared heads C_S, C_V (DisentangledEncoders) and the BA heads C_SC, C_VC.

    Eval-mode ``forward`` is the retrieval feature s = f_S(x) (what is exported)."""

    def __init__(self, enc_s: nn.Module, enc_v: nn.Module, dim: int, num_ids: int,
                 num_domains: int, steps: int) -> None:
        super().__init__()
        self.enc = DisentangledEncoders(encoder_s=enc_s, encoder_v=enc_v, dim=dim,
                                        num_ids=num_ids, num_domains=num_domains)
        self.c_sc = nn.Linear(2 * dim, num_ids)       # C_SC: identity of s (+) v
        self.c_vc = nn.Linear(2 * dim, num_domains)   # C_VC: domain of v in s (+) v (appendix)
        self.grl = GradientReversal(schedule=DannSchedule(max_steps=max(steps, 1)))  # dual DANN

    def forward(self, x):
        return self.enc.encoder_s(normalize_input(x))

    def classify(self, x):
        return self.enc.id_head(self(x))

    def phase1_parameters(self):
        yield from self.enc.encoder_parameters()
        yield from self.c_sc.parameters()
        yield from self.c_vc.parameters()


def resolve(cfg: Config, digits: bool) -> Config:
    """Fill the 0/auto defaults that depend on the data (ReID 4.2 vs digits E.2)."""
    cfg.ba = cfg.ba if cfg.ba != "auto" else ("mixhard" if digits else "mixup")
    if not digits and cfg.backbone not in ("mobilenetv2", "dualnorm"):
        out = build_backbone(cfg.backbone).out_channels
        if cfg.latent_dim not in (0, out):
            raise ValueError(f"latent_dim: {cfg.backbone} outputs {out}, got {cfg.latent_dim}")
        cfg.latent_dim = out
    cfg.latent_dim = cfg.latent_dim or (2 if digits else 1280)
    cfg.steps = cfg.steps if cfg.steps >= 0 else (200 if digits else 600)
    cfg.batch_size = cfg.batch_size or 64
    cfg.lr = cfg.lr or (1e-3 if digits else 0.02 if cfg.optimizer == "sgd" else 6e-3)
    return cfg


def make_losses(cfg: Config) -> nn.ModuleDict:
    """The losses of steps 4-5, by name (``train_step`` reads them by name): identity CE_eps,
    domain CE (plain; mean and per sample), negative entropy."""
    return nn.ModuleDict(dict(ce_id=LabelSmoothingCE(eps=cfg.eps), ce_dom=LabelSmoothingCE(eps=0.0),
                              ce_dom_each=LabelSmoothingCE(eps=0.0, reduction="none"),
                              negent=NegEntropy()))


def build_model(cfg: Config, bench) -> DIRReID:
    """f_S, f_V and the heads for ``bench`` (``cfg`` after :func:`resolve`)."""
    if bench.task == "classification":               # Table 6 CNN for both encoders
        c = bench.train.images.shape[1]
        enc_s, enc_v = (DigitsCNN(out_dim=cfg.latent_dim, in_channels=c,
                                  image_size=image_size(bench.train)) for _ in range(2))
    elif cfg.backbone in ("mobilenetv2", "dualnorm"):  # 4.2: MobileNetV2 (+IN for f_S)
        enc_s = MobileNetV2.dualnorm(width_mult=cfg.width, last_stride=1,
                                     last_channel=cfg.latent_dim)
        enc_v = MobileNetV2(width_mult=cfg.width, last_stride=1, last_channel=cfg.latent_dim)
    else:                                            # IBN-a in f_S: the ResNet analogue of IN
        enc_s = build_backbone(cfg.backbone, ibn=True)
        enc_v = build_backbone(cfg.backbone)
    return DIRReID(enc_s, enc_v, cfg.latent_dim, bench.num_ids, bench.num_domains, cfg.steps)


def train_step(model: DIRReID, batch, *, augment, losses: nn.ModuleDict, ba, gen, opts, scheds,
               cfg: Config) -> dict:
    ce_id, ce_dom, ce_dom_each, negent = (losses[k] for k in ("ce_id", "ce_dom", "ce_dom_each",
                                                             "negent"))
    x, y, _cam, d, _ts = batch                             # 1. batch from the mixed sources
    x = normalize_input(augment(x))
    enc, v_ = model.enc, cfg.variant
    s = enc.encoder_s(x)                                   # 2. s = f_S(x)
    v = enc.encoder_v(x) if v_ != "baseline" else None     #    v = f_V(x)
    logs = {"l_sid": ce_id(enc.id_head(s), y)}             # 4. Phase I (C_S, C_V frozen)
    if v_ in ("mddan", "full"):
        logs["l_domindis"] = cfg.lambda1 * negent(enc.domain_head(s))
        logs["l_idindis"] = cfg.lambda2 * negent(enc.id_head(v))
    elif v_ == "dual_dann":                                #    GRL + misclassification
        logs["l_domindis"] = cfg.lambda1 * ce_dom(enc.domain_head(model.grl(s)), d)
        logs["l_idindis"] = cfg.lambda2 * ce_id(enc.id_head(model.grl(v)), y)
        model.grl.step()
    if v is not None:
        logs["l_vdom"] = ce_dom(enc.domain_head(v), d)
    if v_ == "full":                                       # 3. BA: K factors v~_ik per s_i
        idx, w = ba.indices(v, generator=gen)              #    heads on s_i (+) v~_ik: linear,
        z_sc, z_vc = (backdoor_linear(s, v, idx, w, h.weight, h.bias).flatten(0, 1)
                      for h in (model.c_sc, model.c_vc))   #    so the pairs are never built
        k = idx.shape[1]                                   #    eq 11: sum over k, mean over i
        logs["l_idinvar"] = cfg.lambda3 * k * ce_id(z_sc, y.repeat_interleave(k))
        w = w.flatten()                                    #    mixed v~: mixed domain target
        logs["l_dominvar"] = cfg.lambda4 * (
            w * ce_dom_each(z_vc, d[idx[..., 0].flatten()])
            + (1 - w) * ce_dom_each(z_vc, d[idx[..., 1].flatten()])).view(-1, k).sum(1).mean()
    loss1 = sum(logs.values())
    opts[0].zero_grad(set_to_none=True)
    loss1.backward()
    opts[0].step()
    s, v = s.detach(), (v.detach() if v is not None else None)  # 5. Phase II, detached
    l2 = ce_id(enc.id_head(s), y)                          #    L_sid
    if v is not None:                                      #    + L_sdom + L_vdom + L_vid
        l2 = (l2 + ce_dom(enc.domain_head(s), d) + ce_dom(enc.domain_head(v), d)
              + ce_id(enc.id_head(v), y))
    opts[1].zero_grad(set_to_none=True)
    l2.backward()
    opts[1].step()
    for sc in scheds:
        sc.step()
    return {k: t.detach() for k, t in logs.items()} | {
        "loss1": loss1.detach(), "loss2": l2.detach(), "lr": scheds[0].get_last_lr()[0]}


def make_optimisers(model: DIRReID, cfg: Config, digits: bool):
    heads = list(model.enc.head_parameters())
    if digits:   # E.2: Adam 1e-3, linear warm-up over the first 100 of 500 epochs
        opts = [torch.optim.Adam(list(model.phase1_parameters()), lr=cfg.lr),
                torch.optim.Adam(heads, lr=cfg.lr)]
        w = max(1, cfg.steps // 5)
        factor = lambda s: min(1.0, (s + 1) / w)  # noqa: E731
    elif cfg.optimizer == "sgd":  # 4.2: SGD 0.02, momentum 0.9, /10 after 100 of 150 epochs
        opts = [torch.optim.SGD(p, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
                for p in (list(model.phase1_parameters()), heads)]
        factor = lambda s: 0.1 if s >= 2 * cfg.steps // 3 else 1.0  # noqa: E731
    else:        # the regime of every recipe: Adam, 10% linear warm-up, then cosine
        opts = [torch.optim.Adam(p, lr=cfg.lr, weight_decay=cfg.weight_decay)
                for p in (list(model.phase1_parameters()), heads)]
        factor = lambda s: warmup_cosine(s, total=cfg.steps, warmup=0.1)  # noqa: E731
    return opts, [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in opts]


def main(argv=None) -> dict:
    cfg, run = setup(Config, argv, name="dir_reid", description=__doc__)
    bench = run.bench = source_domains(run.benchmark(), source=cfg.source, domains=cfg.domains)
    digits = bench.task == "classification"
    cfg = resolve(cfg, digits)
    if run.dist.world_size > 1:  # two optimisers over parts of one model: no DDP wiring yet
        raise SystemExit("dir_reid: single process only (see docs/recipes/dir_reid.md)")
    batches = run.batches(bench.train, batch_size=cfg.batch_size, sampler="random")
    model = run.prepare(build_model(cfg, bench), "enc.encoder_s", "enc.encoder_v")
    opts, scheds = make_optimisers(model, cfg, digits)
    gen = torch.Generator(device=run.device).manual_seed(run.args.seed)  # BA's choices
    run.register(model=model, opt1=opts[0], opt2=opts[1], sched1=scheds[0],
                 sched2=scheds[1], ba_generator=gen)
    augment = ((lambda x: x) if digits                             # 4.2: crop, flip, jitter
               else train_transform(image_size(bench.train)))
    losses = make_losses(cfg)
    ba = BackdoorAdjustment(k=cfg.k, strategy=cfg.ba)
    run.print(f"DIR-ReID {cfg.variant} ba={cfg.ba} k={cfg.k} domains={bench.domain_names}")

    model.train()
    for _step, batch in run.steps(batches, total=cfg.steps):
        logs = train_step(model, batch, augment=augment, losses=losses, ba=ba, gen=gen,
                          opts=opts, scheds=scheds, cfg=cfg)
        run.log(**logs)

    model.eval()
    extra = {"variant": cfg.variant, "ba": cfg.ba, "k": cfg.k, "domain_names": bench.domain_names}
    if digits and cfg.latent_dim == 2 and run.is_main:      # Figure 6 analogue
        from dgblocks.viz.latents import plot_factors_2d

        sel = torch.arange(0, len(bench.train), max(1, len(bench.train) // 1000))
        with torch.no_grad():
            out = model.enc(normalize_input(bench.train.images[sel].to(run.device) / 255.0))
        extra["latents_png"] = str(plot_factors_2d(
            {"v = f_V(x)": out.v, "s = f_S(x)": out.s}, bench.train.domains[sel],
            bench.train.pids[sel], run.out.with_suffix(".latents.png"),
            domain_names=bench.domain_names))
    return run.finish(encode=model, classify=model.classify, extra=extra,
                      title=f"DIR-ReID {cfg.variant} (BA {cfg.ba}, K={cfg.k})")


if __name__ == "__main__":
    main()
