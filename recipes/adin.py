"""ADIN: adversarial domain-invariant features against camera and time nuisances.

Yuan et al., "Calibrated Domain-Invariant Learning for Highly Generalizable Large Scale
Re-Identification" (WACV 2020), section 3. Single-source direct transfer: train on
one source dataset (with camera and time labels), test on the others.

Algorithm:
    1. warm-up I: f_E (backbone, plain or dual-branch) and f_I (FC-BN-ReLU-FC) minimise
       L_I = CE(f_I(f_E(x)), y) + lambda_c * Center(f_E(x), y);
    2. warm-up N: f_N (one FC-BN-ReLU-FC head per nuisance: camera, time period or joint)
       alone by CE on the frozen f_E; e_0 = validation error (1 - R1, held-out source ids);
    3. alternate, driven by the validation error e measured every `val_every` steps:
       3a. adversarial phase: f_E, f_I minimise L_I + beta * L_adv(f_N(f_E(x)), y_N),
           L_adv in {RG (eq 4), NE (eq 5), CaNE (eq 6)}; then f_N by CE on detached f_E(x);
       3b. identity phase: f_E, f_I minimise L_I (f_N untouched);
       3c. adversarial -> identity when e > i_trigger; identity -> adversarial when
           e < i_target (dgblocks.layers.alternation). Test: f_E(x), Euclidean, unseen datasets.

    python recipes/adin.py --smoke
    python recipes/adin.py                          # CaNE, plain CNN, ~1-2 min on 2 cores
    python recipes/adin.py --data real --data-root DIR --protocol "direct:MS->D+M" \\
        --backbone mobilenetv2 --image-size 256 128  # Table 3 (Tables 2, 4: recipe page)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import dgblocks.functional as DF
from dgblocks import losses
from dgblocks import protocols as dt
from dgblocks.backbones import BACKBONES, DigitsCNN, DualBranch, build_backbone
from dgblocks.data import TargetDomain
from dgblocks.data.transforms import train_transform
from dgblocks.engine import arg, image_size, normalize_input, setup, validation_error, warmup_cosine
from dgblocks.layers import NuisanceHeads
from dgblocks.layers.alternation import AlternatingSchedule
from dgblocks.viz import plot_alternation

PERIODS = 3  # time periods of the time nuisance: morning / afternoon / evening (ADIN 4.2)
AUTO_SKEW = 0.75  # --skew -1 on one synthetic source: camera prior 4/7, 2/7, 1/7 (3 cameras)
THRESHOLDS = {"best": (0.02, 0.05), "e0": (0.02, 0.05), "absolute": (0.3, 0.4)}  # defaults


@dataclass
class Config:
    head: str = arg("plain", "f_E's head: plain | dual_branch (global + stripes, ADIN Fig. 4)",
                    choices=("plain", "dual_branch"))
    backbone: str = arg("resnet_tiny", "f_E: resnet_tiny (learns from scratch on CPU) | cnn "
                        "(DIR-ReID Table 6 CNN) | mobilenetv2 (paper) | ...",
                        choices=("cnn", *BACKBONES))
    image_size: tuple[int, int] = arg((64, 32), "image (H, W) (CPU budget; real: 256 128)",
                                      smoke=(32, 16))
    adv: str = arg("cane", "L_adv: none (baseline) | rg (eq 4) | ne (eq 5) | cane (eq 6) | "
                   "cane_focal", choices=("none", "rg", "ne", "cane", "cane_focal"))
    nuisance: str = arg("camera+time", "f_N heads: camera | time | camera+time (ADIN 4.2) | "
                        "joint (camera x period)", choices=dt.NUISANCES)
    source: int = arg(0, "synthetic source dataset trained on (the others are targets); -1: all "
                      "sources merged, validated on held-out ids (the leaderboard's protocol)")
    skew: float = arg(-1.0, "camera imbalance (ADIN 1.1): the camera of rank r of C keeps "
                      "(1-skew)^(r/(C-1)) of its images, at least 1; 0: off; -1 (auto): "
                      f"{AUTO_SKEW} for --data synthetic with --source >= 0, else 0")
    val_ids: int = arg(100, "real data: identities held out of the source for validation")
    stripes: int = arg(4, "dual-branch horizontal stripes")
    branch_dim: int = arg(64, "dual-branch channels per branch")
    hidden: int = arg(256, "cnn output; hidden width of f_I and f_N (two FC layers, ADIN 4.2)")
    warmup_steps: int = arg(200, "step 1: f_E + f_I (CPU budget)", smoke=4)
    nuisance_steps: int = arg(30, "step 2: f_N alone on frozen f_E", smoke=3)
    steps: int = arg(200, "step 3: alternation steps", smoke=6)
    batch_size: int = arg(64, "P x K images per step", smoke=16)
    num_instances: int = arg(4, "K images per identity")
    lr: float = arg(6e-3, "Adam learning rate of f_E, f_I and the centres (as AGG: "
                     "from-scratch regime, docs/decisions.md)", smoke=1e-3)
    lr_n: float = arg(1e-3, "Adam learning rate of f_N")
    schedule: str = arg("cosine", "lr of f_E, f_I over steps 1 + 3: cosine (the regime: warm-up "
                        "over a tenth, then cosine) | constant", choices=("cosine", "constant"))
    weight_decay: float = arg(5e-4, "weight decay")
    eps: float = arg(0.0, "label smoothing of L_I (ADIN: plain softmax CE)")
    lambda_c: float = arg(5e-4, "center-loss weight in L_I (Wen et al.; BoT)")
    beta: float = arg(1.0, "weight of L_adv (eq 3)")
    val_every: int = arg(10, "steps between identity validations", smoke=3)
    thresholds: str = arg("best", "i_target/i_trigger are offsets from the best error so far "
                          "| from e_0 | absolute", choices=("best", "e0", "absolute"))
    i_target: float | None = arg(None, "identity -> adversarial below this validation error "
                                 "(default per --thresholds: best/e0 0.02, absolute 0.3)")
    i_trigger: float | None = arg(None, "adversarial -> identity above this validation error "
                                  "(default per --thresholds: best/e0 0.05, absolute 0.4)")


class ADIN(nn.Module):
    """f_E, f_I, f_N; eval mode returns the retrieval feature f_E(x)."""

    def __init__(self, f_e: nn.Module, num_ids: int, sizes: dict[str, int], hidden: int):
        super().__init__()
        self.f_E, d = f_e, f_e.out_channels
        self.f_I = nn.Sequential(nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, num_ids))
        self.f_N = NuisanceHeads(in_dim=d, sizes=sizes, hidden=hidden)

    def forward(self, x):
        return self.f_E(normalize_input(x))


def build_model(cfg: Config, bench, sizes: dict[str, int]) -> ADIN:
    """f_E (small CNN | MobileNetV2 | ResNet, optionally dual-branch), f_I, one f_N per head."""
    if cfg.backbone != "cnn":
        net = build_backbone(cfg.backbone)  # MobileNetV2 at width 0.5, last stride 1
    else:
        net = DigitsCNN(out_dim=cfg.hidden, in_channels=3, image_size=image_size(bench.train))
        if cfg.head == "dual_branch":  # DualBranch reads the last conv map's channels; fc unused
            net.out_channels = [m for m in net.features if isinstance(m, nn.Conv2d)][-1].out_channels
    if cfg.head == "dual_branch":
        net = DualBranch(backbone=net, num_stripes=cfg.stripes, dim=cfg.branch_dim)
    return ADIN(net, bench.num_ids, sizes, cfg.hidden)


def build_data(run, cfg: Config):
    """Single-source direct transfer, the held-out identity split, nuisance labels."""
    g = torch.Generator().manual_seed(run.args.seed)
    if cfg.source == -1:                          # multi-source: cameras are per domain
        bench = run.benchmark(image_size=tuple(cfg.image_size))
        train, val = ((bench.train, TargetDomain(name="sources-val", splits=[
            s for v in bench.source_val for s in v.splits])) if bench.source_val else
            dt.hold_out_identities(bench.train, cfg.val_ids, generator=g, name="val"))
        train.camids = train.domains * (int(train.camids.max()) + 1) + train.camids
    elif run.args.data == "real":
        bench = dt.real_direct(run.args.protocol or "direct:MS->M+D", run.args.data_root,
                               image_size=tuple(cfg.image_size))
        train, val = dt.hold_out_identities(bench.train, cfg.val_ids, generator=g, name="val")
    elif run.args.data == "synthetic":
        bench, val = dt.single_source(run.benchmark(image_size=cfg.image_size), cfg.source)
        train = bench.train
    else:
        raise ValueError(f"--data: expected synthetic | real (camera/time labels), got "
                         f"{run.args.data!r}")
    auto = AUTO_SKEW if run.args.data == "synthetic" and cfg.source >= 0 else 0.0
    train, bench.info["skew"] = dt.prepare_nuisances(   # time period written over timestamps
        train, kind=cfg.nuisance, skew=auto if cfg.skew == -1 else cfg.skew, generator=g,
        synthetic=run.args.data != "real", periods=PERIODS)
    bench.train, bench.num_ids = train, train.num_ids
    return bench, val, PERIODS


def adversarial_losses(cfg: Config, labels: dict[str, torch.Tensor], sizes: dict[str, int]):
    """One L_adv module per head; CaNE's prior counted from the training labels."""
    if cfg.adv in ("rg", "ne"):
        return {k: losses.ReverseCrossEntropy(coeff=1.0) if cfg.adv == "rg" else
                losses.NegEntropy() for k in sizes}
    return {k: losses.CalibratedNegEntropy.from_labels(labels[k], num_classes=sizes[k],
                                                       focal=cfg.adv == "cane_focal")
            for k in sizes}


def retrain_nuisance(model, f, y_n, ce, opt_n) -> torch.Tensor:
    """f_N alone by CE on the nuisance labels, on detached features (steps 2 and 3a)."""
    logits = model.f_N(f.detach())
    loss_n = sum(ce(logits[k], y) for k, y in y_n.items())
    opt_n.zero_grad(set_to_none=True)
    loss_n.backward()
    opt_n.step()
    return loss_n.detach()


def train_step(model, batch, *, phase, augment, ce, center, l_adv, opt, opt_n, sched, cfg,
               periods) -> dict:
    x, pid, cam, _dom, period = batch
    y_n = dt.nuisance_labels(cfg.nuisance, cam, period, periods=periods)
    if phase == "warmup_nuisance":                                            # 2. frozen f_E
        with torch.no_grad():
            f = model(augment(x))
        return {"l_n": retrain_nuisance(model, f, y_n, ce, opt_n)}
    f = model(augment(x))
    loss = l_i = ce(model.f_I(f), pid) + cfg.lambda_c * center(f, pid)       # 1. / 3b. L_I
    logs = {"l_i": l_i.detach()}                                              # 3a. below
    if phase == "adversarial":
        logits = model.f_N(f)
        adv = sum(l_adv[k](logits[k], y) if cfg.adv in ("rg", "cane_focal")
                  else l_adv[k](logits[k]) for k, y in y_n.items())
        loss = l_i + cfg.beta * adv
        logs["l_adv"] = adv.detach()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    if phase == "adversarial":                                                # 3a. f_N by CE
        logs["l_n"] = retrain_nuisance(model, f, y_n, ce, opt_n)
    return {**logs, "loss": loss.detach()}


def main(argv=None) -> dict:
    cfg, run = setup(Config, argv, name="adin", description=__doc__)
    bench, val, periods = build_data(run, cfg)
    run.bench, train = bench, bench.train               # single-source direct transfer
    kept = bench.info["skew"]                           # what --skew kept, per camera
    run.print(f"--skew {kept['skew']:g}: images per camera {kept['camera']}")
    all_labels = dt.nuisance_labels(cfg.nuisance, train.camids, train.timestamps, periods=periods)
    sizes = dt.nuisance_sizes(cfg.nuisance, int(train.camids.max()) + 1, periods)
    batches = run.batches(train, batch_size=cfg.batch_size, sampler="identity",
                          num_instances=cfg.num_instances)
    model = run.prepare(build_model(cfg, bench, sizes))
    center = losses.CenterLoss(num_classes=bench.num_ids, dim=model.f_E.out_channels).to(run.device)
    opt = torch.optim.Adam([*model.f_E.parameters(), *model.f_I.parameters(),
                            *center.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt_n = torch.optim.Adam(model.f_N.parameters(), lr=cfg.lr_n, weight_decay=cfg.weight_decay)
    total = cfg.warmup_steps + cfg.steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(
        s, total=total, warmup=0.1) if cfg.schedule == "cosine" else 1.0)
    run.register(model=model, center=center, opt=opt, opt_n=opt_n, sched=sched)
    kw = dict(augment=train_transform(image_size(train), jitter=True, erase=0.5), opt=opt,
              opt_n=opt_n, sched=sched, ce=losses.LabelSmoothingCE(eps=cfg.eps), center=center, cfg=cfg,
              periods=periods, l_adv=adversarial_losses(cfg, all_labels, sizes))
    model.train()                                       # the loop: steps 1-3
    for _step, batch in run.steps(batches, total=cfg.warmup_steps, phase="warmup_id"):  # 1.
        run.log(**train_step(model, batch, phase="identity", **kw))
    for _step, batch in run.steps(batches, total=cfg.nuisance_steps * (cfg.adv != "none"),
                                  phase="warmup_nuisance"):                           # 2.
        run.log(**train_step(model, batch, phase="warmup_nuisance", **kw))
    vkw = dict(batch_size=run.args.eval_batch_size, device=run.device)  # 1 - R1, held-out ids
    e0 = run.cached("e0", lambda: validation_error(model, val, **vkw))
    off = e0 if cfg.thresholds == "e0" else 0.0
    lo, hi = (d if v is None else v for v, d in zip((cfg.i_target, cfg.i_trigger),
                                                     THRESHOLDS[cfg.thresholds]))
    schedule = AlternatingSchedule(i_target=off + lo, i_trigger=off + hi,
                                   relative=cfg.thresholds == "best")
    schedule.update(e0, step=0)                         # e_0: the first reference (3c.)
    run.register(schedule=schedule)
    diverged = None
    for step, batch in run.steps(batches, total=cfg.steps, phase="alternate"):        # 3.
        phase = "identity" if cfg.adv == "none" else schedule.phase
        logs = train_step(model, batch, phase=phase, **kw)
        schedule.tick(int(cfg.adv != "none"))           # the baseline never alternates
        if step % run.args.log_every == 0 and not torch.isfinite(logs["loss"]):  # a host sync
            diverged = step
            run.print(f"non-finite loss at alternation step {step}: unable to converge")
            break
        if cfg.adv != "none" and ((step + 1) % cfg.val_every == 0 or step + 1 == cfg.steps):
            schedule.update(validation_error(model, val, **vkw), step=step + 1)         # 3c.
        run.log(adversarial=float(phase == "adversarial"), **logs)
    extra = {"adv": cfg.adv, "e0": e0, "alternation": schedule.state_dict(),
             "diverged_at": diverged, "nuisance_sizes": sizes, "skew": kept,
             "nuisance_prior": {k: DF.class_prior(v, sizes[k]).tolist()
                                for k, v in all_labels.items()}}
    if run.is_main:                                     # the alternation log, plotted
        extra["alternation_png"] = str(plot_alternation(
            schedule, run.out.with_suffix(".alternation.png"), end=cfg.steps,
            title=f"ADIN ({cfg.adv}, {cfg.head}): alternation"))
    model.eval()
    return run.finish(encode=model, extra=extra,
                      title=f"ADIN {cfg.adv} ({cfg.head}) on {bench.name}")


if __name__ == "__main__":
    main()
