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
    python recipes/adin.py                          # CaNE, resnet_tiny, 200 + 30 + 200 steps
    python recipes/adin.py --data real --data-root DIR --protocol "direct:MS->D+M" \\
        --backbone mobilenetv2                      # Table 3 (Tables 2, 4: recipe page)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import dgblocks.functional as DF
from dgblocks import losses
from dgblocks import protocols as dt
from dgblocks._checks import DGBlocksError
from dgblocks.backbones import BACKBONES, DigitsCNN, DualBranch, build_backbone
from dgblocks.data import TargetDomain, image_size, normalize_input
from dgblocks.data.transforms import train_transform
from dgblocks.engine import arg, train
from dgblocks.layers import BNNeck
from dgblocks.layers.alternation import AlternatingSchedule
from dgblocks.methods import (
    ADVERSARIAL_LOSSES,
    LogUniform,
    Method,
    NuisanceAdversary,
    Stage,
    TrainConfig,
    around,
)
from dgblocks.viz import plot_alternation

PERIODS = 3  # time periods of the time nuisance: morning / afternoon / evening (ADIN 4.2)
AUTO_SKEW = 0.75  # --skew -1 on one synthetic source: camera prior 4/7, 2/7, 1/7 (3 cameras)
THRESHOLDS = {"best": (0.02, 0.05), "e0": (0.02, 0.05), "absolute": (0.3, 0.4)}  # defaults


@dataclass
class Config(TrainConfig):
    head: str = arg("plain", "f_E's head: plain | dual_branch (global + stripes, ADIN Fig. 4)",
                    choices=("plain", "dual_branch"))
    base: str = arg("paper", "paper: the paper's identity objective | agg: AGG's instead "
                    "(BNNeck, CE_eps + batch-hard triplet; the test feature post-BN) under the "
                    "method's own terms", choices=("paper", "agg"))
    backbone: str = arg("resnet_tiny", "f_E: resnet_tiny (learns from scratch on CPU) | cnn "
                        "(DIR-ReID Table 6 CNN) | mobilenetv2 (paper) | ...",
                        choices=("cnn", *BACKBONES))
    image_size: tuple[int, int] = arg((0, 0), "images are resized to H W; 0 0: 64 x 32 "
                                      "(embedded), 256 x 128 (real data)", smoke=(32, 16))
    adv: str = arg("cane", "L_adv: none (baseline) | rg (eq 4) | ne (eq 5) | cane (eq 6) | "
                   "cane_focal", choices=("none", *ADVERSARIAL_LOSSES))
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
    steps: int = arg(200, "step 3: alternation steps (-1: from --epochs)", smoke=6, minimum=-1)
    lr: float = arg(6e-3, "Adam learning rate of f_E, f_I and the centres (as AGG: "
                    "from-scratch regime, docs/decisions.md)", smoke=1e-3, minimum=0.0)
    lr_n: float = arg(1e-3, "Adam learning rate of f_N")
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


SPACE = {"lr": LogUniform(1e-3, 2e-2), "weight_decay": LogUniform(1e-5, 5e-3),  # eq 3:
         "beta": around(1.0), "lambda_c": LogUniform(1e-4, 1e-2), "lr_n": LogUniform(1e-4, 1e-2)}


class _Encoder(nn.Module):
    """f_E on normalised images (what validation and evaluation call)."""

    def __init__(self, f_e: nn.Module) -> None:
        super().__init__()
        self.f_E, self.out_channels = f_e, f_e.out_channels

    def forward(self, x):
        return self.f_E(normalize_input(x))


class ADIN(Method):
    """f_E, f_I, the nuisance adversary f_N; ``encode`` is f_E(x)."""

    Config, space = Config, SPACE
    default_protocol = "direct:MS->M+D"

    @classmethod
    def prepare_benchmark(cls, cfg: Config, bench, args):
        """Single-source direct transfer, the held-out identity split (``source_val``), the
        nuisance labels (time period written over the timestamps) and the camera skew."""
        g = torch.Generator().manual_seed(args.seed)
        if cfg.source == -1:                        # multi-source: cameras are per domain
            train, val = ((bench.train, TargetDomain(name="sources-val", splits=[
                s for v in bench.source_val for s in v.splits])) if bench.source_val else
                dt.hold_out_identities(bench.train, cfg.val_ids, generator=g, name="val",
                                     arg="--val-ids"))
            train.camids = train.domains * (int(train.camids.max()) + 1) + train.camids
        elif args.data == "real":
            train, val = dt.hold_out_identities(bench.train, cfg.val_ids, generator=g, name="val",
                                     arg="--val-ids")
        elif args.data == "synthetic":
            bench, val = dt.single_source(bench, cfg.source)
            train = bench.train
        else:
            raise ValueError(f"--data: expected synthetic | real (camera/time labels), got "
                             f"{args.data!r}")
        auto = AUTO_SKEW if args.data == "synthetic" and cfg.source >= 0 else 0.0
        train, bench.info["skew"] = dt.prepare_nuisances(
            train, kind=cfg.nuisance, skew=auto if cfg.skew == -1 else cfg.skew, generator=g,
            synthetic=args.data != "real", periods=PERIODS)
        bench.train, bench.num_ids, bench.source_val = train, train.num_ids, [val]
        return bench

    def __init__(self, cfg: Config, bench, *, seed: int = 0) -> None:
        super().__init__(cfg, bench, seed=seed)
        train = bench.train
        if cfg.head == "dual_branch" and cfg.backbone.startswith("vit"):
            raise DGBlocksError(f"--head: the dual-branch head cuts horizontal stripes of a CNN "
                                f"feature map; {cfg.backbone} gives tokens (use --head plain)")
        if cfg.backbone != "cnn":
            net = build_backbone(cfg.backbone, image_size=image_size(train))
        else:
            net = DigitsCNN(out_dim=cfg.hidden, in_channels=3, image_size=image_size(train))
            if cfg.head == "dual_branch":  # DualBranch reads the last conv map's channels
                net.out_channels = [m for m in net.features
                                    if isinstance(m, nn.Conv2d)][-1].out_channels
        if cfg.head == "dual_branch":
            net = DualBranch(backbone=net, num_stripes=cfg.stripes, dim=cfg.branch_dim)
        self.net, d = _Encoder(net), net.out_channels
        self.f_I = nn.Sequential(nn.Linear(d, cfg.hidden), nn.BatchNorm1d(cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, bench.num_ids))
        self.labels = dt.nuisance_labels(cfg.nuisance, train.camids, train.timestamps,
                                         periods=PERIODS)
        self.sizes = dt.nuisance_sizes(cfg.nuisance, int(train.camids.max()) + 1, PERIODS)
        self.f_N = NuisanceAdversary(in_dim=d, sizes=self.sizes, hidden=cfg.hidden, lr=cfg.lr_n,
                                     loss="ne" if cfg.adv == "none" else cfg.adv,
                                     labels=self.labels, weight_decay=cfg.weight_decay, eps=cfg.eps)
        self.center = losses.CenterLoss(num_classes=bench.num_ids, dim=d)
        self.ce = losses.LabelSmoothingCE(eps=cfg.eps)
        self.neck = (BNNeck(dim=d, num_classes=bench.num_ids) if cfg.base == "agg" else None)
        self.ce_agg, self.triplet = losses.LabelSmoothingCE(eps=0.1), losses.TripletLoss(margin=0.3)
        self.augment = train_transform(image_size(train), jitter=True, erase=0.5)
        lo, hi = (dflt if v is None else v for v, dflt in zip((cfg.i_target, cfg.i_trigger),
                                                             THRESHOLDS[cfg.thresholds]))
        self.schedule = self.track("schedule", AlternatingSchedule(
            i_target=lo, i_trigger=hi, relative=cfg.thresholds == "best"))

    def stages(self):
        c = self.cfg
        kw = dict(batch_size=c.batch_size, num_instances=c.num_instances)
        return [Stage("warmup_id", c.warmup_steps, update=self.identity_step, **kw),        # 1.
                Stage("warmup_nuisance", c.nuisance_steps * (c.adv != "none"),
                      update=self.nuisance_step, **kw),                                     # 2.
                Stage("alternate", c.steps, **kw)]                                          # 3.

    def configure_optimizers(self):
        c = self.cfg
        params = [*self.net.parameters(), *self.f_I.parameters(), *self.center.parameters(),
                  *(self.neck.parameters() if self.neck is not None else ())]
        return {"main": self.make_optimizer(params, total=c.warmup_steps + c.steps)}

    def _nuisances(self, batch):
        return dt.nuisance_labels(self.cfg.nuisance, batch.camids, batch.times, periods=PERIODS)

    def _identity_loss(self, f, pid):                                         # L_I
        if self.neck is not None:                       # AGG base: BNNeck, CE_eps + triplet
            return self.ce_agg(self.neck(f).logits, pid) + self.triplet(f, pid)
        return self.ce(self.f_I(f), pid) + self.cfg.lambda_c * self.center(f, pid)

    def identity_step(self, batch):                                           # 1. / 3b.
        l_i = self._identity_loss(self.net(self.augment(batch.images)), batch.pids)
        self.minimize(l_i)
        return {"l_i": l_i.detach(), "loss": l_i.detach()}

    def nuisance_step(self, batch):                                           # 2. frozen f_E
        with torch.no_grad():                 # eval mode: its batch norm statistics stay too
            f = self.net.eval()(self.augment(batch.images))
        self.net.train()
        return {"l_n": self.f_N.update(f, self._nuisances(batch))}

    def update(self, batch):                                                  # 3.
        c, adversarial = self.cfg, self.cfg.adv != "none" and self.schedule.phase == "adversarial"
        if not adversarial:
            logs = self.identity_step(batch)                                  # 3b.
        else:                                                                 # 3a.
            f, y_n = self.net(self.augment(batch.images)), self._nuisances(batch)
            l_i = self._identity_loss(f, batch.pids)
            l_adv = self.f_N(f, y_n)                                          #    frozen f_N
            loss = l_i + c.beta * l_adv
            self.minimize(loss)
            logs = {"l_i": l_i.detach(), "l_adv": l_adv.detach(), "loss": loss.detach(),
                    "l_n": self.f_N.update(f, y_n)}                           #    f_N by CE
        self.schedule.tick(int(c.adv != "none"))  # the baseline never alternates
        done = self.ctx.step + 1
        if c.adv != "none" and (done % c.val_every == 0 or done == c.steps):  # 3c.
            self.schedule.update(self.ctx.validation_error(self.net, self.bench.source_val[0]),
                                 step=done)
        return logs | {"adversarial": float(adversarial)}

    def end_stage(self, stage):
        if stage.name == "warmup_nuisance":  # e_0: the first reference of the alternation (3c.)
            e0 = self.state["e0"] = self.ctx.validation_error(self.net, self.bench.source_val[0])
            if self.cfg.thresholds == "e0":
                self.schedule.i_target += e0
                self.schedule.i_trigger += e0
            self.schedule.update(e0, step=0)

    def encode(self, x):
        f = self.net(x)
        return f if self.neck is None else self.neck(f)

    def describe(self) -> str:
        return f"ADIN {self.cfg.adv} ({self.cfg.head}) on {self.bench.name}"

    def results(self) -> dict:
        extra = {"adv": self.cfg.adv, "e0": self.state.get("e0"), "nuisance_sizes": self.sizes,
                 "alternation": self.schedule.state_dict(), "skew": self.bench.info["skew"],
                 "nuisance_prior": {k: DF.class_prior(v, self.sizes[k]).tolist()
                                    for k, v in self.labels.items()}}
        if self.ctx.is_main:                                   # the alternation log, plotted
            extra["alternation_png"] = str(plot_alternation(
                self.schedule, self.ctx.out.with_suffix(".alternation.png"), end=self.cfg.steps,
                title=f"ADIN ({self.cfg.adv}, {self.cfg.head}): alternation"))
        return extra


def main(argv=None) -> dict:
    return train(ADIN, argv, name="adin", description=__doc__)


if __name__ == "__main__":
    main()
