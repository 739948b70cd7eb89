"""What one DG-overhead case is, and the shared pieces (see benchmarks/dg_overhead.py).

A :class:`Case` holds a recipe's DG step (the recipe's real ``train_step`` as a zero-argument
callable on a fixed random batch, no data loading, augmentation = identity), the plain step of
the same backbone (forward + linear ID classifier + CE + backward + Adam step), the parameters
the step must change (and those it must leave alone), and the number of backbone forward +
backward passes the paper's method itself needs per step. The builders, one per recipe, are
in benchmarks/dg_overhead_recipes.py; they take the model, losses and step from the recipe
module itself (``recipes.<name>``: ``build_model``, ``make_losses``, ``train_step``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from dgblocks.data import normalize_input

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("baseline", "dir_reid", "ddan", "cdvm", "episodic", "adin")
K_INST = 4  # images per identity (P x K batches, as every recipe draws them)


@dataclass(frozen=True)
class Setting:
    """Sizes of one run. ``cdvm_backbone``: CDVM's model wraps a ResNet stem (conv1/bn1/maxpool),
    so it is timed on a ResNet, beside the plain step of that ResNet."""

    backbone: str = "mobilenetv2"
    width: float = 1.0
    batch: int = 64
    size: tuple[int, int] = (256, 128)
    num_ids: int = 1000
    num_domains: int = 4
    cdvm_backbone: str = "resnet_tiny"


ISSUE = Setting()
GPU = (Setting(cdvm_backbone="resnet50"),  # MobileNetV2 1.0 and ResNet-50 at 256 x 128, B = 64
       Setting(backbone="resnet50", cdvm_backbone="resnet50"))
QUICK = Setting(width=0.35, batch=8, size=(32, 16), num_ids=40, num_domains=2)


@dataclass
class Case:
    """A recipe's DG step beside the plain step of its backbone."""

    recipe: str
    backbone: str
    dg_step: Callable[[], Any]
    plain_step: Callable[[], Any]
    passes: float
    passes_note: str
    trained: dict[str, list[Tensor]]
    frozen: list[Tensor] = field(default_factory=list)
    passes_detail: dict[str, float] = field(default_factory=dict)
    ablations: dict[str, Callable[[], Any]] = field(default_factory=dict)


def load_recipe(name: str) -> Any:
    """The recipe module ``recipes.<name>``."""
    if name not in RECIPES:
        raise ValueError(f"name: expected one of {', '.join(RECIPES)}, got {name!r}")
    return importlib.import_module(f"recipes.{name}")


def bench_of(s: Setting) -> Any:
    """What a recipe's Method reads of a benchmark when it is built, at the sizes of ``s``
    (camera and time labels for ADIN's CaNE prior: random)."""
    g = torch.Generator().manual_seed(2)
    train = SimpleNamespace(images=None, image_size=s.size,
                            camids=torch.randint(0, 6, (1000,), generator=g),
                            timestamps=torch.randint(0, 3, (1000,), generator=g))
    return SimpleNamespace(task="reid", num_ids=s.num_ids, num_domains=s.num_domains,
                           train=train, name="setting", source_val=[], info={},
                           domain_names=[f"d{k}" for k in range(s.num_domains)])


def make_batch(s: Setting, seed: int = 0) -> tuple[Tensor, ...]:
    """(x, pid, cam, domain, period): P x K identities, equally many per domain, drawn on the
    CPU and put on the default device (``with torch.device("cuda")``: the GPU mode)."""
    if s.batch % (K_INST * s.num_domains):
        raise ValueError(f"batch: expected a multiple of {K_INST * s.num_domains}, got {s.batch}")
    g = torch.Generator().manual_seed(seed)
    p = s.batch // K_INST
    ids = torch.randperm(s.num_ids, generator=g, device="cpu")[:p]
    pid = ids.repeat_interleave(K_INST)
    dom = (torch.arange(p, device="cpu") % s.num_domains).repeat_interleave(K_INST)
    order = torch.argsort(dom, stable=True)  # grouped by domain, like the domain sampler
    x = torch.rand(s.batch, 3, *s.size, generator=g, device="cpu")
    cam = torch.randint(0, 6, (s.batch,), generator=g, device="cpu")
    period = torch.randint(0, 3, (s.batch,), generator=g, device="cpu")
    dev = torch.get_default_device()
    return tuple(t.to(dev) for t in (x, pid[order], cam, dom[order], period))


def plain_step(backbone: nn.Module, num_ids: int, x: Tensor, y: Tensor) -> Callable[[], Tensor]:
    """Backbone forward + linear ID classifier + CE, backward, Adam step."""
    fc = nn.Linear(backbone.out_channels, num_ids)
    opt = torch.optim.Adam([*backbone.parameters(), *fc.parameters()], lr=3.5e-4)
    backbone.train()

    def step() -> Tensor:
        loss = F.cross_entropy(fc(backbone(normalize_input(x))), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


class FlopCount(TorchDispatchMode):
    """Sums the FLOPs of matmuls and convolutions (``torch.utils.flop_counter``'s formulas)
    dispatched inside the ``with`` block, backward and double backward included.

    Unlike ``FlopCounterMode`` it installs no module hooks, so ``torch.autograd.grad`` (the
    meta step) runs under it. Backward FLOPs of depthwise convolutions are over-counted by
    those formulas: compare backward FLOPs on ResNets only."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


def forward_flops(module: nn.Module, x: Tensor) -> int:
    """FLOPs of one forward pass of ``module`` on ``x``."""
    with torch.no_grad(), FlopCount() as counter:
        module(x)
    return counter.total


def identity(x: Tensor) -> Tensor:
    """Augmentation off: the DG step times model, losses and optimisers only."""
    return x


def schedule(opt: torch.optim.Optimizer, total: int = 100_000) -> Any:
    """The recipes' warm-up + cosine LR schedule, long enough to stay near its peak."""
    from dgblocks.engine import warmup_cosine

    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: warmup_cosine(i, total=total, warmup=0.0))


def step_flops(step: Callable[[], Any]) -> int:
    """FLOPs of one call of ``step`` (forward, backward and any double backward)."""
    with FlopCount() as counter:
        step()
    return counter.total
