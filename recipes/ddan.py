"""DDAN: Dual Distribution Alignment Network (Chen et al., AAAI 2021).

Stage 1 (central domain, eq 3, Table 2):
    1. train the baseline (E, M, I on L_IDE + l1*L_triplet) for ``stage1_steps``, or load it
       from the cache (keyed by data, seed and stage-1 settings);
    2. F(x) = M(E(x)) of every source image; W1 between every pair of domains (emd, sinkhorn,
       sliced: all three printed);
    3. central c* = argmin_c sum_i d_WS(c, i) by ``--ot`` (``--central NAME|all`` overrides).
Stage 2 (eq 9), per P x K batch, from a fresh initialisation:
    4. z = E(x); f = M(z) (for L1) and f_m = M(z.detach()) (for L2: reaches theta_m only);
    5. L1 = L_IDE(I(f), y) + l1 * L_triplet(f, y)                          -> theta_e, m, i
    6. L_DA-T = NegEntropy(D(f_m)), D's parameters detached                -> theta_m
    7. from ``se_start``: the k nearest ID-pool entries r_hat (central sample: own domain minus
       own id; peripheral: other domains); L_SE = symKL_tau(f_m, r_hat) / dim     -> theta_m
    8. L_DA-D = CE(D(f.detach()), 1[domain == c*])                         -> theta_d
    9. one Adam step on L1 + l2*L_DA-T + l3*L_SE + L_DA-D; ID pool update (eq 6-7) with f,
       ``end_epoch`` at every epoch boundary.
Test: the post-BN feature of the ID head I (BNNeck), Euclidean distance.

    python recipes/ddan.py [--smoke] [--ablation ide|triplet|da|full] [--central NAME|all]
    python recipes/ddan.py --data real --data-root DIR --protocol protocol1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from dgblocks.backbones import BACKBONES, build_backbone, replace_stage
from dgblocks.data.transforms import train_transform
from dgblocks.domains import METHODS, central_from_distances, paired_wasserstein, wasserstein_matrix
from dgblocks.domains.similarity import domain_cosine_similarity, domain_table, encode_domains
from dgblocks.engine import arg, derive_seed, seed_everything, setup, warmup_cosine
from dgblocks.engine.inputs import image_size, normalize_input
from dgblocks.engine.stage_cache import StageCache
from dgblocks.layers import BNNeck, CentralDomainDiscriminator, NuisanceHeads
from dgblocks.losses import LabelSmoothingCE, NegEntropy, SymmetricKL, TripletLoss
from dgblocks.memory import IDPool


@dataclass
class Config:
    ablation: str = arg("full", "Table 5 row: ide | triplet (+L_triplet) | da (+L_DA) | full "
                        "(+L_SE)", choices=("ide", "triplet", "da", "full"))
    central: str = arg("", "central domain ('' = by --ot; 'all' = pairwise, Table 3 last row)")
    ot: str = arg("emd", "OT method choosing the central domain (Table 2)", choices=METHODS)
    ot_samples: int = arg(1000, "per-domain subsample for emd / sinkhorn and Table 4")
    backbone: str = arg("resnet_tiny", "resnet_tiny (learns from scratch on CPU) | mobilenetv2 "
                        "(DDAN 4.1) | dualnorm (DDAN+DualNorm, Table 1) | ...", choices=BACKBONES)
    width: float = arg(0.5, "MobileNetV2 width (paper 1.0; 0.5 is fast on 2 CPU cores)")
    steps: int = arg(240, "stage-2 steps (paper: 100 epochs)", smoke=8)
    stage1_steps: int = arg(60, "short stage-1 baseline for the central domain", smoke=4)
    cache: str = arg("runs/ddan/cache", "folder caching the stage-1 model and features")
    batch_size: int = arg(64, "P x K images per step (DDAN 4.1: 64, 4 per identity)", smoke=16)
    num_instances: int = arg(4, "K images per identity (DDAN 4.1)")
    lr: float = arg(6e-3, "Adam learning rate (as AGG: from-scratch regime, docs/decisions.md; paper: SGD 0.1)",
                     smoke=1e-3)
    weight_decay: float = arg(5e-4, "weight decay")
    warmup: float = arg(0.1, "fraction of steps of linear warm-up, then cosine")
    eps: float = arg(0.1, "label smoothing of L_IDE (BNNeck tricks, DDAN 4.5)")
    margin: float = arg(0.3, "triplet margin (DDAN 4.1)")
    lambda1: float = arg(1.0, "weight of L_triplet (eq 9, DDAN 4.1)")
    lambda2: float = arg(0.18, "weight of L_DA-T (eq 9, DDAN 4.1)")
    lambda3: float = arg(0.05, "weight of L_SE (eq 9, DDAN 4.1)")
    tau: float = arg(2e-3, "softmax temperature of L_SE (eq 8, DDAN 4.1)")
    k: int = arg(8, "ID-pool neighbours (DDAN 4.4; 0 disables L_SE)")
    alpha: float = arg(0.05, "ID-pool epoch blending rate (eq 7, DDAN 4.1)")
    se_start: float = arg(0.04, "L_SE from this fraction of the run (paper: epoch 4 of 100)")


class DDANNet(nn.Module):
    """E = backbone minus its last stage, M = last stage + pooling, I = BNNeck, D (optional)."""

    def __init__(self, backbone: nn.Module, num_ids: int, disc: nn.Module | None = None):
        super().__init__()
        last = backbone.stage_names[-1]                   # stage surgery: split off M
        self.mapping = nn.Sequential(backbone.get_submodule(last), nn.AdaptiveAvgPool2d(1),
                                     nn.Flatten())
        replace_stage(backbone, last, lambda old: nn.Identity())
        self.encoder, self.disc = backbone, disc
        self.neck = BNNeck(dim=backbone.out_channels, num_classes=num_ids)

    def features(self, x):
        """F(x) = M(E(x)), the pre-BN feature (stage 1, ID pool, Table 2)."""
        return self.mapping(self.encoder.forward_features(normalize_input(x)))

    def _d(self, f, params=None):
        out = self.disc(f) if params is None else functional_call(self.disc, params, (f,))
        return out["domain"] if isinstance(out, dict) else out

    def forward(self, x):
        if not self.training:
            return self.neck(self.features(x))            # retrieval feature (post-BN)
        z = self.encoder.forward_features(normalize_input(x))
        f = self.mapping(z)                               # 4. F(x) for L1
        out = {"f": f, "neck": self.neck(f)}
        if self.disc is not None:
            f_m = self.mapping(z.detach())                # 4. same values; L2 reaches M only
            frozen = {n: p.detach() for n, p in self.disc.named_parameters()}
            out |= {"f_m": f_m, "d_gen": self._d(f_m, frozen), "d_disc": self._d(f.detach())}
        return out


def make_losses(cfg: Config) -> nn.ModuleDict:
    """The losses of eq 9 by name: L_IDE, L_triplet, L_DA-T (negative entropy), L_SE."""
    return nn.ModuleDict(dict(ide=LabelSmoothingCE(eps=cfg.eps), negent=NegEntropy(),
                              triplet=TripletLoss(margin=cfg.margin), skl=SymmetricKL(tau=cfg.tau)))


def train_step(model, batch, *, pool, central, step, cfg: Config, augment,
               losses: nn.ModuleDict, opt, sched, ablation: str) -> dict:
    x, pid, _cam, dom, _ts = batch
    out = model(augment(x))
    l_ide = losses.ide(out["neck"].logits, pid)                           # 5. L1
    l_tri = losses.triplet(out["f"], pid) if ablation != "ide" else l_ide * 0
    loss = l_ide + cfg.lambda1 * l_tri
    logs = {"l_ide": l_ide.detach(), "l_tri": l_tri.detach()}
    if ablation in ("da", "full"):
        l_dat = losses.negent(out["d_gen"])                                  # 6. L_DA-T
        label = dom if central < 0 else (dom == central).long()          # 'all': pairwise
        l_dad = nn.functional.cross_entropy(out["d_disc"], label)         # 8. L_DA-D
        loss = loss + cfg.lambda2 * l_dat + l_dad
        logs |= {"l_da_t": l_dat.detach(), "l_da_d": l_dad.detach()}
    if ablation == "full" and pool is not None and step >= cfg.se_start * cfg.steps:
        nb = pool.topk(out["f"], dom, labels=pid)                         # 7. top-k of the pool
        l_se = losses.skl(out["f_m"], nb.values.to(out["f_m"]), nb.valid) / out["f_m"].shape[1]
        loss = loss + cfg.lambda3 * l_se
        logs["l_se"] = l_se.detach()
    opt.zero_grad(set_to_none=True)                                       # 9. one step
    loss.backward()
    opt.step()
    sched.step()
    if pool is not None:
        pool.update(out["f"].detach(), labels=pid, domains=dom)           # 9. eq 6-7
    return {"loss": loss.detach(), **logs, "lr": sched.get_last_lr()[0]}


def build_model(cfg: Config, bench, *, ablation: str = "full", central: int = 0) -> DDANNet:
    """E, M, I; D for the DA rows: central vs peripheral, or one class per domain (-1, 'all')."""
    net = DDANNet(build_backbone(cfg.backbone, width=cfg.width), bench.num_ids)
    if ablation in ("da", "full"):
        net.disc = (CentralDomainDiscriminator(in_dim=net.neck.dim) if central >= 0 else
                    NuisanceHeads(in_dim=net.neck.dim, sizes={"domain": bench.num_domains},
                                  hidden=128))
    return net


def train(cfg: Config, run, bench, *, ablation: str, central: int = -1, pool_central: int = 0,
          phase: str = "train") -> DDANNet:
    """One training phase: model, ID pool, optimiser, schedule, resumable loop."""
    net = build_model(cfg, bench, ablation=ablation, central=central)
    pool = (IDPool(num_ids=bench.num_ids, dim=net.neck.dim, num_domains=bench.num_domains,
                   k=cfg.k, alpha=cfg.alpha, central=pool_central).to(run.device)
            if ablation == "full" and cfg.k > 0 else None)
    ddp = run.ddp(net, sync_bn=True)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr,
                           weight_decay=cfg.weight_decay)
    steps = cfg.steps if phase == "train" else cfg.stage1_steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total=steps, warmup=cfg.warmup))
    run.register(**{f"{phase}_model": net, f"{phase}_opt": opt, f"{phase}_sched": sched},
                 **({f"{phase}_pool": pool} if pool is not None else {}))
    batches = run.batches(bench.train, batch_size=cfg.batch_size, sampler="identity",
                          num_instances=cfg.num_instances)
    augment, losses = train_transform(image_size(bench.train)), make_losses(cfg)
    net.train()
    for step, batch in run.steps(batches, total=steps, phase=phase):
        if pool is not None and batches.epoch_started and step > 0:
            pool.end_epoch()                                              # 9. eq 7 boundary
        run.log(**train_step(ddp, batch, pool=pool, central=central, step=step, cfg=cfg,
                             augment=augment, losses=losses, opt=opt, sched=sched,
                             ablation=ablation))
    return net.eval()


def stage1_cache(cfg: Config, run) -> StageCache:
    """The stage-1 cache, keyed by data, seed and every setting stage 1 reads."""
    keys = ("backbone", "width", "stage1_steps", "batch_size", "num_instances", "lr",
            "weight_decay", "warmup", "eps", "margin", "lambda1")
    return StageCache(cfg.cache, "stage1", {k: getattr(run.args, k) for k in (
        "data", "data_root", "protocol", "smoke", "seed")} | {k: getattr(cfg, k) for k in keys})


def stage1(cfg: Config, run, bench) -> dict:
    """Steps 1-3: the (cached) baseline, its source features and the W1 matrices."""
    cached = (cache := stage1_cache(cfg, run)).load()
    if cached is not None:                                                # 1. load
        run.print(f"stage 1: cached baseline {cache.path}")
    else:                                                                 # 1. train
        net = train(cfg, run, bench, ablation="triplet", phase="stage1")
        cached = {"model": net.state_dict(), "features": encode_domains(   # 2. F(x) per source
            net.features, bench.train, bench.num_domains, device=run.device)}
    if cached.get("ot_samples") != cfg.ot_samples:                        # 2. d_WS, Table 2
        cached["ot"] = {m: wasserstein_matrix(cached["features"], method=m, seed=run.args.seed,
                        max_samples=cfg.ot_samples if m != "sliced" else None).tolist()
                        for m in METHODS}
        cached["ot_samples"] = cfg.ot_samples
        if run.is_main:
            cache.save(cached)
    return {m: {"distances": d, "central": central_from_distances(d)}    # 3. eq 3
            for m, d in cached["ot"].items()}


def analyse(cfg: Config, run, bench, net, names, central: int, ot) -> dict:
    """Table 4 (cosine of the domains' mean F(x)); pairwise: Table 2's "All domains" row."""
    f = encode_domains(net.features, bench.train, len(names), max_per_domain=cfg.ot_samples,
                       seed=run.args.seed, device=run.device)
    run.print(domain_table(names, cos := domain_cosine_similarity(f), title="Table 4 analogue:"
                           " cosine similarity of the domains' mean F(x)"))
    w1 = None
    if central < 0 and ot and (base := stage1_cache(cfg, run).load()) is not None:
        w1 = paired_wasserstein(base["features"], f, method=cfg.ot, seed=run.args.seed,
                                max_samples=cfg.ot_samples if cfg.ot != "sliced" else None).tolist()
        run.print(f"Table 2 'All domains' ({cfg.ot}, baseline vs aligned F(x)): {w1}")
    return {"cosine": cos.tolist(), "ot_all_domains": w1}


def main(argv=None) -> dict:
    cfg, run = setup(Config, argv, name="ddan", description=__doc__)
    bench = run.benchmark()
    names = list(bench.domain_names)
    if bench.task != "reid":
        raise ValueError(f"--data: expected synthetic or real (ReID), got {run.args.data!r}")
    if cfg.central not in ("", "all", *names):
        raise ValueError(f"--central: expected '', 'all' or one of {names}, got {cfg.central!r}")
    ot = None
    if cfg.ablation in ("da", "full"):
        ot = run.cached("ot", lambda: stage1(cfg, run, bench))            # steps 1-3
        for m in METHODS:
            run.print(domain_table(names, ot[m]["distances"], sums=True, title=f"Table 2 analogue"
                                   f" ({m}): W1, baseline F(x); central {names[ot[m]['central']]}"))
    chosen = ot[cfg.ot]["central"] if ot is not None else 0
    central = -1 if cfg.central == "all" else names.index(cfg.central) if cfg.central else chosen
    seed_everything(derive_seed(run.args.seed, 2), deterministic=run.args.deterministic,
                    threads=run.args.threads)  # stage 2 starts alike whether stage 1 was cached
    net = train(cfg, run, bench, ablation=cfg.ablation, central=central,
                pool_central=central if central >= 0 else chosen)
    extra = {"ablation": cfg.ablation, "domain_names": names,
             "central": None if ot is None else names[central] if central >= 0 else "all",
             "ot": ({m: {"central": names[v["central"]], "distances": v["distances"]}
                     for m, v in ot.items()} if ot else None)}
    extra |= analyse(cfg, run, bench, net, names, central, ot)          # Tables 4, 2
    return run.finish(encode=net, extra=extra,
                      title=f"DDAN ({cfg.ablation}, central {extra['central']})")


if __name__ == "__main__":
    main()
