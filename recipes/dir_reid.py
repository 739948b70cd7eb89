"""DIR-ReID: disentangled encoders (MDDAN) + backdoor adjustment (BA).

Zhang et al., "Learning Domain Invariant Representations for Generalizable Person
Re-Identification" (DIR-ReID), IEEE TIP 2022 / arXiv:2103.15890. Readings of the paper:
docs/recipes/dir_reid.md.

Algorithm (one step; C_S = identity head, C_V = domain head, shared by both latent spaces):
    1. draw a batch (x, y, d) from the mixed sources;
    2. s = f_S(x) (IN-augmented identity encoder), v = f_V(x) (domain encoder);
    3. BA: pair each s_i with K domain factors v~_ik chosen by --ba (eq 8-10);
    4. Phase I (f_S, f_V, C_SC, C_VC; C_S, C_V frozen), split as eq 15: f_S and C_SC minimise
       L_sid + l1 L_domindis + l3 L_idinvar (v enters C_SC detached), f_V and C_VC minimise
       L_vdom + l2 L_idindis + l4 L_dominvar (s enters C_VC detached), where
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
    python recipes/dir_reid.py --data real --data-root DIR --protocol protocol1-ms
    python recipes/dir_reid.py --source 0                  # Table 4: one source, cameras as domains
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dgblocks.backbones import BACKBONES, DigitsCNN, MobileNetV2, build_backbone
from dgblocks.data import image_size, normalize_input
from dgblocks.data.transforms import train_transform
from dgblocks.engine import arg, train
from dgblocks.engine.lr import SCHEDULES
from dgblocks.layers import BNNeck, DannSchedule, DisentangledEncoders, GradientReversal
from dgblocks.losses import LabelSmoothingCE, NegEntropy, TripletLoss
from dgblocks.methods import Choice, LogUniform, Method, Stage, TrainConfig, around
from dgblocks.protocols import DOMAIN_LABELS, source_domains
from dgblocks.sampling import BackdoorAdjustment, backdoor_linear

VARIANTS = ("baseline", "dual_dann", "mddan", "full")


@dataclass
class Config(TrainConfig):
    variant: str = arg("full", "baseline | dual_dann | mddan | full (Table 5/8 rows)",
                       choices=VARIANTS)
    base: str = arg("paper", "paper: the paper's identity objective | agg: AGG's instead "
                    "(BNNeck, CE_eps + batch-hard triplet; the test feature post-BN) under the "
                    "method's own terms", choices=("paper", "agg"))
    ba: str = arg("auto", "BA strategy (3.3); auto: mixup for ReID, mixhard for digits",
                  choices=("auto", "random", "hardest", "mixup", "mixhard"))
    k: int = arg(10, "K domain factors per sample (4.4: K=10; Figure 5 sweeps it); 1 <= K < "
                 "batch size; mixhard needs K >= 2", smoke=4)
    source: int = arg(-1, "-1: every source; N: synthetic source N alone, the others are "
                      "targets (Table 4; real data: --protocol direct:M->D)")
    domains: str = arg("auto", "domain labels d: dataset | camera ((source, camera) pairs, "
                       "Table 4) | auto: camera with one source", choices=DOMAIN_LABELS)
    routing: str = arg("paper", "eq 15: L_idinvar trains f_S and C_SC only (v detached), "
                       "L_dominvar f_V and C_VC only (s detached) | joint: both encoders get both "
                       "(the first port)", choices=("paper", "joint"))
    alpha: float = arg(-1.0, "BA mix weight; -1: the paper's, 0.5 for mixup (eq 9), uniform "
                       "in [0, 1] per mix for mixhard (3.3: 'randomly interpolating')",
                       minimum=-1.0)
    lambda1: float = arg(1.0, "weight of L_domindis (4.2)")
    lambda2: float = arg(0.1, "weight of L_idindis (4.2)")
    lambda3: float = arg(1.0, "weight of L_idinvar (4.2)")
    lambda4: float = arg(1.0, "weight of L_dominvar (4.2)")
    eps: float = arg(0.1, "label smoothing of the identity losses (4.2)")
    backbone: str = arg("resnet_tiny", "f_S and f_V on ReID data: resnet_tiny (f_S with IBN-a; "
                        "learns from scratch on CPU) | mobilenetv2 (4.2; f_S with IN) | ... "
                        "(digits: the Table 6 CNN)", choices=BACKBONES)
    latent_dim: int = arg(0, "size of s and v; 0: 2 (digits, Table 6) or the backbone's output "
                          "(MobileNetV2 1280; ResNets have no other size)")
    width: float = arg(0.5, "MobileNetV2 width multiplier (0.5: fast on 2 CPU cores)")
    steps: int = arg(-1, "training steps (0: the untrained network); -1: 600 (ReID, 12 epochs of "
                     "the synthetic sources) or 200 (digits); the paper's 150 / 500 epochs do not "
                     "fit a CPU run", smoke=6)
    batch_size: int = arg(0, "batch size; 0: 64 (ReID; paper 128) or 100 (digits, E.2)",
                          smoke=16)
    optimizer: str = arg("adam", "ReID: adam (the from-scratch regime of every recipe: warm-up "
                         "then cosine, docs/decisions.md) | sgd (4.2: momentum 0.9, /10 after 2/3)",
                         choices=("adam", "sgd"))
    lr: float = arg(0.0, "0: Adam 6e-3 (ReID regime), SGD 0.02 (4.2) or Adam 1e-3 (digits, E.2)",
                    minimum=0.0)
    schedule: str = arg("auto", "auto: cosine (adam), step at 2/3 (sgd, 4.2), constant after a "
                        "fifth of warm-up (digits, E.2) | " + " | ".join(SCHEDULES),
                        choices=("auto", *SCHEDULES))
    warmup: float = arg(-1.0, "warm-up fraction; -1: 0.1 (adam), 0 (sgd), 0.2 (digits)",
                        minimum=-1.0)


SPACE = {"lr": LogUniform(1e-3, 2e-2), "weight_decay": LogUniform(1e-5, 5e-3),  # 4.2's lambdas:
         "lambda1": around(1.0), "lambda2": around(0.1), "lambda3": around(1.0),
         "lambda4": around(1.0), "ba": Choice(("random", "hardest", "mixup", "mixhard")),
         "k": Choice((1, 5, 10, 15))}                      # 3.3's strategies, Figure 5's K


def resolve(cfg: Config, digits: bool) -> Config:
    """Fill the 0/auto defaults that depend on the data (ReID 4.2 vs digits E.2)."""
    cfg.ba = cfg.ba if cfg.ba != "auto" else ("mixhard" if digits else "mixup")
    if not digits and cfg.backbone not in ("mobilenetv2", "dualnorm"):
        out = build_backbone(cfg.backbone).out_channels
        if cfg.latent_dim not in (0, out):
            raise ValueError(f"latent_dim: {cfg.backbone} outputs {out}, got {cfg.latent_dim}")
        cfg.latent_dim = out
    cfg.latent_dim = cfg.latent_dim or (2 if digits else 1280)
    if cfg.steps < 0 and cfg.epochs <= 0:  # with --epochs the engine counts the steps
        cfg.steps = 200 if digits else 600
    cfg.batch_size = cfg.batch_size or (100 if digits else 64)
    sgd = cfg.optimizer == "sgd" and not digits
    cfg.lr = cfg.lr or (1e-3 if digits else 0.02 if sgd else 6e-3)
    if cfg.schedule == "auto":  # E.2: warm-up over 100 of 500 epochs; 4.2: /10 after 100 of 150
        cfg.schedule = "constant" if digits else "step" if sgd else "cosine"
    if cfg.warmup < 0:
        cfg.warmup = 0.2 if digits else 0.0 if sgd else 0.1
    return cfg


class DIRReID(Method):
    """f_S, f_V with shared heads C_S, C_V (DisentangledEncoders) and the BA heads C_SC, C_VC.

    ``encode`` is the retrieval feature s = f_S(x)."""

    Config, space = Config, SPACE
    compiled = ("enc.encoder_s", "enc.encoder_v")

    @classmethod
    def prepare_benchmark(cls, cfg: Config, bench, args):
        bench = source_domains(bench, source=cfg.source, domains=cfg.domains)
        resolve(cfg, bench.task == "classification")
        return bench

    def __init__(self, cfg: Config, bench, *, seed: int = 0) -> None:
        super().__init__(cfg, bench, seed=seed)
        self.digits = digits = bench.task == "classification"
        if digits:                                       # Table 6 CNN for both encoders
            c = bench.train.images.shape[1]
            enc_s, enc_v = (DigitsCNN(out_dim=cfg.latent_dim, in_channels=c,
                                      image_size=image_size(bench.train)) for _ in range(2))
        elif cfg.backbone in ("mobilenetv2", "dualnorm"):  # 4.2: MobileNetV2 (+IN for f_S)
            enc_s = MobileNetV2.dualnorm(width_mult=cfg.width, last_stride=1,
                                         last_channel=cfg.latent_dim)
            enc_v = MobileNetV2(width_mult=cfg.width, last_stride=1, last_channel=cfg.latent_dim)
        elif cfg.backbone.startswith("vit"):             # a ViT has no IN: two plain encoders
            enc_s, enc_v = (build_backbone(cfg.backbone, image_size=image_size(bench.train))
                            for _ in range(2))
        else:                                            # IBN-a in f_S: the ResNet analogue of IN
            enc_s = build_backbone(cfg.backbone, ibn=True)
            enc_v = build_backbone(cfg.backbone)
        dim, ids, doms = cfg.latent_dim, bench.num_ids, bench.num_domains
        self.enc = DisentangledEncoders(encoder_s=enc_s, encoder_v=enc_v, dim=dim,
                                        num_ids=ids, num_domains=doms)
        self.c_sc = nn.Linear(2 * dim, ids)              # C_SC: identity of s (+) v
        self.c_vc = nn.Linear(2 * dim, doms)             # C_VC: domain of v in s (+) v (appendix)
        self.grl = GradientReversal(schedule=DannSchedule(max_steps=max(cfg.steps, 1)))
        self.ce_id, self.ce_dom = LabelSmoothingCE(eps=cfg.eps), LabelSmoothingCE(eps=0.0)
        self.neck = BNNeck(dim=dim, num_classes=ids) if cfg.base == "agg" else None  # AGG base
        self.triplet = TripletLoss(margin=0.3)
        self.ce_dom_each = LabelSmoothingCE(eps=0.0, reduction="none")
        self.negent = NegEntropy()
        alpha = cfg.alpha if cfg.alpha >= 0 else 0.5 if cfg.ba == "mixup" else None
        self.ba = BackdoorAdjustment(k=cfg.k, strategy=cfg.ba, alpha=alpha)
        self.augment = ((lambda x: x) if digits               # 4.2: crop, flip, jitter
                        else train_transform(image_size(bench.train)))

    def stages(self):
        c = self.cfg  # the AGG base's triplet needs P x K batches
        return [Stage("train", c.steps, sampler="identity" if c.base == "agg" else "random",
                      batch_size=c.batch_size, num_instances=c.num_instances)]

    def configure_optimizers(self):
        phase1 = [*self.enc.encoder_parameters(), *self.c_sc.parameters(),
                  *(self.neck.parameters() if self.neck is not None else ()),
                  *self.c_vc.parameters()]
        wd = {"weight_decay": 0.0} if self.digits else {}  # E.2: plain Adam
        return {"phase1": self.make_optimizer(phase1, **wd),
                "phase2": self.make_optimizer(self.enc.head_parameters(), **wd)}

    def update(self, batch):
        cfg, enc, v_ = self.cfg, self.enc, self.cfg.variant
        x, y, d = normalize_input(self.augment(batch.images)), batch.pids, batch.domains  # 1.
        s = enc.encoder_s(x)                                   # 2. s = f_S(x)
        v = enc.encoder_v(x) if v_ != "baseline" else None     #    v = f_V(x)
        terms = ({"l_sid": self.ce_id(enc.id_head(s), y)}     # 4. Phase I (C_S, C_V frozen)
                 if self.neck is None else                     #    (AGG base: BNNeck on s,
                 {"l_sid": self.ce_id(self.neck(s).logits, y),  #    CE_eps + triplet)
                  "l_tri": self.triplet(s, y)})
        if v_ in ("mddan", "full"):
            terms["l_domindis"] = cfg.lambda1 * self.negent(enc.domain_head(s))
            terms["l_idindis"] = cfg.lambda2 * self.negent(enc.id_head(v))
        elif v_ == "dual_dann":                                #    GRL + misclassification
            terms["l_domindis"] = cfg.lambda1 * self.ce_dom(enc.domain_head(self.grl(s)), d)
            terms["l_idindis"] = cfg.lambda2 * self.ce_id(enc.id_head(self.grl(v)), y)
        if v is not None:
            terms["l_vdom"] = self.ce_dom(enc.domain_head(v), d)
        if v_ == "full":
            terms |= self.backdoor_terms(s, v, y, d)           # 3. BA; eq 11 and its dual
        loss1 = sum(terms.values())
        self.minimize(loss1, "phase1")
        s, v = s.detach(), (v.detach() if v is not None else None)  # 5. Phase II, detached
        loss2 = self.ce_id(enc.id_head(s), y)                  #    L_sid
        if v is not None:                                      #    + L_sdom + L_vdom + L_vid
            loss2 = (loss2 + self.ce_dom(enc.domain_head(s), d) + self.ce_dom(enc.domain_head(v), d)
                     + self.ce_id(enc.id_head(v), y))
        self.minimize(loss2, "phase2")
        return {k: t.detach() for k, t in terms.items()} | {"loss1": loss1.detach(),
                                                             "loss2": loss2.detach()}

    def backdoor_terms(self, s, v, y, d) -> dict:
        """L_idinvar and L_dominvar on K factors v~_ik per s_i; eq 15's routing: v enters C_SC
        detached (L_idinvar trains f_S, C_SC), s enters C_VC detached (L_dominvar: f_V, C_VC)."""
        cfg, paper = self.cfg, self.cfg.routing == "paper"
        idx, w = self.ba.indices(v, generator=self.generator("ba"))    # 3. BA (eq 8-10)
        z_sc = backdoor_linear(s, v.detach() if paper else v, idx, w, self.c_sc.weight,
                               self.c_sc.bias).flatten(0, 1)  # linear heads: no pairs built
        z_vc = backdoor_linear(s.detach() if paper else s, v, idx, w, self.c_vc.weight,
                               self.c_vc.bias).flatten(0, 1)
        k = idx.shape[1]                                      # eq 11: sum over k, mean over i
        w = w.flatten()                                       # mixed v~: mixed domain target
        dominvar = (w * self.ce_dom_each(z_vc, d[idx[..., 0].flatten()])
                    + (1 - w) * self.ce_dom_each(z_vc, d[idx[..., 1].flatten()]))
        return {"l_idinvar": cfg.lambda3 * k * self.ce_id(z_sc, y.repeat_interleave(k)),
                "l_dominvar": cfg.lambda4 * dominvar.view(-1, k).sum(1).mean()}

    def encode(self, x):
        s = self.enc.encoder_s(normalize_input(x))
        return s if self.neck is None else self.neck(s)

    def classifier(self):
        return (lambda x: self.enc.id_head(self.encode(x))) if self.digits else None

    def describe(self) -> str:
        c = self.cfg
        return f"DIR-ReID {c.variant} (BA {c.ba}, K={c.k}, domains {self.bench.domain_names})"

    def results(self) -> dict:
        c, bench = self.cfg, self.bench
        out = {"variant": c.variant, "ba": c.ba, "k": c.k, "domain_names": bench.domain_names}
        if self.digits and c.latent_dim == 2 and self.ctx.is_main:  # Figure 6 analogue
            from dgblocks.viz.latents import plot_factors_2d

            sel = torch.arange(0, len(bench.train), max(1, len(bench.train) // 1000))
            with torch.no_grad():
                f = self.enc(normalize_input(bench.train.images[sel].to(self.device) / 255.0))
            out["latents_png"] = str(plot_factors_2d(
                {"v = f_V(x)": f.v, "s = f_S(x)": f.s}, bench.train.domains[sel],
                bench.train.pids[sel], self.ctx.out.with_suffix(".latents.png"),
                domain_names=bench.domain_names))
        return out


def main(argv=None) -> dict:
    return train(DIRReID, argv, name="dir_reid", description=__doc__)


if __name__ == "__main__":
    main()
