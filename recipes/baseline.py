"""AGG baseline: all source domains mixed; label-smoothed CE + batch-hard triplet with BNNeck.

The "AGG" row of every domain-generalisable ReID table (DIR-ReID Table 1, DDAN Table 3,
episodic Table V): one network trained on the union of the source domains, with the "bag of
tricks" of Luo et al. (2019) that DDAN (section 4.5) and DIR-ReID (section 4.2) build on.

Algorithm (one step):
    1. draw P identities x K images from the merged sources (identities relabelled globally);
    2. augment the batch (flip, pad + crop, colour jitter, random erasing);
    3. f = backbone(x); BNNeck gives the pre-BN feature f, the post-BN feature f_bn and the
       identity logits z = W f_bn;
    4. L = CE_eps(z, y) + lambda_tri * Triplet_hard(f, y) (+ dann * CE(D(GRL(f)), d): DANN);
    5. Adam step; learning rate warmed up linearly, then cosine-annealed.
Test: the post-BN feature f_bn with Euclidean distance, on the unseen target domains.

    python recipes/baseline.py --smoke                   # seconds
    python recipes/baseline.py                           # synthetic benchmark, ~2 min on CPU
    python recipes/baseline.py --data digits             # rotated digits (accuracy on 75 deg)
    python recipes/baseline.py --data real --data-root DIR --protocol protocol1 --backbone resnet50
    torchrun --nproc_per_node=2 recipes/baseline.py --smoke
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dgblocks.backbones import BACKBONES, DigitsCNN, build_backbone, load_pretrained
from dgblocks.data.transforms import train_transform
from dgblocks.engine import arg, image_size, normalize_input, setup, warmup_cosine
from dgblocks.layers import BNNeck, DannSchedule, GradientReversal
from dgblocks.losses import LabelSmoothingCE, TripletLoss
from dgblocks.protocols import leave_one_out

SLOW_BACKBONES = ("mobilenetv2", "dualnorm")  # from scratch: 5.8 R-1 at 300 steps, 31.7 at 1,000


@dataclass
class Config:
    backbone: str = arg("resnet_tiny", "resnet_tiny (1 bottleneck per stage, width 16: learns "
                        "fastest from scratch on CPU) | mobilenetv2 | dualnorm | resnet50 | "
                        "resnet50_ibn_a | resnet_small (digits always use the DIR-ReID Table 6 "
                        "CNN)", choices=BACKBONES)
    width: float = arg(0.5, "MobileNetV2 width multiplier (0.5: fast on 2 CPU cores)")
    pretrained: str = arg("", "torchvision/timm state-dict file for the backbone (optional)")
    steps: int = arg(-1, "training steps (0: the untrained network); -1: 300, or 1,000 for "
                     "mobilenetv2 / dualnorm on ReID data (MobileNetV2 learns slowly from "
                     "scratch: docs/decisions.md)", smoke=12)
    batch_size: int = arg(64, "P x K images per step (BoT: P=16, K=4)", smoke=16)
    num_instances: int = arg(4, "K images per identity (BoT)")
    lr: float = arg(6e-3, "Adam learning rate (from-scratch regime, docs/decisions.md; BoT's 3.5e-4 is for an "
                       "ImageNet-pretrained ResNet-50: configs/baseline_paper.json)", smoke=1e-3)
    weight_decay: float = arg(5e-4, "weight decay (BoT)")
    warmup: float = arg(0.1, "fraction of steps of linear warm-up (BoT: 10 of 120 epochs)")
    eps: float = arg(0.1, "label smoothing (DIR-ReID 4.2; BoT)")
    margin: float = arg(0.3, "triplet margin (DDAN 4.5; BoT)")
    lambda_tri: float = arg(1.0, "triplet weight (DDAN eq 9: l1 = 1)")
    digits_dim: int = arg(64, "feature size of the digits CNN")
    holdout: int = arg(-1, "synthetic leave-one-out (Protocol-2/3 layout, as cdvm --holdout): "
                       "train on the other sources, test on this one's held-out ids; -1: off")
    dann: float = arg(0.0, "weight of a domain classifier behind a GRL on f (the DANN baseline, "
                      "Ganin et al. 2016, of CDVM Table 2); 0: off (AGG)")


class AGG(nn.Module):
    """Backbone + BNNeck; eval mode returns the retrieval feature (what is exported)."""

    def __init__(self, backbone: nn.Module, num_ids: int, num_domains: int = 0,
                 steps: int = 1) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = BNNeck(dim=backbone.out_channels, num_classes=num_ids)
        self.dann = None if num_domains < 2 else nn.Sequential(  # DANN: GRL + domain classifier
            GradientReversal(schedule=DannSchedule(max_steps=max(steps, 1))),
            nn.Linear(backbone.out_channels, 256), nn.ReLU(), nn.Linear(256, num_domains))

    def forward(self, x):
        return self.neck(self.backbone(normalize_input(x)))  # BNNeckOutput in train, f_bn in eval

    def classify(self, x):
        return self.neck(self.backbone(normalize_input(x)), return_all=True).logits


def default_steps(cfg: Config, task: str) -> int:
    """``--steps``, with -1 resolved to the budget at which the backbone learns from scratch:
    1,000 for MobileNetV2 (and DualNorm) on ReID data, 300 otherwise."""
    if cfg.steps >= 0:
        return cfg.steps
    return 1000 if task == "reid" and cfg.backbone in SLOW_BACKBONES else 300


def make_losses(cfg: Config) -> nn.ModuleDict:
    """The losses of step 4, by name (``train_step`` reads them by name, never by position)."""
    return nn.ModuleDict(dict(ce=LabelSmoothingCE(eps=cfg.eps), ce_dom=nn.CrossEntropyLoss(),
                              triplet=TripletLoss(margin=cfg.margin)))


def build_model(cfg: Config, bench) -> AGG:
    """AGG on ``bench`` (its task, identities; digits: the image shape)."""
    if bench.task == "classification":
        c = bench.train.image(0).shape[0]  # works for in-memory and file-backed data
        backbone = DigitsCNN(out_dim=cfg.digits_dim, in_channels=c,
                             image_size=image_size(bench.train))
    else:
        backbone = build_backbone(cfg.backbone, width=cfg.width)
    return AGG(backbone, bench.num_ids, bench.num_domains if cfg.dann else 0, cfg.steps)


def train_step(model, batch, *, augment, losses: nn.ModuleDict, opt, sched, cfg: Config) -> dict:
    x, pid, _cam, dom, _ts = batch                        # 1. P x K batch
    x = augment(x)                                        # 2. augmentation
    out = model(x)                                        # 3. f, f_bn, z
    l_id = losses.ce(out.logits, pid)                     # 4. CE_eps(z, y)
    l_tri = losses.triplet(out.feat_pre_bn, pid)          #    Triplet_hard(f, y)
    loss = l_id + cfg.lambda_tri * l_tri
    logs = {"l_id": l_id.detach(), "l_tri": l_tri.detach()}
    dann = getattr(model, "module", model).dann           #    DANN baseline: + w * CE(D(R(f)), d)
    if dann is not None:
        logs["l_dann"] = losses.ce_dom(dann(out.feat_pre_bn), dom)
        loss = loss + cfg.dann * logs["l_dann"]
        dann[0].step()
    opt.zero_grad(set_to_none=True)                       # 5. Adam + warm-up/cosine
    loss.backward()
    opt.step()
    sched.step()
    return {"loss": loss.detach(), **{k: v.detach() for k, v in logs.items()},
            "lr": sched.get_last_lr()[0]}


def main(argv=None) -> dict:
    cfg, run = setup(Config, argv, name="baseline", description=__doc__)
    bench = run.benchmark()
    cfg.steps = default_steps(cfg, bench.task)
    if cfg.holdout >= 0:
        bench = run.bench = leave_one_out(bench, cfg.holdout)  # Protocol-2/3 layout
    batches = run.batches(bench.train, batch_size=cfg.batch_size, sampler="identity",
                          num_instances=cfg.num_instances)
    model = build_model(cfg, bench)
    if cfg.pretrained:
        run.print(load_pretrained(model.backbone, torch.load(cfg.pretrained, weights_only=True)))
    model = model.to(run.device)
    ddp_model = run.ddp(model, sync_bn=True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, total=cfg.steps, warmup=cfg.warmup))
    run.register(model=model, opt=opt, sched=sched)
    augment = train_transform(image_size(bench.train), jitter=bench.task != "classification",
                              erase=0.0 if bench.task == "classification" else 0.5)
    losses = make_losses(cfg)

    model.train()
    for _step, batch in run.steps(batches, total=cfg.steps):
        logs = train_step(ddp_model, batch, augment=augment, losses=losses, opt=opt,
                          sched=sched, cfg=cfg)
        run.log(**logs)

    model.eval()
    return run.finish(encode=model, classify=model.classify,
                      title=f"{'DANN' if cfg.dann else 'AGG'} baseline "
                            f"({cfg.backbone if bench.task == 'reid' else 'digits CNN'})")


if __name__ == "__main__":
    main()
