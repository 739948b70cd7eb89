"""DDAN: Dual Distribution Alignment Network (Chen et al., AAAI 2021).

Stage 1 (central domain, eq 3, Table 2; a cacheable stage):
    1. train the baseline (E, M, I on L_IDE + l1*L_triplet) for ``stage1_steps``;
    2. F(x) = M(E(x)) of every source image; W1 between every pair of domains (emd, sinkhorn,
       sliced: all three printed);
    3. central c* = argmin_c sum_i d_WS(c, i) by ``--ot`` (``--central NAME|all`` overrides).
Stage 2 (eq 9), per P x K batch, on a network initialised apart from stage 1's:
    4. z = E(x); f = M(z) (for L1) and f_m = M(z.detach()) (for L2: reaches theta_m only);
    5. L1 = L_IDE(I(f), y) + l1 * L_triplet(f, y)                          -> theta_e, m, i
    6. L_DA-T = NegEntropy(D(f_m)), D's parameters detached                -> theta_m
    7. from ``se_start``: the k nearest ID-pool entries r_hat (central sample: own domain minus
       own id; peripheral: other domains); L_SE = sum_n mean_k symKL_tau(f_m, r_hat) -> theta_m
    8. L_DA-D = CE(D(f.detach()), 1[domain == c*])                         -> theta_d
    9. one Adam step on L1 + l2*L_DA-T + l3*L_SE + L_DA-D; ID pool update (eq 6-7) with f,
       ``end_epoch`` at every epoch boundary.
Test: the post-BN feature of the ID head I (BNNeck), Euclidean distance.

    python recipes/ddan.py [--smoke] [--ablation ide|triplet|da|full] [--central NAME|all]
    python recipes/ddan.py --data real --data-root DIR --protocol protocol1-ms
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.func import functional_call

from dgblocks._checks import DGBlocksError
from dgblocks.backbones import BACKBONES, build_backbone, replace_stage
from dgblocks.data import image_size, normalize_input
from dgblocks.data.transforms import train_transform
from dgblocks.domains import METHODS, central_from_distances, paired_wasserstein, wasserstein_matrix
from dgblocks.domains.similarity import domain_cosine_similarity, domain_table, encode_domains
from dgblocks.engine import arg, train
from dgblocks.layers import BNNeck, CentralDomainDiscriminator, NuisanceHeads
from dgblocks.losses import LabelSmoothingCE, NegEntropy, SymmetricKL, TripletLoss
from dgblocks.memory import IDPool
from dgblocks.methods import Choice, LogUniform, Method, Stage, TrainConfig, around

STAGE1 = ("backbone", "width", "stage1_steps", "batch_size", "num_instances", "optimizer", "lr",
          "weight_decay", "momentum", "schedule", "warmup", "milestones", "eps", "margin",
          "lambda1", "ot_samples", "image_size")  # what stage 1 reads: its cache key


@dataclass
class Config(TrainConfig):
    ablation: str = arg("full", "Table 5 row: ide | triplet (+L_triplet) | da (+L_DA) | full "
                        "(+L_SE)", choices=("ide", "triplet", "da", "full"))
    central: str = arg("", "central domain ('' = by --ot; 'all' = pairwise, Table 3 last row)")
    ot: str = arg("emd", "OT method choosing the central domain (Table 2)", choices=METHODS)
    ot_samples: int = arg(1000, "per-domain subsample for emd / sinkhorn and Table 4")
    backbone: str = arg("resnet_tiny", "resnet_tiny (learns from scratch on CPU) | mobilenetv2 "
                        "(DDAN 4.1) | dualnorm (DDAN+DualNorm, Table 1) | ...", choices=BACKBONES)
    width: float = arg(0.5, "MobileNetV2 width (paper 1.0; 0.5 is fast on 2 CPU cores)")
    steps: int = arg(240, "stage-2 steps (paper: 100 epochs; -1: from --epochs)", smoke=8,
                     minimum=-1)
    stage1_steps: int = arg(60, "short stage-1 baseline for the central domain", smoke=4)
    batch_size: int = arg(64, "P x K images per step (DDAN 4.1: 64, 4 per identity)", smoke=16)
    lr: float = arg(6e-3, "learning rate (as AGG: from-scratch regime, docs/decisions.md; "
                    "paper: SGD 0.1)", smoke=1e-3, minimum=0.0)
    eps: float = arg(0.1, "label smoothing of L_IDE (BNNeck tricks, DDAN 4.5)")
    margin: float = arg(0.3, "triplet margin (DDAN 4.1)")
    lambda1: float = arg(1.0, "weight of L_triplet (eq 9, DDAN 4.1)")
    lambda2: float = arg(0.18, "weight of L_DA-T (eq 9, DDAN 4.1)")
    lambda3: float = arg(0.05, "weight of L_SE (eq 9, DDAN 4.1)")
    tau: float = arg(2e-3, "softmax temperature of L_SE (eq 8, DDAN 4.1)")
    k: int = arg(8, "ID-pool neighbours (DDAN 4.4; 0 disables L_SE)")
    alpha: float = arg(0.05, "ID-pool epoch blending rate (eq 7, DDAN 4.1)")
    se_start: float = arg(0.04, "L_SE from this fraction of the run (paper: epoch 4 of 100)")


SPACE = {"lr": LogUniform(1e-3, 2e-2), "weight_decay": LogUniform(1e-5, 5e-3),  # eq 9, 4.1:
         "lambda1": around(1.0, 10**0.5), "lambda2": around(0.18), "lambda3": around(0.05),
         "tau": around(2e-3), "k": Choice((2, 4, 8, 16))}   # Figure 3's tau and k


class DDANNet(nn.Module):
    """E = backbone minus its last stage, M = last stage + pooling, I = BNNeck, D (optional)."""

    def __init__(self, backbone: nn.Module, num_ids: int, disc: nn.Module | None = None):
        super().__init__()
        last = backbone.stage_names[-1]                   # stage surgery: split off M
        self.tokens = hasattr(backbone, "forward_tokens")  # a ViT: M = last block + norm + [CLS]
        self.mapping = (nn.Sequential(backbone.get_submodule(last), backbone.norm, backbone.pool)
                        if self.tokens else nn.Sequential(
                            backbone.get_submodule(last), nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        replace_stage(backbone, last, lambda old: nn.Identity())
        self.encoder, self.disc = backbone, disc
        self.neck = BNNeck(dim=backbone.out_channels, num_classes=num_ids)

    def _e(self, x):
        """E(x): the feature map before the last stage (a ViT: the tokens before it)."""
        x = normalize_input(x)
        return self.encoder.forward_tokens(x) if self.tokens else self.encoder.forward_features(x)

    def features(self, x):
        """F(x) = M(E(x)), the pre-BN feature (stage 1, ID pool, Table 2)."""
        return self.mapping(self._e(x))

    def _d(self, f, params=None):
        out = self.disc(f) if params is None else functional_call(self.disc, params, (f,))
        return out["domain"] if isinstance(out, dict) else out

    def forward(self, x):
        if not self.training:
            return self.neck(self.features(x))            # retrieval feature (post-BN)
        z = self._e(x)
        f = self.mapping(z)                               # 4. F(x) for L1
        out = {"f": f, "neck": self.neck(f)}
        if self.disc is not None:
            f_m = self.mapping(z.detach())                # 4. same values; L2 reaches M only
            frozen = {n: p.detach() for n, p in self.disc.named_parameters()}
            out |= {"f_m": f_m, "d_gen": self._d(f_m, frozen), "d_disc": self._d(f.detach())}
        return out


class DDAN(Method):
    """Stage 1 trains ``base`` (the baseline for the central domain); stage 2 trains ``net``."""

    Config, space = Config, SPACE
    distributed = ("base", "net")

    @classmethod
    def prepare_benchmark(cls, cfg: Config, bench, args):
        names = list(bench.domain_names)
        if bench.task != "reid":
            raise DGBlocksError(f"--data: expected synthetic or real (ReID), got {args.data!r}")
        if cfg.central not in ("", "all", *names):
            raise DGBlocksError(f"--central: expected '', 'all' or one of {names}, got "
                                f"{cfg.central!r}")
        return bench

    def __init__(self, cfg: Config, bench, *, seed: int = 0) -> None:
        super().__init__(cfg, bench, seed=seed)
        self.aligned = cfg.ablation in ("da", "full")
        ids, doms, size = bench.num_ids, bench.num_domains, image_size(bench.train)
        self.base = None
        if self.aligned:
            with self.seeded(1):                          # stage 1 (cacheable): its own seed
                self.base = DDANNet(build_backbone(cfg.backbone, width=cfg.width,
                                                   image_size=size), ids)
        with self.seeded(2):                              # stage 2: alike in every Table 5 row
            self.net = DDANNet(build_backbone(cfg.backbone, width=cfg.width, image_size=size), ids)
            if self.aligned:  # D: central vs peripheral, or one class per domain ('all')
                self.net.disc = (NuisanceHeads(in_dim=self.net.neck.dim, sizes={"domain": doms},
                                               hidden=128) if cfg.central == "all" else
                                 CentralDomainDiscriminator(in_dim=self.net.neck.dim))
        self.pool = (IDPool(num_ids=ids, dim=self.net.neck.dim, num_domains=doms, k=cfg.k,
                            alpha=cfg.alpha) if cfg.ablation == "full" and cfg.k > 0 else None)
        self.ide, self.negent = LabelSmoothingCE(eps=cfg.eps), NegEntropy()
        self.triplet = TripletLoss(margin=cfg.margin)
        self.skl = SymmetricKL(tau=cfg.tau, reduction="sum")  # eq 8: sum over the batch
        self.augment = train_transform(image_size(bench.train))

    def stages(self):
        c = self.cfg
        kw = dict(batch_size=c.batch_size, num_instances=c.num_instances)
        stage1 = Stage("stage1", c.stage1_steps, update=self.stage1_step,        # 1.-3.
                       cache=("base", "features", "ot"), settings=STAGE1, **kw)
        return [stage1] * self.aligned + [Stage("train", c.steps, **kw)]         # 4.-9.

    def configure_optimizers(self):
        c = self.cfg
        main = {"main": self.make_optimizer(self.net.parameters())}
        if self.base is None:
            return main
        return {"stage1": self.make_optimizer(self.base.parameters(), total=c.stage1_steps)} | main

    def _l1(self, out, pid, triplet: bool = True):                           # 5. L1
        l_ide = self.ide(out["neck"].logits, pid)
        l_tri = self.triplet(out["f"], pid) if triplet else l_ide * 0
        return l_ide + self.cfg.lambda1 * l_tri, {"l_ide": l_ide.detach(), "l_tri": l_tri.detach()}

    def stage1_step(self, batch):                                            # 1. the baseline
        loss, logs = self._l1(self.ddp("base")(self.augment(batch.images)), batch.pids)
        self.minimize(loss, "stage1")
        return {"loss": loss.detach(), **logs}

    def end_stage(self, stage):
        if stage.name == "stage1":                                          # 2. F(x), W1
            f = self.state["features"] = encode_domains(
                self.base.features, self.bench.train, self.bench.num_domains, device=self.device)
            self.state["ot"] = {m: wasserstein_matrix(
                f, method=m, seed=self.seed,
                max_samples=self.cfg.ot_samples if m != "sliced" else None).tolist()
                for m in METHODS}

    def central(self) -> int:
        """3. c* by --ot (eq 3), or the domain --central names; -1: 'all' (pairwise)."""
        c, names = self.cfg, list(self.bench.domain_names)
        if c.central:
            return -1 if c.central == "all" else names.index(c.central)
        return central_from_distances(self.state["ot"][c.ot]) if self.aligned else 0

    def begin_stage(self, stage):
        if stage.name != "train":
            return
        if self.aligned and "ot" in self.state:
            names = self.bench.domain_names
            for m, d in self.state["ot"].items():
                self.ctx.print(domain_table(names, d, sums=True, title=f"Table 2 analogue ({m}): "
                                            f"W1, baseline F(x); central "
                                            f"{names[central_from_distances(d)]}"))
        if self.pool is not None:
            c = self.central()
            self.pool.set_central(c if c >= 0 else central_from_distances(
                self.state["ot"][self.cfg.ot]))

    def update(self, batch):
        c, ablation, central = self.cfg, self.cfg.ablation, self.central()
        x, pid, dom = batch.images, batch.pids, batch.domains
        if self.pool is not None and self.ctx.new_epoch and self.ctx.step > 0:
            self.pool.end_epoch()                                             # 9. eq 7 boundary
        out = self.ddp("net")(self.augment(x))
        loss, logs = self._l1(out, pid, triplet=ablation != "ide")            # 5. L1
        if self.aligned:
            l_dat = self.negent(out["d_gen"])                                 # 6. L_DA-T
            label = dom if central < 0 else (dom == central).long()          # 'all': pairwise
            l_dad = nn.functional.cross_entropy(out["d_disc"], label)         # 8. L_DA-D
            loss = loss + c.lambda2 * l_dat + l_dad
            logs |= {"l_da_t": l_dat.detach(), "l_da_d": l_dad.detach()}
        if self.pool is not None and self.ctx.step >= c.se_start * c.steps:
            nb = self.pool.topk(out["f"], dom, labels=pid)                    # 7. top-k of the pool
            l_se = self.skl(out["f_m"], nb.values.to(out["f_m"]), nb.valid)  # eq 8
            loss = loss + c.lambda3 * l_se
            logs["l_se"] = l_se.detach()
        self.minimize(loss)                                                   # 9. one step
        if self.pool is not None:
            self.pool.update(out["f"].detach(), labels=pid, domains=dom)      # 9. eq 6-7
        return {"loss": loss.detach(), **logs}

    def encode(self, x):
        return self.net(x)

    def describe(self) -> str:
        central = self.cfg.central or ("by " + self.cfg.ot if self.aligned else "-")
        return f"DDAN ({self.cfg.ablation}, central {central})"

    def results(self) -> dict:
        """Table 4 (cosine of the domains' mean F(x)); pairwise: Table 2's "All domains" row."""
        c, names, central = self.cfg, list(self.bench.domain_names), self.central()
        ot = self.state.get("ot")
        f = encode_domains(self.net.features, self.bench.train, len(names),
                           max_per_domain=c.ot_samples, seed=self.seed, device=self.device)
        self.ctx.print(domain_table(names, cos := domain_cosine_similarity(f), title="Table 4 "
                                    "analogue: cosine similarity of the domains' mean F(x)"))
        w1 = None
        if central < 0 and ot:
            w1 = paired_wasserstein(self.state["features"], f, method=c.ot, seed=self.seed,
                                    max_samples=c.ot_samples if c.ot != "sliced" else None).tolist()
            self.ctx.print(f"Table 2 'All domains' ({c.ot}, baseline vs aligned F(x)): {w1}")
        return {"ablation": c.ablation, "domain_names": names,
                "central": None if ot is None else names[central] if central >= 0 else "all",
                "ot": ({m: {"central": names[central_from_distances(d)], "distances": d}
                        for m, d in ot.items()} if ot else None),
                "cosine": cos.tolist(), "ot_all_domains": w1}


def main(argv=None) -> dict:
    return train(DDAN, argv, name="ddan", description=__doc__)


if __name__ == "__main__":
    main()
