"""Per-image drawing parameters and chunked rendering of the synthetic pedestrians, shared by
:mod:`dgblocks.data.synthetic_reid` (the embedded benchmark) and
:mod:`dgblocks.data.render_tree` (the rendered dataset trees)."""

from __future__ import annotations

import torch
from torch import Tensor

from dgblocks.data.synthetic_render import render_batch
from dgblocks.data.synthetic_styles import PERIOD_GAIN, PERIOD_TINT

__all__ = ["image_params", "render_images"]


def image_params(tab: dict[str, Tensor], attrs: dict[str, Tensor], id_domain: Tensor,
                 ident: Tensor, cam: Tensor, period: Tensor, size: tuple[int, int],
                 gen: torch.Generator, *, view_bias: float, cameras: int = 4
                 ) -> dict[str, Tensor]:
    """Per-image drawing parameters of :func:`render_images`: identity attributes, the domain
    style (``tab``, :func:`~dgblocks.data.synthetic_styles.style_table`), camera offsets
    (``cameras`` per domain), the time period's light and per-image pose noise."""
    H, W = size
    n = ident.shape[0]
    dom = id_domain[ident]
    cam_gain = 1 + 0.12 * (2 * torch.rand(tab["hue"].shape[0], cameras, generator=gen) - 1)
    cam_cast = 1 + 0.06 * (2 * torch.rand(tab["hue"].shape[0], cameras, 3, generator=gen) - 1)
    cam_view = torch.arange(cameras) % 3
    view = torch.where(torch.rand(n, generator=gen) < view_bias, cam_view[cam],
                       torch.randint(0, 3, (n,), generator=gen))
    p = {k: v[ident] for k, v in attrs.items()}
    p["view"] = view
    scale = tab["scale"][dom] * p.pop("rel_height") * (1 + 0.04 * torch.randn(n, generator=gen))
    p["height"] = scale * H
    p["feet"] = (0.5 + scale / 2 + 0.015 * torch.randn(n, generator=gen)) * H
    p["cx"] = (0.5 + 0.05 * torch.randn(n, generator=gen)) * W
    p["stride"] = torch.rand(n, generator=gen)
    for k in ("bg1", "bg2", "bg_type", "noise", "blur", "down", "sat"):
        p[k] = tab[k][dom]
    p["bg1"] = (p["bg1"] * cam_cast[dom, cam]).clamp(0, 1)
    p["bg_phase"] = torch.rand(n, generator=gen) * 0.3 + cam.float() * 0.25
    p["floor_y"] = 0.7 + 0.15 * torch.rand(n, generator=gen)
    p["gain"] = tab["gain"][dom] * cam_gain[dom, cam] * torch.tensor(PERIOD_GAIN)[period]
    p["cast"] = tab["cast"][dom] * cam_cast[dom, cam] * torch.tensor(PERIOD_TINT)[period]
    p["gamma"] = tab["gamma"][dom] * (1 + 0.05 * torch.randn(n, generator=gen))
    p["occ"] = torch.rand(n, generator=gen) < tab["occ"][dom]
    p["occ_y"] = 0.75 + 0.2 * torch.rand(n, generator=gen)
    p["occ_x"] = torch.rand(n, generator=gen)
    p["occ_c"] = p["bg2"] * 0.6
    return p


def render_images(p: dict[str, Tensor], size: tuple[int, int], gen: torch.Generator
                  ) -> Tensor:
    """Render the images of :func:`image_params` in chunks of about 2M pixels: uint8
    ``(N, 3, H, W)``."""
    H, W = size
    n = p["view"].shape[0]
    chunk = max(1, (1 << 21) // (H * W))
    images = torch.empty(n, 3, H, W, dtype=torch.uint8)
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        images[sl] = render_batch({k: v[sl] for k, v in p.items()}, H, W, gen)
    return images
