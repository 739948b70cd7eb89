"""CDVM: Cross-Domain Variations Mining (Li, Sun, Cai, Gong, Pattern Recognition 2025).

Global-local encoders disentangle a domain-invariant prototype from domain-specific style in
every backbone stage; the style is expanded across domains and fused back; a hyper-network
weights channel subspaces; training is meta-learning over the source domains (Algorithm 1).

Algorithm (one step):
    1. draw a domain-balanced batch (equal identities x K images from every source); augment;
    2. split the sources: K-1 meta-train domains, 1 meta-test domain (MetaDomainSplitter);
    3. every CDVM stage s: F_inv = f_g(F), F_spe = f_l^k(F) by the sample's domain k (eq 1);
    4.   domain classifier D_s on GRL(GAP(F_inv)) (L_inv, eq 3) and on GAP(F_spe) (L_spe, eq 4);
    5.   F_sty = F_spe re-styled with the expanded cross-domain moments (eq 6-8);
         F_hat = FC(cat(F_inv, F_sty)) (eq 9);
    6.   (F_hat, W_s) = subspace hyper-network(F_hat): V group weights per sample (3.4);
    7. f = GAP(F_S); BNNeck gives f_bn and the identity logits;
    8. L = L_ce + L_tri + L_cent + a*L_dis + b*L_attr (eq 12), L_dis = L_ws + L_inv + L_spe
       (eq 2-5), L_attr = L_v + L_c (eq 10-11); L_mtr = L on the meta-train domains only;
    9. theta' = theta - eta * grad L_mtr(theta) (reversed at the GRL); L_mte = L at theta' on the
       meta-test domain as unseen: mean of the others' local branches, no re-styling or L_dis;
   10. Adam step on L_mtr(theta) + L_mte(theta') (second order, dgblocks.meta); GRL schedule.
Test (no domain labels): local path = mean of the local branches, no re-styling; f_bn.

    python recipes/cdvm.py --smoke                      # seconds
    python recipes/cdvm.py                              # synthetic sources -> unseen targets
    python recipes/cdvm.py --holdout 0                  # leave-one-source-out (Protocol-2/3 layout)
    python recipes/cdvm.py --no-dis --no-aug --no-attr  # Table 4 baseline row
    python recipes/cdvm.py --init-steps 0               # from scratch (no pretrained stand-in)
    python recipes/cdvm.py --data real --data-root DIR --protocol protocol1 --backbone resnet50_ibn_a
"""

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

import dgblocks.functional as DF
from dgblocks import layers, losses
from dgblocks._checks import DGBlocksError
from dgblocks.backbones import BACKBONES, ResNet, build_backbone, load_pretrained
from dgblocks.backbones.stages import named_stages, replace_stage
from dgblocks.data import image_size
from dgblocks.data.transforms import train_transform
from dgblocks.engine import arg, train
from dgblocks.meta import MetaDomainSplitter, MetaObjective, module_loss, module_params
from dgblocks.methods import LogUniform, Method, ReIDNet, Stage, StageBlock, TrainConfig, around
from dgblocks.protocols import leave_one_out


@dataclass
class Config(TrainConfig):
    backbone: str = arg("resnet_tiny", "resnet_tiny (learns from scratch on CPU) | resnet_small "
                        "(IBN-a, 1 block/stage) | resnet50_ibn_a (paper 4) | ...", choices=BACKBONES)
    base_width: int = arg(8, "stem width of resnet_small (second-order steps on 2 CPU cores)")
    pretrained: str = arg("", "torchvision/timm state-dict file for the backbone (optional)")
    steps: int = arg(400, "training steps (paper: 120 epochs; 8 epochs of the synthetic "
                     "sources here; -1: from --epochs)", smoke=4, minimum=-1)
    batch_size: int = arg(64, "images per step, equal per source (paper: 64/domain)", smoke=16)
    num_instances: int = arg(4, "images per identity (paper 4: 2; 4 gives triplet positives)")
    lr: float = arg(6e-3, "Adam learning rate (as AGG: from-scratch regime, docs/decisions.md; "
                    "paper cites Adam [42])", smoke=1e-3, minimum=0.0)
    alpha: float = arg(0.5, "a, weight of L_dis (eq 12; paper 4: 0.5)")
    beta: float = arg(0.5, "b, weight of L_attr (eq 12; paper 4: 0.5)")
    lambda_cent: float = arg(5e-4, "weight of L_cent (the bag of tricks' 5e-4: eq 12's 1, in "
                             "configs/cdvm_paper.json, swamps a from-scratch network; see docs)")
    m1: float = arg(0.1, "margin m1 of L_v (eq 10; paper 4: 0.1)")
    m2: float = arg(0.1, "margin m2 of L_c (eq 10; paper 4: 0.1)")
    subspaces: int = arg(4, "V, subspaces of the hyper-network (paper 4.2, Fig 4a: 4)")
    eps: float = arg(0.1, "label smoothing of L_ce")
    margin: float = arg(0.3, "triplet margin")
    dis: bool = arg(True, "Table 4: disentanglement L_dis (global-local + domain classifier)")
    ws: bool = arg(True, "Table 5: the parameter-discrepancy term L_ws inside L_dis")
    aug: bool = arg(True, "Table 4: cross-domain style expansion + fusion (f_aug)")
    attr: bool = arg(True, "Table 4: subspace hyper-network + L_attr")
    expansion: str = arg("elastic", "Table 6: elastic (eq 7) | determined (no noise)",
                         choices=("elastic", "determined"))
    fusion_init: str = arg("identity", "the 2C -> C fusion starts as F_inv (identity) | default "
                           "(PyTorch's: a random mix, unsettling from scratch; docs/decisions.md)",
                           choices=("identity", "default"))
    meta: bool = arg(True, "meta-learning over the sources (3.5); --no-meta: plain steps")
    meta_lr: float = arg(0.01, "inner step size eta (paper: initial lr 0.01)")
    first_order: bool = arg(False, "first-order meta gradient (drops the Hessian term)")
    fused_norm: bool = arg(True, "batch norm's second derivative in closed form (same values)")
    init_steps: int = arg(-1, "plain steps first (L_ce + L_tri + L_cent, no meta, global "
                          "branches only): a stand-in for the paper's ImageNet ResNet50-IBN "
                          "start (docs/decisions.md); 0: from scratch; -1: 400, or 0 with "
                          "--pretrained", smoke=2, minimum=-1)
    init_lr: float = arg(0.0, "Adam lr of the --init-steps stage (0: --lr)", minimum=0.0)
    holdout: int = arg(-1, "synthetic leave-one-out (Protocol-2/3 layout): train on the other "
                       "sources, test on this source's held-out identities; -1: off")


SPACE = {"lr": LogUniform(1e-3, 2e-2), "weight_decay": LogUniform(1e-5, 5e-3),  # eq 12, 4:
         "alpha": around(0.5), "beta": around(0.5), "lambda_cent": LogUniform(1e-4, 2.0),
         "meta_lr": around(0.01)}  # L_cent from the bag of tricks' 5e-4 to eq 12's 1


class CDVMStage(nn.Module):
    """A backbone stage whose last block becomes a global-local block, with the stage's domain
    classifier, style expansion + fusion and subspace hyper-network (steps 3-6); run inside
    the backbone as a :class:`dgblocks.methods.StageBlock` (it gets ``domains``)."""

    def __init__(self, stage: nn.Module, *, num_domains: int, dis: bool, aug: bool, attr: bool,
                 expansion: str, subspaces: int, grl_steps: int, restyle: bool,
                 fusion_init: str = "identity") -> None:
        super().__init__()
        blocks = list(stage) if isinstance(stage, nn.Sequential) else [stage]
        self.head, last = nn.Sequential(*blocks[:-1]), blocks[-1]
        c = [m for m in last.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features
        self.expansion, self.num_domains, self.restyle = expansion, num_domains, restyle
        self.gl = self.block = self.grl = self.dom_cls = self.style = self.fuse = self.hyper = None
        if dis or aug:  # global = the backbone's block; locals: re-initialised copies (eq 1)
            self.gl = layers.GlobalLocalBlock.from_block(last, num_domains=num_domains)
        else:
            self.block = last
        if dis:
            self.grl = layers.GradientReversal(schedule=layers.DannSchedule(max_steps=grl_steps))
            self.dom_cls = nn.Sequential(nn.Linear(c, 64), nn.ReLU(), nn.Linear(64, num_domains))
        if aug:
            self.style = layers.CrossDomainStyle(num_domains=num_domains)
            self.fuse = layers.StyleFusion(channels=c, init=fusion_init)
        if attr:
            self.hyper = layers.SubspaceHypernet(channels=c, groups=subspaces)

    def forward(self, x: Tensor, domains: Tensor | None = None, unseen=None, counts=None,
                plain: bool = False):
        x = self.head(x)  # unseen: branches averaged for a domain no local branch has seen
        if plain:  # --init-steps: the backbone's own block (the global branch) alone
            block = self.block if self.gl is None else self.gl.global_branch
            return block(x), (None, None, None)
        route = domains if self.training and unseen is None else None
        f, spe = ((self.block(x), None) if self.gl is None                     # 3. eq 1
                  else self.gl(x, route, branches=unseen, counts=counts if route is not None
                               else None))  # eval: mean of locals
        inv_logits = spe_logits = w = None
        if self.dom_cls is not None and route is not None:                    # 4. eq 3, 4
            inv_logits = self.dom_cls(self.grl(f.mean((2, 3))))
            spe_logits = self.dom_cls(spe.mean((2, 3)))
        if self.style is not None:                                             # 5. eq 6-9
            if route is None or not self.restyle:  # unseen / eval / 1 meta-train domain
                sty = spe  # no re-styling (the expansion needs >= 2 domains: decisions)
            elif self.expansion == "determined":
                zero = spe.new_zeros(self.num_domains, spe.shape[1])
                sty = DF.cross_domain_style(spe, domains, zero, zero, num_domains=self.num_domains)
            else:
                sty = self.style(spe, domains)
            f = self.fuse(f, sty)
        if self.hyper is not None:                                             # 6. 3.4
            f, w = self.hyper(f)
        return f, (inv_logits, spe_logits, w)


class CDVM(Method):
    """ReIDNet whose stages are CDVM stages; ``forward`` is step 8's terms (at theta or, under
    ``functional_call``, at theta'); ``encode`` the post-BN feature f_bn."""

    Config, space = Config, SPACE

    @classmethod
    def prepare_benchmark(cls, cfg: Config, bench, args):
        if cfg.holdout >= 0:
            bench = leave_one_out(bench, cfg.holdout)  # Protocol-2/3 layout
        if not cfg.backbone.startswith("resnet"):
            raise DGBlocksError(f"--backbone: CDVM's global-local blocks, style expansion and "
                                f"hyper-networks replace the last residual block of every "
                                f"ResNet stage; {cfg.backbone} has none (use "
                                f"{' | '.join(b for b in BACKBONES if b.startswith('resnet'))})")
        if bench.task != "reid" or bench.num_domains < 2:
            raise DGBlocksError(f"--data: cdvm needs a ReID benchmark with >= 2 source domains, "
                                f"got {bench.task} with {bench.num_domains}")
        return bench

    def __init__(self, cfg: Config, bench, *, seed: int = 0) -> None:
        if cfg.init_steps < 0:  # a pretrained backbone needs no stand-in
            cfg.init_steps = 0 if cfg.pretrained else 400
        super().__init__(cfg, bench, seed=seed)
        backbone = (ResNet(layers=(1, 1, 1, 1), base_width=cfg.base_width, ibn=True)
                    if cfg.backbone == "resnet_small" else build_backbone(cfg.backbone))
        if cfg.pretrained:  # before the stage surgery
            report = load_pretrained(backbone, cfg.pretrained)
            self.state["pretrained"] = str(report)
        stage = dict(num_domains=bench.num_domains, dis=cfg.dis, aug=cfg.aug, attr=cfg.attr,
                     expansion=cfg.expansion, subspaces=cfg.subspaces, fusion_init=cfg.fusion_init,
                     grl_steps=max(cfg.steps, 1), restyle=bench.num_domains > 2 or not cfg.meta)
        for name, _ in named_stages(backbone) if cfg.dis or cfg.aug or cfg.attr else ():
            replace_stage(backbone, name, lambda old: StageBlock(CDVMStage(old, **stage)))
        self.net = ReIDNet(backbone, bench.num_ids)
        self.use_ws, self.ws = cfg.ws and cfg.dis, losses.ParameterCosine()
        self.ce = losses.LabelSmoothingCE(eps=cfg.eps)
        self.tri = losses.TripletLoss(margin=cfg.margin)
        self.cent = losses.CenterLoss(num_classes=bench.num_ids, dim=self.net.dim)
        self.l_v, self.l_c = losses.SubspaceDiversity(m1=cfg.m1), losses.SubspaceConsistency(m2=cfg.m2)
        self.splitter = self.track("meta_split", MetaDomainSplitter(
            num_domains=bench.num_domains, seed=seed))
        self.meta = MetaObjective(inner_lr=cfg.meta_lr, first_order=cfg.first_order,
                                  fused_norm=cfg.fused_norm)
        self.augment = train_transform(image_size(bench.train), erase=0.5)

    def stages(self):
        c, dk = self.cfg, self.bench.num_domains * self.cfg.num_instances  # a multiple of D*K
        init = [Stage("init", c.init_steps, update=self.init_step, batch_size=c.batch_size,
                      num_instances=c.num_instances, clocks=False)] if c.init_steps else []
        return init + [Stage("train", c.steps, sampler="domain", num_instances=c.num_instances,
                             batch_size=max(dk, c.batch_size // dk * dk))]

    def configure_optimizers(self):
        c = self.cfg
        init = {"init": self.make_optimizer(self.parameters(), total=c.init_steps,
                                            lr=c.init_lr or None)} if c.init_steps else {}
        return init | {"main": self.make_optimizer(self.parameters())}

    def init_step(self, batch):
        """--init-steps: the plain network (stem, global branches, BNNeck) on L_ce + L_tri +
        L_cent, as a pretrained backbone would arrive; CDVM's own parts stay as built."""
        pid, out = batch.pids, self.net(self.augment(batch.images), plain=True)
        terms = {"l_ce": self.ce(out.logits, pid), "l_tri": self.tri(out.feat_pre_bn, pid),
                 "l_cent": self.cfg.lambda_cent * self.cent(out.feat_pre_bn, pid)}
        self.minimize(sum(terms.values()), "init")
        return {k: v.detach() for k, v in terms.items()}

    def forward(self, x: Tensor, pid: Tensor, dom: Tensor, unseen=None, counts=None) -> dict:
        """Step 8: the weighted terms of L at the current parameters (unseen: meta-test)."""
        out = self.net(x, domains=dom, unseen=unseen, counts=counts)
        aux = list(self.net.aux().values())
        l_ce, l_tri = self.ce(out.logits, pid), self.tri(out.feat_pre_bn, pid)
        l_cent, zero = self.cent(out.feat_pre_bn, pid), out.logits.new_zeros(())
        pairs = [p for m in self.net.modules() if isinstance(m, layers.GlobalLocalBlock)
                 for p in m.branch_pairs()] if self.use_ws and unseen is None else []
        l_ws = self.ws(pairs) if pairs else zero                                  # eq 2
        inv = [F.cross_entropy(z, dom) for z, _, _ in aux if z is not None]   # eq 3
        spe = [F.cross_entropy(z, dom) for _, z, _ in aux if z is not None]   # eq 4
        l_inv, l_spe = (sum(v) / len(v) if v else zero for v in (inv, spe))
        attr = [self.l_v(w) + self.l_c(w) for _, _, w in aux if w is not None]
        l_attr = sum(attr) / len(attr) if attr else zero                       # eq 11
        return {"l_ce": l_ce, "l_tri": l_tri, "l_cent": self.cfg.lambda_cent * l_cent,
                "l_dis": self.cfg.alpha * (l_ws + l_inv + l_spe),              # eq 5
                "l_attr": self.cfg.beta * l_attr}

    def update(self, batch):
        cfg, x, pid, dom = self.cfg, self.augment(batch.images), batch.pids, batch.domains  # 1.
        d, per = self.splitter.num_domains, x.shape[0] // self.splitter.num_domains
        parts: list[dict] = []  # the meta-train pass's terms (L_mtr), for the logs

        def loss(call, b):
            terms = call(*b)
            parts.append(terms)
            return sum(terms.values())

        if cfg.meta:  # 2. meta-train: its domains only; meta-test: the held-out one, as unseen
            seen, held = (s.tolist() for s in self.splitter.next())
            tr, te = (MetaDomainSplitter.select_grouped((x, pid, dom), ds, per_domain=per)
                      for ds in (seen, held))
            out = self.meta(module_loss(self, loss), module_params(self),         # 3.-9.
                            (*tr, None, [per * (k in seen) for k in range(d)]), (*te, seen),
                            inner_lr=cfg.meta_lr * self.lr("main") / cfg.lr)
            total, logs = out.loss, {"l_mtr": out.meta_train.detach(),
                                     "l_mte": out.meta_test.detach()}
        else:
            total, logs = loss(lambda *a: self(*a), (x, pid, dom, None, [per] * d)), {}  # 3.-8.
        self.minimize(total)                                                     # 10. Adam
        return {"loss": total.detach(), **logs, **{k: v.detach() for k, v in parts[0].items()}}

    def encode(self, x: Tensor) -> Tensor:
        return self.net(x)

    def describe(self) -> str:
        c = self.cfg
        parts = "+".join(n for n in ("dis", "aug", "attr") if getattr(c, n)) or "baseline"
        return f"CDVM ({parts}, {c.expansion}, {'meta' if c.meta else 'no meta'})"

    def results(self) -> dict:
        return {"holdout": self.cfg.holdout}


def main(argv=None) -> dict:
    return train(CDVM, argv, name="cdvm", description=__doc__)


if __name__ == "__main__":
    main()
