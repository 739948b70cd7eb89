"""``AGG``: the bag-of-tricks baseline every method extends (all sources mixed; CE_eps +
batch-hard triplet on a BNNeck; Luo et al. 2019)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dgblocks._checks import DGBlocksError
from dgblocks.backbones import BACKBONES, build_backbone, load_pretrained
from dgblocks.data.inputs import image_size
from dgblocks.data.transforms import train_transform
from dgblocks.engine.config import arg
from dgblocks.losses import LabelSmoothingCE, TripletLoss
from dgblocks.methods.config import TrainConfig
from dgblocks.methods.method import Method
from dgblocks.methods.reidnet import ReIDNet
from dgblocks.methods.search import LogUniform, around
from dgblocks.methods.stage import Batch

__all__ = ["AGGConfig", "AGG", "AGG_SPACE", "owned_parameters"]


@dataclass
class AGGConfig(TrainConfig):
    """AGG's settings: backbone, label smoothing, triplet margin and weight (plus
    :class:`dgblocks.methods.TrainConfig`).

    Example:
        >>> AGGConfig().lambda_tri
        1.0
    """

    backbone: str = arg("resnet_tiny", "resnet_tiny (1 bottleneck per stage, width 16: learns "
                        "fastest from scratch on CPU) | mobilenetv2 | dualnorm | resnet50 | "
                        "resnet50_ibn_a | resnet_small", choices=BACKBONES)
    width: float = arg(0.5, "MobileNetV2 width multiplier (0.5: fast on 2 CPU cores)")
    pretrained: str = arg("", "state-dict file of the backbone (torchvision, timm, CLIP)")
    eps: float = arg(0.1, "label smoothing of the identity CE (BoT; DIR-ReID 4.2)",
                     minimum=0.0)
    lr: float = arg(6e-3, "Adam learning rate (from-scratch regime, docs/decisions.md; BoT's "
                    "3.5e-4 is for an ImageNet-pretrained ResNet-50)", smoke=1e-3, minimum=0.0)
    margin: float = arg(0.3, "triplet margin (BoT; DDAN 4.5)", minimum=0.0)
    lambda_tri: float = arg(1.0, "triplet weight (DDAN eq 9: l1 = 1)", minimum=0.0)


# the search space of every method on the from-scratch regime: Adam's learning rate around
# 6e-3 and the weight decay log-uniform (Gulrajani & Lopez-Paz 2021), the triplet weight
# log-uniform around 1 (DDAN eq 9)
AGG_SPACE = {"lr": LogUniform(1e-3, 2e-2), "weight_decay": LogUniform(1e-5, 5e-3),
             "lambda_tri": around(1.0, 10**0.5)}


def owned_parameters(module: nn.Module) -> set[int]:
    """``id`` of every parameter inside a sub-module that trains itself (has an
    ``optimizer`` attribute, e.g. :class:`dgblocks.methods.NuisanceAdversary`).

    Example:
        >>> from dgblocks.methods import NuisanceAdversary
        >>> m = torch.nn.ModuleDict({"adv": NuisanceAdversary(in_dim=4, sizes={"cam": 2},
        ...                                                     loss="ne")})
        >>> len(owned_parameters(m)) == len(list(m.parameters()))
        True
    """
    if not isinstance(module, nn.Module):
        raise DGBlocksError(f"module: expected an nn.Module, got {type(module).__name__}")
    return {id(p) for m in module.modules() if m is not module
            and isinstance(getattr(m, "optimizer", None), torch.optim.Optimizer)
            for p in m.parameters()}


class AGG(Method):
    r"""The AGG baseline as a :class:`Method`: one step is

    $$ L = \mathrm{CE}_\epsilon(W \hat f, y) + \lambda_{tri}\, L_{tri}(f, y) $$

    on an augmented P x K batch from the merged sources (``f`` the pooled backbone feature,
    ``\hat f`` its BNNeck-normalised version), then an Adam step with warm-up + cosine.

    Extend it by overriding :meth:`terms` (add weighted loss terms to the dict),
    :meth:`after_update` (state updated from the step's features: a memory bank), or the
    network (``self.net.insert_after(stage, block)`` in ``__init__``). Every parameter of the
    method is trained by the ``"main"`` optimiser, except those of sub-modules with their own
    ``optimizer`` (a nuisance adversary's heads).

    Args:
        cfg: an :class:`AGGConfig` (or a subclass).
        bench: the benchmark (``num_ids``, ``train``).
        seed: the run's seed.

    Example:
        >>> from dgblocks.protocols import build_benchmark
        >>> bench = build_benchmark("synthetic", smoke=True)
        >>> m = AGG(AGGConfig(steps=2, batch_size=8), bench)
        >>> sorted(m.update(next(iter_batches(bench, 8))))
        ['l_id', 'l_tri', 'loss']
    """

    distributed = ("net",)
    space = AGG_SPACE

    def __init__(self, cfg: AGGConfig, bench: Any, *, seed: int = 0) -> None:
        super().__init__(cfg, bench, seed=seed)
        self.net = ReIDNet(self.build_backbone(), bench.num_ids)
        self.ce = LabelSmoothingCE(eps=cfg.eps)
        self.triplet = TripletLoss(margin=cfg.margin)
        self.augment = self.build_augment()

    def build_backbone(self) -> nn.Module:
        """``cfg.backbone`` (with ``cfg.pretrained`` weights loaded when given)."""
        c = self.cfg
        backbone = build_backbone(c.backbone, width=c.width,
                                  image_size=image_size(self.bench.train))
        if c.pretrained:
            report = load_pretrained(backbone, c.pretrained)
            self.state["pretrained"] = str(report)
        return backbone

    def build_augment(self) -> Any:
        """The training augmentation: flip, pad + crop, colour jitter, random erasing."""
        return train_transform(image_size(self.bench.train))

    def configure_optimizers(self) -> dict[str, Any]:
        owned = owned_parameters(self)
        return {"main": self.make_optimizer(p for p in self.parameters() if id(p) not in owned)}

    def forward_batch(self, batch: Batch) -> Any:
        """The network on the augmented batch (``domains`` reach the stage blocks)."""
        return self.ddp("net")(self.augment(batch.images), domains=batch.domains)

    def terms(self, out: Any, batch: Batch) -> dict[str, Tensor]:
        """The weighted loss terms of the step, by name (their sum is minimised)."""
        return {"l_id": self.ce(out.logits, batch.pids),
                "l_tri": self.cfg.lambda_tri * self.triplet(out.feat_pre_bn, batch.pids)}

    def after_update(self, out: Any, batch: Batch) -> dict[str, Any]:
        """Called after the optimiser step with the step's network output; returns logs."""
        return {}

    def update(self, batch: Batch) -> dict[str, Any]:
        out = self.forward_batch(batch)                   # f, f_bn, z on the augmented batch
        terms = self.terms(out, batch)                    # L = CE_eps + l_tri * triplet (+ ...)
        loss = sum(terms.values())
        self.minimize(loss)                               # Adam, warm-up + cosine
        extra = self.after_update(out, batch)
        return {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}, **extra}

    def encode(self, x: Tensor) -> Tensor:
        """The post-BN feature f_bn (eval mode)."""
        return self.net(x)


def iter_batches(bench: Any, batch_size: int) -> Any:
    """Batches of ``bench.train`` in order (doctests and quick checks; training uses the
    engine's samplers)."""
    ds = bench.train
    for i in range(0, len(ds) - batch_size + 1, batch_size):
        items = [ds[j] for j in range(i, i + batch_size)]
        yield Batch(*(torch.stack([torch.as_tensor(it[k]) for it in items]) for k in range(5)))
