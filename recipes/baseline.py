"""AGG baseline: all source domains mixed; label-smoothed CE + batch-hard triplet with BNNeck.

The "AGG" row of every domain-generalisable ReID table (DIR-ReID Table 1, DDAN Table 3,
episodic Table V): one network trained on the union of the source domains, with the "bag of
tricks" of Luo et al. (2019) that DDAN (section 4.5) and DIR-ReID (section 4.2) build on.
The method is :class:`dgblocks.methods.AGG`; this recipe adds the DANN row, the digits CNN
and the leave-one-out layout.

Algorithm (one step):
    1. draw P identities x K images from the merged sources (identities relabelled globally);
    2. augment the batch (flip, pad + crop, colour jitter, random erasing);
    3. f = backbone(x); BNNeck gives the pre-BN feature f, the post-BN feature f_bn and the
       identity logits z = W f_bn;
    4. L = CE_eps(z, y) + lambda_tri * Triplet_hard(f, y) (+ dann * CE(D(GRL(f)), d): DANN);
    5. Adam step; learning rate warmed up linearly, then cosine-annealed.
Test: the post-BN feature f_bn with Euclidean distance, on the unseen target domains.

    python recipes/baseline.py --smoke                   # seconds
    python recipes/baseline.py                           # synthetic benchmark, 300 steps
    python recipes/baseline.py --data digits             # rotated digits (accuracy on 75 deg)
    python recipes/baseline.py --data real --data-root DIR --protocol protocol1 --backbone resnet50
    torchrun --nproc_per_node=2 recipes/baseline.py --smoke
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from dgblocks.backbones import DigitsCNN
from dgblocks.data import image_size
from dgblocks.data.transforms import train_transform
from dgblocks.engine import arg, train
from dgblocks.layers import DannSchedule, GradientReversal
from dgblocks.methods import AGG, AGGConfig
from dgblocks.protocols import leave_one_out

SLOW_BACKBONES = ("mobilenetv2", "dualnorm")  # from scratch: 5.8 R-1 at 300 steps, 31.7 at 1,000 (decisions.md)


@dataclass
class Config(AGGConfig):
    steps: int = arg(-1, "training steps (0: the untrained network); -1: 300, or 1,000 for "
                     "mobilenetv2 / dualnorm on ReID data (MobileNetV2 learns slowly from "
                     "scratch: docs/decisions.md)", smoke=12)
    digits_dim: int = arg(64, "feature size of the digits CNN")
    holdout: int = arg(-1, "synthetic leave-one-out (Protocol-2/3 layout, as cdvm --holdout): "
                       "train on the other sources, test on this one's held-out ids; -1: off")
    dann: float = arg(0.0, "weight of a domain classifier behind a GRL on f (the DANN baseline, "
                      "Ganin et al. 2016, of CDVM Table 2); 0: off (AGG)", minimum=0.0)


def default_steps(cfg: Config, task: str) -> int:
    """``--steps``, with -1 resolved to the budget at which the backbone learns from scratch:
    1,000 for MobileNetV2 (and DualNorm) on ReID data, 300 otherwise."""
    if cfg.steps >= 0 or cfg.epochs > 0:  # -1 with --epochs: the engine counts them
        return cfg.steps
    return 1000 if task == "reid" and cfg.backbone in SLOW_BACKBONES else 300


class Baseline(AGG):
    """AGG (and, with ``--dann``, DANN: + w * CE(D(GRL(f)), d)); digits: the Table 6 CNN."""

    Config = Config

    @classmethod
    def prepare_benchmark(cls, cfg: Config, bench, args):
        cfg.steps = default_steps(cfg, bench.task)
        return leave_one_out(bench, cfg.holdout) if cfg.holdout >= 0 else bench  # Protocol-2/3

    def __init__(self, cfg: Config, bench, *, seed: int = 0) -> None:
        super().__init__(cfg, bench, seed=seed)
        self.dann = None if not cfg.dann or bench.num_domains < 2 else nn.Sequential(
            GradientReversal(schedule=DannSchedule(max_steps=max(cfg.steps, 1))),
            nn.Linear(self.net.dim, 256), nn.ReLU(), nn.Linear(256, bench.num_domains))
        self.ce_dom = nn.CrossEntropyLoss()

    def build_backbone(self) -> nn.Module:
        if self.bench.task != "classification":
            return super().build_backbone()
        c = self.bench.train.image(0).shape[0]  # works for in-memory and file-backed data
        return DigitsCNN(out_dim=self.cfg.digits_dim, in_channels=c,
                         image_size=image_size(self.bench.train))

    def build_augment(self):
        if self.bench.task == "classification":  # digits: flip + crop only
            return train_transform(image_size(self.bench.train), jitter=False, erase=0.0)
        return super().build_augment()

    def terms(self, out, batch):                        # 4. CE_eps + l_tri * triplet
        terms = super().terms(out, batch)
        if self.dann is not None:                       #    DANN: + w * CE(D(R(f)), d)
            terms["l_dann"] = self.cfg.dann * self.ce_dom(self.dann(out.feat_pre_bn),
                                                          batch.domains)
        return terms

    def classifier(self):
        return lambda x: self.net.neck(self.net.features(x), return_all=True).logits

    def describe(self) -> str:
        kind = self.cfg.backbone if self.bench.task == "reid" else "digits CNN"
        return f"{'DANN' if self.cfg.dann else 'AGG'} baseline ({kind})"


def main(argv=None) -> dict:
    return train(Baseline, argv, name="baseline", description=__doc__)


if __name__ == "__main__":
    main()
