"""Vectorised renderer of the synthetic pedestrians (used by :mod:`dgblocks.data.synthetic_reid`).

Every function works on a whole batch: parameters are ``(N,)`` or ``(N, 3)`` tensors, shapes are
soft (anti-aliased) masks computed from pixel-coordinate grids, and layers are painted with
``img = img * (1 - m) + colour * m``. Per-sample blur and resolution loop over the handful of
distinct values (one per domain), never over images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["hsv_to_rgb", "render_batch"]


def hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """HSV in ``[0, 1]`` to RGB, vectorised: ``(...)`` x 3 -> ``(..., 3)``."""
    h = (h % 1.0) * 6.0
    k = torch.stack([(5 + h) % 6, (3 + h) % 6, (1 + h) % 6], dim=-1)
    f = (torch.minimum(k, 4 - k)).clamp(0, 1)
    return v.unsqueeze(-1) - (v * s).unsqueeze(-1) * f


def _col(c: Tensor) -> Tensor:
    return c.view(-1, 3, 1, 1)


def _s(x: Tensor) -> Tensor:
    return x.view(-1, 1, 1, 1)


def _box(yy: Tensor, xx: Tensor, cy: Tensor, cx: Tensor, hy: Tensor, hx: Tensor) -> Tensor:
    # separable: clamp(0.5 - max(a, b)) = min(clamp(0.5 - a), clamp(0.5 - b))
    mx = (_s(hx) + 0.5 - (xx - _s(cx)).abs()).clamp_(0, 1)  # (N, 1, 1, W)
    my = (_s(hy) + 0.5 - (yy - _s(cy)).abs()).clamp_(0, 1)  # (N, 1, H, 1)
    return torch.minimum(mx, my)


def _ellipse(yy: Tensor, xx: Tensor, cy: Tensor, cx: Tensor, ry: Tensor, rx: Tensor) -> Tensor:
    q = (((xx - _s(cx)) / _s(rx)) ** 2 + ((yy - _s(cy)) / _s(ry)) ** 2).sqrt()
    return ((1 - q) * _s(torch.minimum(rx, ry)) + 0.5).clamp(0, 1)


def _paint(img: Tensor, m: Tensor, colour: Tensor) -> Tensor:
    c = colour if colour.dim() == 4 else _col(colour)
    return img.add_((c - img).mul_(m))


def _background(p: dict[str, Tensor], yy: Tensor, xx: Tensor, H: int, W: int,
                gen: torch.Generator) -> Tensor:
    n = p["bg1"].shape[0]
    low = torch.rand(n, 1, 4, 3, generator=gen)
    low = F.interpolate(low, size=(H, W), mode="bicubic", align_corners=False).clamp(0, 1)
    t = p["bg_type"].view(-1, 1, 1, 1)
    phase = _s(p["bg_phase"])
    grad = (yy / H).expand(n, 1, H, W)
    bands = 0.5 + 0.5 * torch.sin(2 * math.pi * (yy / H * 5 + phase)).sign()
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * (xx / W * 2.5 + phase)).sign()
    w = torch.where(t == 0, grad, torch.where(t == 1, bands, torch.where(t == 2, low, stripes)))
    img = _col(p["bg1"]) * (1 - w) + _col(p["bg2"]) * w
    floor = (yy > _s(p["floor_y"]) * H).float()
    img = img * (1 - 0.35 * floor * (t != 1).float())
    return img * (0.9 + 0.2 * low)


def _person(img: Tensor, p: dict[str, Tensor], yy: Tensor, xx: Tensor) -> Tensor:
    s = p["height"]  # person height in pixels
    cx, feet = p["cx"], p["feet"]
    view = p["view"]
    front, back, side = view == 0, view == 1, view == 2
    top = feet - s
    hry = 0.072 * s * p["head"]
    hrx = hry * 0.8
    hcy = top + hry
    neck = top + 2 * hry
    waist = top + p["torso"] * s
    sw = p["shoulder"] * s * torch.where(side, 0.7, 1.0)
    aw = (0.028 * s).clamp_min(0.6)
    lw = p["leg"] * s
    shoe_h = (0.035 * s).clamp_min(0.8)
    gap = torch.where(side, p["stride"] * 0.06 * s, 0.01 * s + p["stride"] * 0.02 * s)
    legs_top, legs_bot = waist, feet - shoe_h
    sf = lambda b: _s(b.float())  # noqa: E731
    # long hair behind the torso (front and side views)
    hair_len = 0.13 * s
    long_hair = _box(yy, xx, hcy + hair_len / 2, cx, hair_len / 2, hrx * 1.05) * sf(p["hair_long"])
    img = _paint(img, long_hair * sf(~back), p["hair"])
    # backpack seen from the side sticks out behind the body
    bp_side = _box(yy, xx, neck + 0.17 * s, cx - sw - 0.04 * s, 0.13 * s, 0.05 * s)
    img = _paint(img, bp_side * sf(p["backpack"] & side), p["bp"])
    # legs: trousers / shorts / skirt, then shoes
    lower_len = torch.where(p["lower_type"] == 1, 0.4, 1.0) * (legs_bot - legs_top)
    for sign in (-1.0, 1.0):
        lc = cx + sign * (lw + gap)
        leg = _box(yy, xx, (legs_top + legs_bot) / 2, lc, (legs_bot - legs_top) / 2, lw)
        img = _paint(img, leg, p["skin"])
        cloth = _box(yy, xx, legs_top + lower_len / 2, lc, lower_len / 2, lw * 1.05)
        img = _paint(img, cloth, p["lower"])
        img = _paint(img, _box(yy, xx, feet - shoe_h / 2, lc, shoe_h / 2, lw * 1.15), p["shoes"])
    hips = _box(yy, xx, waist + 0.04 * s, cx, 0.04 * s, 2 * lw + gap)
    img = _paint(img, hips, p["lower"])
    skirt_h = 0.1 * s
    skirt = _box(yy, xx, waist + skirt_h, cx, skirt_h, sw * 1.05) * sf(p["lower_type"] == 2)
    img = _paint(img, skirt, p["lower"])
    # arms (skin, covered by the sleeves) beside the torso, one swinging arm in side view
    arm_top, arm_bot = neck + 0.02 * s, waist + 0.09 * s
    sleeve_bot = torch.where(p["short_sleeve"], neck + 0.12 * s, arm_bot)
    for sign in (-1.0, 1.0):
        ax = torch.where(side, cx + sign * p["stride"] * 0.05 * s, cx + sign * (sw + aw))
        arm = _box(yy, xx, (arm_top + arm_bot) / 2, ax, (arm_bot - arm_top) / 2, aw)
        img = _paint(img, arm, p["skin"])
        sleeve = _box(yy, xx, (arm_top + sleeve_bot) / 2, ax, (sleeve_bot - arm_top) / 2, aw * 1.1)
        img = _paint(img, sleeve, p["upper"])
    # torso with its pattern
    ttop = neck + 0.01 * s
    torso = _box(yy, xx, (ttop + waist) / 2, cx, (waist - ttop) / 2, sw)
    u = (yy - _s(ttop)) / _s(waist - ttop)
    v = (xx - _s(cx)) / _s(sw)
    f = _s(p["pat_freq"])
    hs = (torch.sin(2 * math.pi * f * u) > 0).float()
    vs = (torch.sin(math.pi * f * v) > 0).float()
    pat = p["pattern"].view(-1, 1, 1, 1)
    jacket = ((v.abs() > 0.3).float() * sf(~back) + sf(back)) * (u > -1).float()
    w = torch.where(pat == 1, hs, torch.where(pat == 2, vs, torch.where(
        pat == 3, (hs + vs) % 2, torch.where(pat == 4, jacket, torch.zeros_like(hs)))))
    upper = _col(p["upper"]) * (1 - w) + _col(p["upper2"]) * w
    img = _paint(img, torso, upper)
    logo = _box(yy, xx, ttop + 0.1 * s, cx, 0.04 * s, 0.35 * sw) * sf(p["logo"] & front)
    img = _paint(img, logo, p["upper2"])
    # backpack: body from the back, straps from the front
    bp_back = _box(yy, xx, ttop + 0.15 * s, cx, 0.14 * s, 0.75 * sw) * sf(p["backpack"] & back)
    img = _paint(img, bp_back, p["bp"])
    for sign in (-1.0, 1.0):
        strap = _box(yy, xx, ttop + 0.09 * s, cx + sign * 0.55 * sw, 0.09 * s,
                     (0.015 * s).clamp_min(0.5))
        img = _paint(img, strap * sf(p["backpack"] & front), p["bp"])
    # hand bag on one side at the hip (the other side when seen from the back)
    side_sign = torch.where(back, -p["bag_side"], p["bag_side"])
    bag = _box(yy, xx, waist + 0.03 * s, cx + side_sign * (sw + 2.2 * aw), 0.06 * s, 0.045 * s)
    img = _paint(img, bag * sf(p["bag"]), p["bag_c"])
    # head: skin face, hair on top (all hair from the back), optional hat
    head = _ellipse(yy, xx, hcy, cx, hry, hrx)
    img = _paint(img, head, p["skin"])
    hair_cut = torch.where(back, hcy + hry, torch.where(side, hcy, hcy - 0.25 * hry))
    hair = head * (yy < _s(hair_cut)).float()
    img = _paint(img, hair, p["hair"])
    long_back = _box(yy, xx, hcy + hair_len / 2, cx, hair_len / 2, hrx) * sf(p["hair_long"] & back)
    img = _paint(img, long_back, p["hair"])
    hat = _box(yy, xx, top + 0.25 * hry, cx, 0.4 * hry, hrx * 1.2) * sf(p["hat"])
    img = _paint(img, hat, p["hat_c"])
    return img


def _blur(img: Tensor, sigma: Tensor) -> Tensor:
    out = img.clone()
    for sv in sigma.unique().tolist():
        if sv <= 0.05:
            continue
        idx = (sigma == sv).nonzero().squeeze(1)
        r = max(1, int(math.ceil(2.5 * sv)))
        x = torch.arange(-r, r + 1, dtype=img.dtype)
        k = torch.exp(-0.5 * (x / sv) ** 2)
        k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
        sub = F.pad(img[idx], (r, r, 0, 0), mode="replicate")
        sub = F.conv2d(sub, k, groups=3)
        sub = F.pad(sub, (0, 0, r, r), mode="replicate")
        out[idx] = F.conv2d(sub, k.transpose(2, 3), groups=3)
    return out


def _resolution(img: Tensor, factor: Tensor) -> Tensor:
    out = img.clone()
    H, W = img.shape[-2:]
    for fv in factor.unique().tolist():
        if fv <= 1.0:
            continue
        idx = (factor == fv).nonzero().squeeze(1)
        small = F.interpolate(img[idx], size=(max(2, round(H / fv)), max(2, round(W / fv))),
                              mode="area")
        out[idx] = F.interpolate(small, size=(H, W), mode="bilinear", align_corners=False)
    return out


def render_batch(p: dict[str, Tensor], H: int, W: int, gen: torch.Generator) -> Tensor:
    """Render pedestrians with their domain style; returns ``uint8 (N, 3, H, W)``.

    ``p`` holds per-image parameters (built by
    :func:`dgblocks.data.synthetic_reid.generate_synthetic`), geometric ones in pixels.
    Draws the background texture and sensor noise from ``gen``.
    """
    yy = torch.arange(H, dtype=torch.float32).add_(0.5).view(1, 1, H, 1)
    xx = torch.arange(W, dtype=torch.float32).add_(0.5).view(1, 1, 1, W)
    img = _background(p, yy, xx, H, W, gen)
    img = _person(img, p, yy, xx)
    ones = torch.ones_like(p["occ_x"])
    occ = _box(yy, xx, p["occ_y"] * H, p["occ_x"] * W, 0.14 * H * ones, 0.3 * W * ones)
    img = _paint(img, occ * _s(p["occ"].float()), p["occ_c"])
    img = img * _col(p["cast"]) * _s(p["gain"])
    img = img.clamp(0, 1).pow(_s(p["gamma"]))
    gray = (img * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    img = gray + (img - gray) * _s(p["sat"])
    img = _resolution(img, p["down"])
    img = _blur(img, p["blur"] * (H / 64.0))
    img = img + torch.randn(img.shape, generator=gen) * _s(p["noise"])
    return img.clamp(0, 1).mul(255).round().to(torch.uint8)
