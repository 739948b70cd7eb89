"""Episodic meta-learning for DG re-ID: frozen per-domain extractors + cross-domain consistency.

Reassembles Lin et al., "Domain Generalized Person Re-Identification via Cross-Domain Episodic
Learning" (ICPR 2020, arXiv:2010.09561). Algorithm 1:

Stage 1 (pretraining; :func:`triplet_trained`, cached on disk):
    1. for each source domain D_d: train an extractor F_d on D_d alone with the batch-hard
       triplet loss (section III-B); freeze it.
Stage 2 (episodic training; :func:`train_step`), per step:
    2. sample three domains i, j, k (distinct when there are >= 3 sources);
    3. draw a P x K batch from D_i (anchors; positives and negatives are mined in it);
    4. v~_{i->j} = F_j(x), v~_{i->k} = F_k(x) with the frozen extractors (no gradient);
    5. v_{i->j}, v_{i->k} = E(v~_{i->j}), E(v~_{i->k}); L_consis = mean ||v_{i->j} - v_{i->k}||;
    6. L_tri = batch-hard triplet on v_{i->j} (eqs 2-4; hardest positive / negative);
    7. L_cls = label-smoothed CE of C(E(F(x'))) on a P x K batch x' from all sources (eq 5);
    8. L_total = L_cls + 0.2 L_tri + 0.01 L_consis (eq 6); optimiser step on F, E, C
       (Adam by default; ``--optimizer sgd`` is the paper's).
Test: E(F(x)) with Euclidean distance on the unseen targets.
Table III: ``--backbone dualnorm`` (the paper's F; with ``--method baseline``: the DualNorm row).
Table IV: ``--method baseline`` (L_cls only), ``--method dann`` (+ a domain classifier on
E(F(x)) behind gradient reversal). Table V: ``--no-triplet``, ``--no-consistency``.

    python recipes/episodic.py --smoke                       # seconds
    python recipes/episodic.py                               # synthetic benchmark, < 4 min
    python recipes/episodic.py --data real --data-root DIR --protocol protocol1-episodic
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dgblocks.backbones import BACKBONES, DigitsCNN, build_backbone
from dgblocks.data.transforms import train_transform
from dgblocks.engine import arg, derive_seed, seed_everything, setup, warmup_cosine
from dgblocks.engine.inputs import image_size, normalize_input
from dgblocks.engine.stage_cache import StageCache
from dgblocks.layers import DannSchedule, GradientReversal
from dgblocks.losses import ConsistencyLoss, LabelSmoothingCE, TripletLoss
from dgblocks.protocols import split_by_domain as domain_subsets  # one dataset per source


@dataclass
class Config:
    method: str = arg("episodic", "Table IV row", choices=("episodic", "baseline", "dann"))
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
    stage1_cache: str = arg("runs/episodic/stage1", "folder of the cached stage-1 extractors")
    steps: int = arg(480, "stage-2 episodes", smoke=6)
    batch_size: int = arg(64, "P x K images of the episode batch and the global batch", smoke=16)
    num_instances: int = arg(4, "K images per identity")
    optimizer: str = arg("adam", "adam | sgd (the paper's IV-B)", choices=("adam", "sgd"))
    lr: float = arg(6e-3, "learning rate (as AGG, docs/decisions.md; IV-B: SGD 0.01)", smoke=1e-3)
    schedule: str = arg("cosine", "cosine (the regime: warm-up over a tenth, then cosine) | step (x0.1 "
                        "after 2/3 of the steps, IV-B)", choices=("cosine", "step"))
    momentum: float = arg(0.9, "SGD momentum")
    weight_decay: float = arg(5e-4, "weight decay")
    eps: float = arg(0.1, "label smoothing of L_cls (section IV-B)")
    margin: float = arg(0.3, "triplet margin m (section IV-B)")


def extractor(cfg: Config, width: float, size: tuple[int, int], name: str = "") -> nn.Module:
    if (name := name or cfg.backbone) == "cnn":
        return DigitsCNN(out_dim=cfg.feat_dim, in_channels=3, image_size=size)
    if name in ("mobilenetv2", "dualnorm"):   # dualnorm: IN in the first 6 blocks (Table III)
        return build_backbone(name, width=width, last_channel=cfg.feat_dim)
    net = build_backbone(name, width=width)
    return nn.Sequential(net, nn.Linear(net.out_channels, cfg.feat_dim))


class Episodic(nn.Module):
    """Global extractor F, encoder E, ID classifier C (and the DANN domain head)."""

    def __init__(self, f: nn.Module, *, feat_dim: int, emb_dim: int, num_ids: int,
                 dann_domains: int = 0, dann_steps: int = 1) -> None:
        super().__init__()
        self.F, self.E = f, nn.Sequential(  # E: two FC layers with BN (IV-B)
            nn.Linear(feat_dim, emb_dim), nn.BatchNorm1d(emb_dim), nn.ReLU(),
            nn.Linear(emb_dim, emb_dim), nn.BatchNorm1d(emb_dim))
        self.C = nn.Linear(emb_dim, num_ids, bias=False)
        self.D = (nn.Sequential(GradientReversal(schedule=DannSchedule(max_steps=dann_steps)),
                                nn.Linear(emb_dim, emb_dim), nn.ReLU(),
                                nn.Linear(emb_dim, dann_domains)) if dann_domains else None)

    def forward(self, x):  # test: E(F(x))
        return self.E(self.F(normalize_input(x)))


def build_model(cfg: Config, bench) -> Episodic:
    """F (at ``cfg.width``), E, C and, for ``--method dann``, D."""
    return Episodic(extractor(cfg, cfg.width, image_size(bench.train)), feat_dim=cfg.feat_dim,
                    emb_dim=cfg.emb_dim, num_ids=bench.num_ids, dann_steps=cfg.steps,
                    dann_domains=bench.num_domains if cfg.method == "dann" else 0)


def stage1_settings(cfg: Config, run, d: int) -> dict:
    """Every setting that determines F_d (d = -1: the initial F): its cache key."""
    a = run.args
    key = {f: getattr(cfg, f) for f in ("backbone", "ext_backbone", "feat_dim", "ext_width",
           "stage1_steps", "stage1_lr", "batch_size", "num_instances", "margin",
           "weight_decay")} | {
        "seed": a.seed, "data": a.data, "data_root": a.data_root, "protocol": a.protocol,
        "smoke": a.smoke, "domain": d, "train": len(run.bench.train),
        "domain_name": run.bench.domain_names[d] if d >= 0 else "all"}
    if d < 0:  # F's initialisation: its own backbone, width and length, not stage 1's
        key |= {"ext_width": cfg.width, "stage1_steps": cfg.init_steps, "ext_backbone": ""}
    return key


def triplet_trained(cfg: Config, run, ds, d: int, augment) -> nn.Module:
    """Step 1: an extractor trained on ``ds`` with the batch-hard triplet loss, cached on disk
    (F_d for d >= 0; d = -1: the initial F on all sources)."""
    width, steps = (cfg.ext_width, cfg.stage1_steps) if d >= 0 else (cfg.width, cfg.init_steps)
    name = f"F_{d}" if d >= 0 else "initial F"
    cache = StageCache(cfg.stage1_cache, f"F{d}" if d >= 0 else "Finit",
                       stage1_settings(cfg, run, d))
    torch.manual_seed(derive_seed(run.args.seed, 1, d))
    net = extractor(cfg, width, image_size(ds), cfg.ext_backbone if d >= 0 else "").to(run.device)
    if (cached := cache.load(map_location=run.device)) is not None:
        net.load_state_dict(cached["model"])
        run.print(f"stage 1: {name} loaded from {cache.path}")
        return net
    opt = torch.optim.Adam(net.parameters(), lr=cfg.stage1_lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total=steps, warmup=0.1))
    batches = run.batches(ds, batch_size=cfg.batch_size, sampler="identity",
                          num_instances=cfg.num_instances)
    triplet = TripletLoss(margin=cfg.margin)
    net.train()
    for s in range(steps):
        x, pid, *_ = run.to_device(next(batches))
        loss = triplet(net(normalize_input(augment(x))), pid)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if s % run.args.log_every == 0 or s == steps - 1:
            run.logger.log(s, f"stage1-F{d}", l_tri=loss.detach())
    if run.is_main:
        cache.save({"model": net.state_dict()})
    run.print(f"stage 1: {name} trained ({steps} steps), cached at {cache.path}")
    return net


def sample_episode(num_domains: int, g: torch.Generator) -> tuple[int, int, int]:
    """Step 2: domains i, j, k; distinct when num_domains >= 3 (with 2 sources one of j, k
    is i; with 1 source all three are the same domain)."""
    p = torch.randperm(num_domains, generator=g).tolist()
    return (p[0], p[1], p[2]) if num_domains >= 3 else (p[0], p[0 if num_domains == 1 else 1], p[0])


def make_losses(cfg: Config) -> nn.ModuleDict:
    """The losses of eq 6 (and the DANN row's domain CE), by name."""
    return nn.ModuleDict(dict(ce=LabelSmoothingCE(eps=cfg.eps), consis=ConsistencyLoss(),
                              triplet=TripletLoss(margin=cfg.margin), dom_ce=nn.CrossEntropyLoss()))


def train_step(model, extractors, batch, episode, *, augment, losses: nn.ModuleDict, opt, sched,
               cfg) -> dict:
    x, pid, _cam, dom, _ts = batch                           # 7. batch from all sources
    v = model(augment(x))
    l_cls = losses.ce(model.C(v), pid)                           #    L_cls on C(E(F(x)))
    loss, logs = l_cls, {"l_cls": l_cls.detach()}
    if model.D is not None:                                  # DANN: domain CE behind GRL
        l_dom = losses.dom_ce(model.D(v), dom)
        loss = loss + cfg.lambda_dom * l_dom
        logs["l_dom"] = l_dom.detach()
    if episode is not None:
        (xi, pid_i), (j, k) = episode                        # 2-3. D_i batch, domains j, k
        xi = normalize_input(augment(xi))
        with torch.no_grad():                                # 4. frozen F_j, F_k
            f_j, f_k = extractors[j](xi), extractors[k](xi)
        v_j = model.E(f_j)                                   # 5. E on domain-biased features
        if cfg.consistency:
            l_consis = losses.consis(v_j, model.E(f_k))          #    eq 1
            loss = loss + cfg.lambda_consis * l_consis
            logs["l_consis"] = l_consis.detach()
        if cfg.triplet:
            l_tri = losses.triplet(v_j, pid_i)                   # 6. eqs 2-4, batch-hard
            loss = loss + cfg.lambda_tri * l_tri
            logs["l_tri"] = l_tri.detach()
    opt.zero_grad(set_to_none=True)                          # 8. L_total; step on F, E, C
    loss.backward()
    opt.step()
    sched.step()
    if model.D is not None:
        model.D[0].step()
    return {"loss": loss.detach(), **logs, "lr": sched.get_last_lr()[0]}


def main(argv=None) -> dict:
    cfg, run = setup(Config, argv, name="episodic", description=__doc__)
    bench = run.benchmark()
    if bench.task != "reid":
        raise ValueError(f"--data: episodic needs a re-ID benchmark, got task {bench.task!r}")
    augment = train_transform(image_size(bench.train))
    subsets = domain_subsets(bench.train)
    episodic = cfg.method == "episodic" and (cfg.triplet or cfg.consistency)
    extractors = [triplet_trained(cfg, run, ds, d, augment).eval().requires_grad_(False)
                  for d, ds in enumerate(subsets)] if episodic else []  # 1. frozen F_d
    f_init = triplet_trained(cfg, run, bench.train, -1, augment) if cfg.init_steps else None
    seed_everything(derive_seed(run.args.seed, 2) % 2**31)  # same with or without the cache
    model = run.prepare(build_model(cfg, bench))
    if f_init is not None:  # every method starts from the same F (Table IV is fair)
        model.F.load_state_dict(f_init.state_dict())
    opt = (torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
           if cfg.optimizer == "adam" else  # x0.1 after 2/3 of the steps (IV-B)
           torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(
        s, total=cfg.steps, warmup=0.1) if cfg.schedule == "cosine" else 0.1 ** (s >= 2 * cfg.steps // 3))
    batches = run.batches(bench.train, batch_size=cfg.batch_size, sampler="identity",
                          num_instances=cfg.num_instances)
    dom_batches = [run.batches(ds, batch_size=cfg.batch_size, sampler="identity",
                               num_instances=cfg.num_instances) for ds in subsets]
    g = torch.Generator().manual_seed(derive_seed(run.args.seed, 3))
    run.register(model=model, opt=opt, sched=sched, episode_rng=g,
                 **{f"batches_D{d}": b for d, b in enumerate(dom_batches)})
    losses = make_losses(cfg)

    model.train()
    for _step, batch in run.steps(batches, total=cfg.steps):
        episode = None
        if episodic:
            i, j, k = sample_episode(bench.num_domains, g)
            xi, pid_i, *_ = next(dom_batches[i])
            episode = (run.to_device((xi, pid_i)), (j, k))
        run.log(**train_step(model, extractors, batch, episode, augment=augment,
                             losses=losses, opt=opt, sched=sched, cfg=cfg))

    model.eval()
    name = cfg.method + ("" if cfg.triplet else " w/o L_tri") + ("" if cfg.consistency else
                                                                 " w/o L_consis")
    return run.finish(encode=model, title=f"{name} on {bench.name}", extra={"variant": name})


if __name__ == "__main__":
    main()
