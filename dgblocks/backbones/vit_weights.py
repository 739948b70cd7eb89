"""ViT checkpoints: OpenAI CLIP key names and position-embedding resizing.

OpenAI CLIP (Radford et al. 2021) keeps its image tower under ``visual.``: ``conv1``,
``class_embedding`` (D,), ``positional_embedding`` (1 + 14*14, D) at 224 x 224,
``ln_pre``, ``transformer.resblocks.i.{ln_1, attn.in_proj_weight, attn.in_proj_bias,
attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}``, ``ln_post`` and ``proj`` (D, 512), used as
``x @ proj``. :func:`clip_to_timm` renames these to the timm names dgblocks' ViT uses;
:func:`from_clip` also reshapes the values (``proj`` becomes a Linear weight, its transpose).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from dgblocks._checks import ShapeError, ValueRangeError, check_choice, check_int, check_shape
from dgblocks.backbones._args import check_pair

__all__ = ["clip_to_timm", "from_clip", "resize_pos_embed"]

_CLIP_TOP = {"conv1.weight": "patch_embed.proj.weight", "class_embedding": "cls_token",
             "positional_embedding": "pos_embed", "proj": "proj.weight"}
_CLIP_PARTS = {"ln_pre": "norm_pre", "ln_post": "norm"}
_CLIP_BLOCK = {"ln_1": "norm1", "ln_2": "norm2", "attn.in_proj_weight": "attn.qkv.weight",
               "attn.in_proj_bias": "attn.qkv.bias", "attn.out_proj": "attn.proj",
               "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}


def clip_to_timm(key: str) -> str | None:
    """The timm name of one key of CLIP's visual tower (given without its ``visual.`` prefix);
    ``None`` for a key that is not part of it.

    Example:
        >>> clip_to_timm("transformer.resblocks.3.attn.in_proj_weight")
        'blocks.3.attn.qkv.weight'
        >>> clip_to_timm("ln_post.bias"), clip_to_timm("token_embedding.weight")
        ('norm.bias', None)
    """
    if not isinstance(key, str):
        raise ValueRangeError(f"key: expected a str, got {type(key).__name__}")
    if key in _CLIP_TOP:
        return _CLIP_TOP[key]
    head, _, rest = key.partition(".")
    if head in _CLIP_PARTS and rest in ("weight", "bias"):
        return f"{_CLIP_PARTS[head]}.{rest}"
    m = re.fullmatch(r"transformer\.resblocks\.(\d+)\.(.+)", key)
    if m:
        for old, new in _CLIP_BLOCK.items():
            if m[2] == old or m[2].startswith(old + "."):
                return f"blocks.{m[1]}.{new}{m[2][len(old):]}"
    return None


def from_clip(state: Mapping[str, Tensor], prefix: str = "visual.") -> tuple[dict[str, Tensor],
                                                                           dict[str, str]]:
    """Rename and reshape CLIP's visual tower to timm names and layouts.

    Returns:
        ``(tensors, origin)``: the converted tensors by timm name, and for each its key in
        ``state``; keys outside ``prefix`` or not in the tower (the text tower) are left out.

    Example:
        >>> sd = {"visual.class_embedding": torch.zeros(8), "logit_scale": torch.ones(())}
        >>> out, origin = from_clip(sd)
        >>> out["cls_token"].shape, origin
        (torch.Size([1, 1, 8]), {'cls_token': 'visual.class_embedding'})
    """
    if not isinstance(state, Mapping):
        raise ValueRangeError(f"state: expected a mapping of names to tensors, got "
                              f"{type(state).__name__}")
    if not isinstance(prefix, str):
        raise ValueRangeError(f"prefix: expected a str, got {type(prefix).__name__}")
    out, origin = {}, {}
    for k, v in state.items():
        if not (isinstance(k, str) and isinstance(v, Tensor)):
            continue
        if not k.startswith(prefix):
            continue
        name = clip_to_timm(k[len(prefix):])
        if name is None:
            continue
        if name == "cls_token" and v.dim() == 1:
            v = v.reshape(1, 1, -1)
        elif name == "pos_embed" and v.dim() == 2:
            v = v.unsqueeze(0)
        elif name == "proj.weight" and v.dim() == 2:
            v = v.t()
        out[name], origin[name] = v, k
    return out, origin


def resize_pos_embed(pos_embed: Tensor, grid: tuple[int, int], *,
                     old_grid: tuple[int, int] | None = None, num_prefix_tokens: int = 1,
                     interpolation: str = "bicubic") -> Tensor:
    r"""Resample the grid part of a position embedding; keep the prefix ([CLS]) rows.

    $$ P' = [P_{0:k};\ \mathrm{vec}(\mathrm{interp}_{g_h' \times g_w'}
           (\mathrm{unvec}_{g_h \times g_w}(P_{k:})))] $$

    with $k$ = ``num_prefix_tokens``; antialiased when shrinking (as timm's
    ``resample_abs_pos_embed``); computed in float32, returned in the input dtype.

    Args:
        pos_embed: (1, k + g_h g_w, D) embedding.
        grid: the new (g_h', g_w').
        old_grid: the embedding's (g_h, g_w); ``None``: ``grid`` when the token count already
            matches it, else the square grid (CLIP and ImageNet checkpoints: 14 x 14).
        interpolation: ``"bicubic"`` (timm) or ``"bilinear"`` (TransReID, CLIP-ReID).

    Shape:
        pos_embed: (1, T, D); output: (1, k + g_h' g_w', D).

    Invariants:
        - the prefix rows are returned unchanged
        - identity (the same values) when the grid does not change
        - linear in pos_embed; a constant grid stays constant

    Example:
        >>> resize_pos_embed(torch.randn(1, 1 + 14 * 14, 8), (16, 8)).shape
        torch.Size([1, 129, 8])
    """
    k = check_int(num_prefix_tokens, name="num_prefix_tokens", minimum=0)
    sizes = check_shape(pos_embed, "1 T D", name="pos_embed")
    check_choice(interpolation, ("bicubic", "bilinear"), name="interpolation")
    grid = check_pair(grid, name="grid", allow_int=False)
    n = sizes["T"] - k
    if old_grid is None:
        side = math.isqrt(max(n, 0))
        old_grid = grid if n == grid[0] * grid[1] else (side, side)
    old_grid = check_pair(old_grid, name="old_grid", allow_int=False)
    if old_grid[0] * old_grid[1] != n:
        raise ShapeError(f"pos_embed: expected {k} prefix + g_h*g_w tokens with (g_h, g_w) = "
                         f"{old_grid}, got {sizes['T']} (pass old_grid)")
    if old_grid == grid:
        return pos_embed
    prefix, rest = pos_embed[:, :k], pos_embed[:, k:]
    img = rest.float().reshape(1, *old_grid, -1).permute(0, 3, 1, 2)
    img = F.interpolate(img, size=grid, mode=interpolation, align_corners=False, antialias=True)
    rest = img.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1).to(pos_embed.dtype)
    return torch.cat([prefix, rest], dim=1)


