"""``ReIDNet``: backbone + BNNeck + input normalisation, with domain-aware blocks in its stages."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
from torch import Tensor, nn

from dgblocks._checks import DGBlocksError
from dgblocks.backbones.stages import named_stages, replace_stage
from dgblocks.data.inputs import normalize_input
from dgblocks.layers import BNNeck

__all__ = ["ReIDNet", "StageBlock"]


class StageBlock(nn.Module):
    """A block run inside a backbone stage that receives the per-call context of
    :meth:`ReIDNet.forward` (``domains=...`` and any other keyword) it asks for by name.

    The wrapped ``block`` is called as ``block(x, **context)`` restricted to the keywords its
    ``forward`` accepts; it returns the feature map, or ``(feature map, aux)`` where ``aux``
    (domain logits, weights, ...) is kept in :attr:`aux` until the next call.

    Args:
        block: the module (e.g. :class:`dgblocks.layers.CrossDomainStyle`).

    Shape:
        x: (B, C, H, W); output: what ``block`` returns for it.

    Example:
        >>> from dgblocks.layers import CrossDomainStyle
        >>> sb = StageBlock(CrossDomainStyle(num_domains=2))
        >>> sb.context = {"domains": torch.tensor([0, 0, 1, 1])}
        >>> sb(torch.randn(4, 8, 4, 2)).shape
        torch.Size([4, 8, 4, 2])
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        if not isinstance(block, nn.Module):
            raise DGBlocksError(f"block: expected an nn.Module, got {type(block).__name__}")
        self.block = block
        params = inspect.signature(block.forward).parameters
        self._varkw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        self._accepts = frozenset(list(params)[1:])
        self.context: dict[str, Any] = {}
        self.aux: Any = None

    def forward(self, x: Tensor) -> Tensor:
        """``block(x, **context)`` (the keywords it accepts); ``aux`` kept in :attr:`aux`."""
        kw = {k: v for k, v in self.context.items() if self._varkw or k in self._accepts}
        out = self.block(x, **kw)
        if isinstance(out, tuple):
            out, self.aux = out
        return out


class ReIDNet(nn.Module):
    r"""The re-identification network every method builds on: input normalisation
    ($\tilde x = 2x - 1$), a backbone, and a BNNeck (the identity classifier on the
    batch-normalised feature).

    In training mode ``forward`` returns the :class:`dgblocks.layers.BNNeckOutput`
    ``(feat_pre_bn, feat_post_bn, logits)``; in eval mode the retrieval feature
    ``feat_post_bn``. Blocks that need per-sample context (the source domain) can run inside
    the backbone's stages: :meth:`insert_after` / :meth:`replace_stage` wrap them in a
    :class:`StageBlock`, and the keywords given to ``forward`` (``domains=...``) reach them for
    the duration of the call. :meth:`stage_channels` gives each stage's output channels.

    Args:
        backbone: a dgblocks backbone (``out_channels``; ``stage_names`` for stage blocks).
        num_ids: training identities (the classifier's outputs).

    Shape:
        x: (B, 3, H, W) in [0, 1]; output: ``BNNeckOutput`` of (B, D), (B, D), (B, num_ids)
        in training, (B, D) in eval, D = ``backbone.out_channels``.

    Example:
        >>> from dgblocks.backbones import build_backbone
        >>> net = ReIDNet(build_backbone("resnet_tiny"), num_ids=5)
        >>> net.stage_channels()["layer2"]
        128
        >>> net(torch.rand(4, 3, 64, 32)).logits.shape
        torch.Size([4, 5])
        >>> net.eval()(torch.rand(2, 3, 64, 32)).shape
        torch.Size([2, 512])
    """

    def __init__(self, backbone: nn.Module, num_ids: int) -> None:
        super().__init__()
        dim = getattr(backbone, "out_channels", None)
        if not isinstance(backbone, nn.Module) or not isinstance(dim, int):
            raise DGBlocksError(f"backbone: expected a backbone module with out_channels, got "
                                f"{type(backbone).__name__}")
        self.backbone = backbone
        self.neck = BNNeck(dim=dim, num_classes=num_ids)

    @property
    def dim(self) -> int:
        """The feature size D."""
        return self.neck.dim

    def _stage_blocks(self) -> list[StageBlock]:
        return [m for m in self.backbone.modules() if isinstance(m, StageBlock)]

    def features(self, x: Tensor, **context: Any) -> Tensor:
        """The backbone's pooled feature f (B, D) of images in [0, 1], stage blocks fed with
        ``context``."""
        blocks = self._stage_blocks()
        for b in blocks:
            b.context = context
        try:
            return self.backbone(normalize_input(x))
        finally:
            for b in blocks:
                b.context = {}

    def forward(self, x: Tensor, **context: Any) -> Any:
        """BNNeck output of :meth:`features` (train: the triple; eval: the retrieval feature).

        Args:
            x: images (B, 3, H, W) in [0, 1].
            **context: keywords for the stage blocks (``domains``: (B,) source domains).
        """
        return self.neck(self.features(x, **context))

    def aux(self) -> dict[str, Any]:
        """What each stage block returned beside its feature map in the last call, by the
        block's module name."""
        return {n: m.aux for n, m in self.backbone.named_modules() if isinstance(m, StageBlock)}

    def insert_after(self, stage: str, block: nn.Module) -> StageBlock:
        """Run ``block`` on the output of backbone stage ``stage`` (``"layer2"``)."""
        sb = StageBlock(block)
        replace_stage(self.backbone, stage, lambda old: nn.Sequential(old, sb))
        return sb

    def replace_stage(self, stage: str, make: Any) -> StageBlock:
        """Replace stage ``stage`` by ``make(old_stage)``, a module that receives the
        context (e.g. a global-local version of the stage)."""
        sb = StageBlock(make(self.backbone.get_submodule(stage)))
        replace_stage(self.backbone, stage, lambda old: sb)
        return sb

    def stage_names(self) -> list[str]:
        """The backbone's stages, in order (where blocks can go)."""
        return [n for n, _ in named_stages(self.backbone)]

    def stage_channels(self, image_size: tuple[int, int] = (256, 128)) -> dict[str, int]:
        """Output channels of every backbone stage (a shape-only pass on the meta device)."""
        names = self.stage_names()
        meta = copy.deepcopy(self.backbone).to("meta")
        out: dict[str, int] = {}
        hooks = [meta.get_submodule(n).register_forward_hook(
            lambda m, i, o, n=n: out.__setitem__(n, int(o.shape[1]))) for n in names]
        try:
            with torch.no_grad():
                meta.eval()(torch.zeros(1, 3, *image_size, device="meta"))
        finally:
            for h in hooks:
                h.remove()
        return {n: out[n] for n in names}
