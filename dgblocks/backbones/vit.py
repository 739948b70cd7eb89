"""Vision Transformer (Dosovitskiy et al. 2021) with the ReID conventions of TransReID
(He et al. 2021: 256x128 input, overlapping patches) and CLIP-ReID (Li et al. 2023).

Parameter names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``,
``pos_embed``, ``norm_pre``, ``blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``,
``norm``), so timm checkpoints load as they are and OpenAI CLIP's visual tower loads through
:func:`dgblocks.backbones.load_pretrained` (renamed by
:func:`~dgblocks.backbones.vit_weights.clip_to_timm`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgblocks._checks import ShapeError, check_choice, check_int, check_shape
from dgblocks.backbones._args import check_pair, check_real
from dgblocks.backbones.vit_weights import resize_pos_embed

__all__ = ["VisionTransformer", "vit_b16", "vit_tiny"]

STYLES = ("timm", "clip")


class QuickGELU(nn.Module):
    """CLIP's activation, x * sigmoid(1.702 x) (Radford et al. 2021)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class _Attention(nn.Module):
    """Multi-head self-attention; ``qkv`` stacks [q; k; v] rows as CLIP's ``in_proj_weight``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)              # (B, heads, N, d / heads)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, act: nn.Module) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), act, nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    """Pre-norm block: x + A(LN(x)), then x + MLP(LN(x)); ``drop_path`` drops a sample's
    residual branches (stochastic depth, Huang et al. 2016) while training."""

    def __init__(self, dim: int, heads: int, hidden: int, style: str, drop_path: float) -> None:
        super().__init__()
        eps = 1e-5 if style == "clip" else 1e-6
        self.norm1, self.attn = nn.LayerNorm(dim, eps=eps), _Attention(dim, heads)
        act = QuickGELU() if style == "clip" else nn.GELU()
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=eps), _Mlp(dim, hidden, act)
        self.drop_path = drop_path

    def _drop(self, y: Tensor) -> Tensor:
        if not self.training or self.drop_path == 0.0:
            return y
        keep = 1.0 - self.drop_path
        mask = torch.empty(y.shape[0], 1, 1, device=y.device, dtype=y.dtype).bernoulli_(keep)
        return y * mask / keep

    def forward(self, x: Tensor) -> Tensor:
        x = x + self._drop(self.attn(self.norm1(x)))
        return x + self._drop(self.mlp(self.norm2(x)))


class _ClsToken(nn.Module):
    """Select the [CLS] token: (B, 1 + N, D) -> (B, D)."""

    def forward(self, tokens: Tensor) -> Tensor:
        return tokens[:, 0]


class VisionTransformer(nn.Module):
    r"""ViT feature extractor: the [CLS] token after the final LayerNorm (optionally projected).

    $$ z_0 = [x_{cls};\ E p_1;\ \dots;\ E p_N] + P, \quad
       z_l' = z_{l-1} + \mathrm{MSA}(\mathrm{LN}(z_{l-1})), \quad
       z_l = z_l' + \mathrm{MLP}(\mathrm{LN}(z_l')), \quad f = \mathrm{LN}(z_L)_0 $$

    Patches $p_i$ are ``patch_size`` squares taken every ``patch_stride`` pixels (stride <
    patch size: TransReID's overlapping patches), so an (H, W) image gives a grid of
    $g_h \times g_w$, $g = \lfloor (H - p) / s \rfloor + 1$, tokens.

    Args:
        image_size: (H, W) the position embedding is laid out for (ReID: 256 x 128).
        patch_size, patch_stride: patch side and step (``None``: non-overlapping).
        dim, depth, heads, mlp_ratio: width, blocks, attention heads, MLP hidden / dim.
        style: ``"timm"`` (GELU, LN eps 1e-6, patch bias, no LN before the blocks) or
            ``"clip"`` (OpenAI CLIP: QuickGELU, eps 1e-5, no patch bias, ``norm_pre``).
        proj_dim: adds CLIP's final projection ``proj`` (dim -> proj_dim, no bias).
        output: ``"cls"`` returns the ``dim``-d [CLS] feature (CLIP-ReID's ``img_feature``),
            ``"proj"`` its ``proj_dim``-d projection.
        drop_path: stochastic-depth rate of the last block (linear from 0 over the blocks).
        dynamic_size: accept images of another size by resizing the position embedding on
            the fly (bicubic, as when loading); ``False``: such an image raises.

    Attributes:
        out_channels: ``dim`` (``proj_dim`` when ``output="proj"``).
        grid: (g_h, g_w) at ``image_size``.
        stage_names: ``("blocks.0", ..., f"blocks.{depth - 1}")``.

    Shape:
        x: (B, in_channels, H, W); output: (B, out_channels); ``forward_features`` and
        ``forward_tokens``: (B, 1 + g_h g_w, dim), [CLS] first.

    Invariants:
        - ``forward(x) == pool(forward_features(x))`` (then ``proj`` when output="proj")
        - ``forward_features(x) == norm(forward_tokens(x))``

    Example:
        >>> net = VisionTransformer(dim=64, depth=2, heads=4)
        >>> net.grid, net(torch.zeros(2, 3, 256, 128)).shape
        ((16, 8), torch.Size([2, 64]))
        >>> VisionTransformer(dim=64, depth=1, heads=4, patch_stride=12).grid
        (21, 10)
    """

    def __init__(self, *, image_size: tuple[int, int] | int = (256, 128), patch_size: int = 16,
                 patch_stride: int | None = None, dim: int = 768, depth: int = 12,
                 heads: int = 12, mlp_ratio: float = 4.0, style: str = "timm",
                 proj_dim: int | None = None, output: str = "cls", in_channels: int = 3,
                 drop_path: float = 0.0, dynamic_size: bool = True) -> None:
        super().__init__()
        self.patch_size = check_int(patch_size, name="patch_size", minimum=1)
        stride = patch_size if patch_stride is None else patch_stride
        self.patch_stride = check_int(stride, name="patch_stride", minimum=1, maximum=patch_size)
        self.image_size = check_pair(image_size, name="image_size")
        if min(self.image_size) < patch_size:
            raise ShapeError(f"image_size: expected sides >= patch_size={patch_size}, "
                             f"got {self.image_size}")
        check_int(dim, name="dim", minimum=1)
        check_int(depth, name="depth", minimum=1)
        check_int(heads, name="heads", minimum=1)
        if dim % heads:
            raise ShapeError(f"heads: expected a divisor of dim={dim}, got {heads}")
        hidden = check_int(int(check_real(mlp_ratio, name="mlp_ratio") * dim),
                           name="mlp_ratio * dim", minimum=1)
        self.style = check_choice(style, STYLES, name="style")
        self.output = check_choice(output, ("cls", "proj"), name="output")
        if proj_dim is not None:
            check_int(proj_dim, name="proj_dim", minimum=1)
        if output == "proj" and proj_dim is None:
            raise ShapeError("proj_dim: expected an int with output='proj', got None")
        check_int(in_channels, name="in_channels", minimum=1)
        if not (isinstance(drop_path, (int, float)) and 0.0 <= drop_path < 1.0):
            raise ShapeError(f"drop_path: expected a rate in [0, 1), got {drop_path!r}")
        self.dim, self.depth, self.heads, self.mlp_ratio = dim, depth, heads, mlp_ratio
        self.in_channels, self.proj_dim, self.dynamic_size = in_channels, proj_dim, dynamic_size
        self.drop_path = float(drop_path)
        self.grid = self._grid(*self.image_size)
        self.num_prefix_tokens = 1
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, dim, patch_size, self.patch_stride,
                                          bias=style == "timm")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        eps = 1e-5 if style == "clip" else 1e-6
        self.norm_pre = nn.LayerNorm(dim, eps=eps) if style == "clip" else nn.Identity()
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(*(_Block(dim, heads, hidden, style, r) for r in rates))
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.pool = _ClsToken()
        self.proj = nn.Linear(dim, proj_dim, bias=False) if proj_dim is not None else None
        self.out_channels = proj_dim if output == "proj" else dim
        self.stage_names = tuple(f"blocks.{i}" for i in range(depth))
        self._init()

    def _init(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        if self.proj is not None:
            nn.init.normal_(self.proj.weight, std=self.dim ** -0.5)

    def _grid(self, h: int, w: int) -> tuple[int, int]:
        p, s = self.patch_size, self.patch_stride
        return ((h - p) // s + 1, (w - p) // s + 1)

    def forward_tokens(self, x: Tensor) -> Tensor:
        """Patch + [CLS] embedding, position embedding, ``norm_pre`` and the blocks."""
        sizes = check_shape(x, "B C H W", name="x", C=self.in_channels)
        h, w = sizes["H"], sizes["W"]
        if min(h, w) < self.patch_size:
            raise ShapeError(f"x: expected H, W >= patch_size={self.patch_size}, got {(h, w)}")
        grid = self._grid(h, w)
        pos = self.pos_embed
        if grid != self.grid:
            if not self.dynamic_size:
                raise ShapeError(f"x: expected (H, W) = {self.image_size} (dynamic_size=False),"
                                 f" got {(h, w)}")
            pos = resize_pos_embed(pos, grid, old_grid=self.grid)
        t = self.patch_embed.proj(x).flatten(2).transpose(1, 2)       # (B, N, D)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1).to(t.dtype), t], dim=1)
        return self.blocks(self.norm_pre(t + pos.to(t.dtype)))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.norm(self.forward_tokens(x))

    def forward(self, x: Tensor) -> Tensor:
        f = self.pool(self.forward_features(x))
        return self.proj(f) if self.output == "proj" else f

    def extra_repr(self) -> str:
        return (f"image_size={self.image_size}, patch_size={self.patch_size}, "
                f"patch_stride={self.patch_stride}, dim={self.dim}, depth={self.depth}, "
                f"heads={self.heads}, style={self.style!r}, proj_dim={self.proj_dim}, "
                f"output={self.output!r}, drop_path={self.drop_path}")


def vit_b16(*, style: str = "timm", image_size: tuple[int, int] | int = (256, 128),
            patch_stride: int | None = None, **kwargs) -> VisionTransformer:
    """ViT-B/16: dim 768, depth 12, 12 heads, patch 16 (``style="clip"`` adds CLIP's 512-d
    ``proj``); keyword arguments go to :class:`VisionTransformer`.

    Example:
        >>> vit_b16(style="clip").proj.weight.shape
        torch.Size([512, 768])
    """
    if style == "clip":
        kwargs.setdefault("proj_dim", 512)
    return VisionTransformer(image_size=image_size, patch_size=16, patch_stride=patch_stride,
                             dim=768, depth=12, heads=12, style=style, **kwargs)


def vit_tiny(*, style: str = "timm", image_size: tuple[int, int] | int = (256, 128),
             patch_stride: int | None = None, **kwargs) -> VisionTransformer:
    """A small ViT for tests and CPU runs: DeiT-Tiny's width (192, 3 heads), 4 blocks, patch 16.

    Example:
        >>> vit_tiny().out_channels
        192
    """
    return VisionTransformer(image_size=image_size, patch_size=16, patch_stride=patch_stride,
                             dim=192, depth=4, heads=3, style=style, **kwargs)
