"""Episodic meta-learning for DG re-ID: frozen per-domain extractors + cross-domain consistency.

Reassembles Lin et al., "Domain Generalized Person Re-Identification via Cross-Domain Episodic
Learning" (ICPR 2020, arXiv:2010.09561). Algorithm 1:

Stage 1 (pretraining; one cacheable stage per extractor):
    1. for each source domain D_d: train an extractor F_d on D_d alone with the batch-hard
       triplet loss (section III-B); freeze it. (F itself starts from a triplet-trained
       initialisation on all sources: the stand-in for the paper's ImageNet weights.)
Stage 2 (episodic training; :meth:`Episodic.update`), per step:
    2. sample three domains i, j, k (distinct when there are >= 3 sources);
    3. draw a P x K batch from D_i (anchors; positives and negatives are mined in it);
    4. v~_{i->j} = F_j(x), v~_{i->k} = F_k(x) with the frozen extractors (no gradient);
    5. v_{i->j}, v_{i->k} = E(v~_{i->j}), E(v~_{i->k}); L_consis = mean ||v_{i->j} - v_{i->k}||;
    6. L_tri = batch-hard triplet on v_{i->j} (eqs 2-4; hardest positive / negative);
    7. L_cls = label-smoothed CE of C(E(F(x'))) on a P x K batch x' from all sources (eq 5);
    8. L_total = L_cls + 0.2 L_tri + 0.01 L_consis (eq 6); optimiser step on F, E, C
       (Adam by default; ``--optimizer sgd --schedule step --warmup 0`` is the paper's).
Test: E(F(x)) with Euclidean distance on the unseen targets.
Table III: ``--backbone dualnorm`` (the paper's F; with ``--method baseline``: the DualNorm row).
Table IV: ``--method baseline`` (L_cls only), ``--method dann`` (+ a domain classifier on
E(F(x)) behind gradient reversal). Table V: ``--no-triplet``, ``--no-consistency``.

    python recipes/episodic.py --smoke                       # seconds
    python recipes/episodic.py                               # synthetic: 30 per F_d, 120 + 480 steps
    python recipes/episodic.py --data real --data-root DIR --protocol protocol1-episodic
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from dgblocks._checks import DGBlocksError
from dgblocks.backbones import BACKBONES, DigitsCNN, build_backbone
from dgblocks.data import image_size, normalize_input
from dgblocks.data.transforms import train_transform
from dgblocks.engine import arg, derive_seed, train
from dgblocks.layers import BNNeck, DannSchedule, GradientReversal
from dgblocks.losses import ConsistencyLoss, LabelSmoothingCE, TripletLoss
from dgblocks.methods import LogUniform, Method, Stage, TrainConfig, around
from dgblocks.protocols import split_by_domain as domain_subsets  # one dataset per source

SHARED = ("backbone", "feat_dim", "stage1_lr", "batch_size", "num_instances", "margin",
          "weight_decay", "image_size")  # what the extractor stages read: their cache keys
F_D, F_INIT = (*SHARED, "ext_backbone", "ext_width", "stage1_steps"), (*SHARED, "width",
                                                                        "init_steps")


@dataclass
class Config(TrainConfig):
    method: str = arg("episodic", "Table IV row", choices=("episodic", "baseline", "dann"))
    base: str = arg("paper", "paper: the paper's identity objective | agg: AGG's instead "
                    "(BNNeck, CE_eps + batch-hard triplet; the test feature post-BN) under the "
                    "method's own terms", choices=("paper", "agg"))
    triplet: bool = arg(True, "L_tri on E(F_j(x)) (Table V: --no-triplet)")
    consistency: bool = arg(True, "L_consis between E(F_j(x)), E(F_k(x)) (Table V)")
    lambda_tri: float = arg(0.2, "weight of L_tri (section IV-B)")
    lambda_consis: float = arg(0.01, "weight of L_consis (section IV-B)")
    lambda_dom: float = arg(0.1, "weight of the DANN domain CE (not in the paper)")
    feat_dim: int = arg(256, "output size of every extractor (F and the F_d): E's input")
    emb_dim: int = arg(256, "size of E's output v, the retrieval feature")
    backbone: str = arg("resnet_tiny", "F (and F_d): cnn (DigitsCNN) | dualnorm (Table III) | "
                        "mobilenetv2 | resnet_tiny | ... (+ a linear layer to feat_dim)",
                        choices=("cnn", *BACKBONES))
    ext_backbone: str = arg("", "backbone of the F_d ('': --backbone; paper: resnet50 for the "
                            "F_d, dualnorm for F)", choices=("", "cnn", *BACKBONES))
    width: float = arg(0.35, "MobileNetV2 width of the global extractor F")
    ext_width: float = arg(0.25, "MobileNetV2 width of the per-domain extractors F_d")
    stage1_steps: int = arg(30, "stage-1 triplet steps per source domain", smoke=4)
    init_steps: int = arg(120, "triplet steps on all sources that initialise F (stand-in for "
                          "the paper's ImageNet weights; 0: from scratch)", smoke=2)
    stage1_lr: float = arg(6e-3, "stage-1 Adam learning rate (the regime: warm-up then cosine)")
    steps: int = arg(480, "stage-2 episodes (-1: from --epochs)", smoke=6, minimum=-1)
    optimizer: str = arg("adam", "adam | sgd (the paper's IV-B)", choices=("adam", "sgd"))
    lr: float = arg(6e-3, "learning rate (as AGG, docs/decisions.md; IV-B: SGD 0.01)",
                    smoke=1e-3, minimum=0.0)
    eps: float = arg(0.1, "label smoothing of L_cls (section IV-B)")
    margin: float = arg(0.3, "triplet margin m (section IV-B)")


SPACE = {"lr": LogUniform(1e-3, 2e-2), "weight_decay": LogUniform(1e-5, 5e-3),  # IV-B's:
         "lambda_tri": around(0.2), "lambda_consis": around(0.01)}


def extractor(cfg: Config, width: float, size: tuple[int, int], name: str = "") -> nn.Module:
    """An extractor (F or an F_d): ``name`` (default ``cfg.backbone``) to ``cfg.feat_dim``."""
    if (name := name or cfg.backbone) == "cnn":
        return DigitsCNN(out_dim=cfg.feat_dim, in_channels=3, image_size=size)
    if name in ("mobilenetv2", "dualnorm"):   # dualnorm: IN in the first 6 blocks (Table III)
        return build_backbone(name, width=width, last_channel=cfg.feat_dim)
    net = build_backbone(name, width=width, image_size=size)
    return nn.Sequential(net, nn.Linear(net.out_channels, cfg.feat_dim))


@contextlib.contextmanager
def frozen_statistics(module: nn.Module):
    """Batch norm of ``module`` normalises with the batch's statistics but leaves its running
    statistics as they are (momentum 0) inside the block."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom


def sample_episode(num_domains: int, g: torch.Generator) -> tuple[int, int, int]:
    """Step 2: domains i, j, k; distinct when num_domains >= 3 (with 2 sources one of j, k
    is i; with 1 source all three are the same domain)."""
    p = torch.randperm(num_domains, generator=g).tolist()
    return (p[0], p[1], p[2]) if num_domains >= 3 else (p[0], p[0 if num_domains == 1 else 1], p[0])


class Episodic(Method):
    """Global extractor F, encoder E, ID classifier C (and the DANN domain head D); the
    frozen per-domain extractors ``ext``. ``encode`` is E(F(x))."""

    Config, space = Config, SPACE

    @classmethod
    def prepare_benchmark(cls, cfg: Config, bench, args):
        if bench.task != "reid":
            raise DGBlocksError(f"--data: episodic needs a re-ID benchmark, got {bench.task!r}")
        return bench

    def __init__(self, cfg: Config, bench, *, seed: int = 0) -> None:
        super().__init__(cfg, bench, seed=seed)
        size, doms = image_size(bench.train), bench.num_domains
        self.episodic = cfg.method == "episodic" and (cfg.triplet or cfg.consistency)
        exts = []
        for d in range(doms if self.episodic else 0):
            with self.seeded(1, d):                               # 1. F_d, its own seed
                exts.append(extractor(cfg, cfg.ext_width, size, cfg.ext_backbone))
        self.ext = nn.ModuleList(exts)
        with self.seeded(1, -1):                                  # F (triplet-initialised)
            self.F = extractor(cfg, cfg.width, size)
        with self.seeded(2):                                      # E: two FC layers with BN
            self.E = nn.Sequential(nn.Linear(cfg.feat_dim, cfg.emb_dim),
                                   nn.BatchNorm1d(cfg.emb_dim), nn.ReLU(),
                                   nn.Linear(cfg.emb_dim, cfg.emb_dim), nn.BatchNorm1d(cfg.emb_dim))
            self.C = nn.Linear(cfg.emb_dim, bench.num_ids, bias=False)
            self.D = (nn.Sequential(GradientReversal(schedule=DannSchedule(max_steps=cfg.steps)),
                                    nn.Linear(cfg.emb_dim, cfg.emb_dim), nn.ReLU(),
                                    nn.Linear(cfg.emb_dim, doms)) if cfg.method == "dann" else None)
        self.ce, self.consis = LabelSmoothingCE(eps=cfg.eps), ConsistencyLoss()
        self.neck = (BNNeck(dim=cfg.emb_dim, num_classes=bench.num_ids)  # AGG base: on v
                     if cfg.base == "agg" else None)
        self.triplet, self.dom_ce = TripletLoss(margin=cfg.margin), nn.CrossEntropyLoss()
        self.augment = train_transform(size)

    @functools.cached_property
    def subsets(self) -> list:
        """One training dataset per source domain."""
        return domain_subsets(self.bench.train)

    def stages(self):
        c = self.cfg
        kw = dict(batch_size=c.batch_size, num_instances=c.num_instances, clocks=False)
        f_d = tuple(f for f in F_D if f != "backbone") if c.ext_backbone else F_D  # unread
        ext = [Stage(f"F{d}", c.stage1_steps, update=partial(self.pretrain_step, f"F{d}"),
                     data=ds, cache=(f"ext.{d}",), settings=f_d, **kw)
               for d, ds in enumerate(self.subsets)]
        init = [Stage("Finit", c.init_steps, update=partial(self.pretrain_step, "Finit"),
                      cache=("F",), settings=F_INIT, **kw)] if c.init_steps else []
        main = Stage("train", c.steps, batch_size=c.batch_size, num_instances=c.num_instances)
        return init + ext[:len(self.ext)] + [main]  # F's initialisation first: alike in every row

    def configure_optimizers(self):
        c, adam = self.cfg, dict(optimizer="adam", lr=self.cfg.stage1_lr, schedule="cosine",
                                 warmup=0.1)
        opts = {f"F{d}": self.make_optimizer(e.parameters(), total=c.stage1_steps, **adam)
                for d, e in enumerate(self.ext)}
        if c.init_steps:
            opts["Finit"] = self.make_optimizer(self.F.parameters(), total=c.init_steps, **adam)
        main = [p for m in (self.F, self.E, self.C, self.D, self.neck) if m is not None
                for p in m.parameters()]
        return opts | {"main": self.make_optimizer(main)}

    def pretrain_step(self, name: str, batch):                  # 1. triplet on one extractor
        net = self.ext[int(name[1:])] if name != "Finit" else self.F
        loss = self.triplet(net(normalize_input(self.augment(batch.images))), batch.pids)
        self.minimize(loss, name)
        return {"l_tri": loss.detach()}

    def train(self, mode: bool = True):
        super().train(mode)
        if self.stage is not None and self.stage.name == "train":
            self.ext.eval()                                     # 1. frozen F_d stay in eval
        return self

    def begin_stage(self, stage):
        if stage.name != "train":
            return
        self.ext.eval().requires_grad_(False)                   # 1. frozen F_d
        c = self.cfg
        self.streams = [self.ctx.batches(ds, name=f"D{d}", batch_size=c.batch_size,
                                         num_instances=c.num_instances)
                        for d, ds in enumerate(self.subsets)] if self.episodic else []

    def forward(self, x):                                       # E(F(x))
        return self.E(self.F(normalize_input(x)))

    def update(self, batch):
        c = self.cfg
        v = self(self.augment(batch.images))                    # 7. batch from all sources
        if self.neck is None:
            l_cls = self.ce(self.C(v), batch.pids)              #    L_cls on C(E(F(x)))
        else:                                                   #    AGG base: BNNeck on v,
            l_cls = (self.ce(self.neck(v).logits, batch.pids)   #    CE_eps + triplet
                     + self.triplet(v, batch.pids))
        loss, logs = l_cls, {"l_cls": l_cls.detach()}
        if self.D is not None:                                  # DANN: domain CE behind GRL
            l_dom = self.dom_ce(self.D(v), batch.domains)
            loss = loss + c.lambda_dom * l_dom
            logs["l_dom"] = l_dom.detach()
        if self.episodic:
            g = self.generator("episode", derive_seed(self.seed, 3), device="cpu")
            i, j, k = sample_episode(self.bench.num_domains, g)  # 2. domains i, j, k
            xi, pid_i, *_ = self.ctx.to_device(next(self.streams[i]))  # 3. D_i batch
            xi = normalize_input(self.augment(xi))
            with torch.no_grad():                               # 4. frozen F_j, F_k
                f_j, f_k = self.ext[j](xi), self.ext[k](xi)
            with frozen_statistics(self.E):                     # E's running statistics:
                v_j = self.E(f_j)                               # E(F(x)) only, the stream
                v_k = self.E(f_k) if c.consistency else None    # the test feature uses
            if c.consistency:                                   # 5. E on domain-biased features
                l_consis = self.consis(v_j, v_k)                #    eq 1
                loss = loss + c.lambda_consis * l_consis
                logs["l_consis"] = l_consis.detach()
            if c.triplet:
                l_tri = self.triplet(v_j, pid_i)                # 6. eqs 2-4, batch-hard
                loss = loss + c.lambda_tri * l_tri
                logs["l_tri"] = l_tri.detach()
        self.minimize(loss)                                     # 8. L_total; step on F, E, C
        return {"loss": loss.detach(), **logs}

    def encode(self, x):
        v = self(x)
        return v if self.neck is None else self.neck(v)

    def describe(self) -> str:
        c = self.cfg
        return (c.method + ("" if c.triplet else " w/o L_tri")
                + ("" if c.consistency else " w/o L_consis") + f" on {self.bench.name}")

    def results(self) -> dict:
        return {"variant": self.describe().rsplit(" on ", 1)[0]}


def main(argv=None) -> dict:
    return train(Episodic, argv, name="episodic", description=__doc__)


if __name__ == "__main__":
    main()
