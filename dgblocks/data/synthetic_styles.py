"""Domain styles and identity attributes of the synthetic ReID benchmark.

A *domain* fixes the scene (background texture and colours), the optics (illumination gain,
colour cast, gamma, saturation, blur, resolution, sensor noise), the viewpoint (how large and
where people appear, occlusion rate) and, to reproduce the spurious correlation of DIR-ReID's
causal model, the *distribution of identity attributes*: people of a domain mostly wear its
palette hue (which is also the hue of its background), favour one clothing pattern and carry
backpacks/hats at a domain-specific rate. Cameras and time periods are nuisances inside a
domain: each camera has its own gain/cast offsets and a preferred viewpoint (front, back,
side), each period (morning, afternoon, evening) its own illumination.

The four source styles are moderate; the four target styles lie outside them (night, low
resolution, far and over-exposed, warm indoor light with occlusions), so there is a domain gap.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgblocks.data.synthetic_render import hsv_to_rgb

__all__ = ["SOURCE_STYLES", "TARGET_STYLES", "identity_attributes", "style_table"]

# hue: palette hue shared by clothing (spurious) and background; bg: (type, hsv1, hsv2)
# bg types: 0 vertical gradient, 1 horizontal bands, 2 blotches, 3 shop-front stripes
SOURCE_STYLES: list[dict] = [
    dict(name="src-mall", hue=0.02, bg=(0, (0.08, 0.25, 0.85), (0.08, 0.3, 0.55)), gain=1.0,
         cast=(1.03, 1.0, 0.97), gamma=1.0, sat=1.0, blur=0.0, down=1.0, noise=0.01,
         scale=0.95, occ=0.05, pattern=1, backpack=0.3, hat=0.1),
    dict(name="src-campus", hue=0.33, bg=(1, (0.3, 0.35, 0.6), (0.25, 0.2, 0.8)), gain=1.1,
         cast=(1.0, 1.03, 0.98), gamma=0.95, sat=1.0, blur=0.5, down=1.0, noise=0.015,
         scale=0.9, occ=0.1, pattern=2, backpack=0.6, hat=0.2),
    dict(name="src-street", hue=0.6, bg=(2, (0.6, 0.1, 0.5), (0.1, 0.1, 0.7)), gain=0.95,
         cast=(0.97, 1.0, 1.04), gamma=1.1, sat=0.85, blur=0.8, down=1.5, noise=0.02,
         scale=0.88, occ=0.1, pattern=0, backpack=0.4, hat=0.3),
    dict(name="src-station", hue=0.13, bg=(3, (0.13, 0.3, 0.75), (0.6, 0.2, 0.4)), gain=1.05,
         cast=(1.0, 1.0, 1.0), gamma=1.0, sat=1.1, blur=0.3, down=1.0, noise=0.02,
         scale=0.92, occ=0.15, pattern=3, backpack=0.2, hat=0.15),
]
TARGET_STYLES: list[dict] = [
    dict(name="tgt-night", hue=0.75, bg=(2, (0.65, 0.5, 0.3), (0.7, 0.4, 0.15)), gain=0.6,
         cast=(0.85, 0.95, 1.25), gamma=1.2, sat=0.8, blur=0.6, down=1.0, noise=0.05,
         scale=0.9, occ=0.1, pattern=4, backpack=0.3, hat=0.2),
    dict(name="tgt-lowres", hue=0.5, bg=(0, (0.5, 0.15, 0.7), (0.45, 0.2, 0.45)), gain=1.1,
         cast=(1.0, 1.0, 1.0), gamma=1.0, sat=0.6, blur=1.0, down=2.5, noise=0.02,
         scale=0.85, occ=0.1, pattern=2, backpack=0.5, hat=0.1),
    dict(name="tgt-far", hue=0.92, bg=(1, (0.95, 0.1, 0.9), (0.0, 0.05, 0.7)), gain=1.3,
         cast=(1.05, 1.0, 0.95), gamma=0.75, sat=0.7, blur=0.4, down=1.5, noise=0.02,
         scale=0.72, occ=0.2, pattern=0, backpack=0.3, hat=0.4),
    dict(name="tgt-indoor", hue=0.45, bg=(3, (0.08, 0.6, 0.55), (0.05, 0.5, 0.35)), gain=0.9,
         cast=(1.25, 1.0, 0.72), gamma=1.05, sat=1.2, blur=0.3, down=1.0, noise=0.03,
         scale=0.97, occ=0.3, pattern=1, backpack=0.2, hat=0.1),
]
PERIOD_GAIN = (1.0, 1.12, 0.78)  # morning, afternoon, evening
PERIOD_TINT = ((0.97, 1.0, 1.05), (1.0, 1.0, 1.0), (1.08, 1.0, 0.88))


def style_table(styles: list[dict]) -> dict[str, Tensor]:
    """Stack the domain style dicts into per-domain tensors ``(D,)`` / ``(D, 3)``."""
    def col(key: str) -> Tensor:
        return torch.tensor([s[key] for s in styles], dtype=torch.float32)

    hsv1 = torch.tensor([s["bg"][1] for s in styles])
    hsv2 = torch.tensor([s["bg"][2] for s in styles])
    out = {k: col(k) for k in ("hue", "gain", "gamma", "sat", "blur", "down", "noise", "scale",
                               "occ", "backpack", "hat")}
    out["cast"] = col("cast")
    out["pattern"] = col("pattern").long()
    out["bg_type"] = torch.tensor([s["bg"][0] for s in styles], dtype=torch.long)
    out["bg1"] = hsv_to_rgb(hsv1[:, 0], hsv1[:, 1], hsv1[:, 2])
    out["bg2"] = hsv_to_rgb(hsv2[:, 0], hsv2[:, 1], hsv2[:, 2])
    return out


def _u(n: int, lo: float, hi: float, gen: torch.Generator) -> Tensor:
    return torch.rand(n, generator=gen) * (hi - lo) + lo


def _colour(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    return hsv_to_rgb(h, s, v)


def identity_attributes(domain: Tensor, table: dict[str, Tensor], *, spurious: float,
                        gen: torch.Generator) -> dict[str, Tensor]:
    """Draw the attributes of identities living in ``domain`` (``(I,)`` domain indices).

    With probability ``spurious`` an identity's upper-clothing hue is the domain's palette hue
    (plus small noise) and its pattern the domain's favourite; otherwise both are uniform.
    """
    n = domain.shape[0]
    tied = torch.rand(n, generator=gen) < spurious
    hue = torch.where(tied, table["hue"][domain] + 0.05 * torch.randn(n, generator=gen),
                      torch.rand(n, generator=gen))
    a: dict[str, Tensor] = {}
    a["upper"] = _colour(hue, _u(n, 0.45, 0.95, gen), _u(n, 0.35, 0.95, gen))
    a["upper2"] = _colour(torch.rand(n, generator=gen), _u(n, 0.0, 0.9, gen), _u(n, 0.2, 1.0, gen))
    tied2 = torch.rand(n, generator=gen) < spurious
    lhue = torch.where(tied2, table["hue"][domain] + 0.5, torch.rand(n, generator=gen))
    a["lower"] = _colour(lhue, _u(n, 0.0, 0.6, gen), _u(n, 0.12, 0.75, gen))
    pattern = torch.randint(0, 5, (n,), generator=gen)
    fav = torch.rand(n, generator=gen) < spurious * 0.6
    a["pattern"] = torch.where(fav, table["pattern"][domain], pattern)
    a["pat_freq"] = torch.randint(2, 5, (n,), generator=gen).float()
    tone = torch.rand(n, generator=gen).unsqueeze(1)
    light, dark = torch.tensor([0.96, 0.80, 0.68]), torch.tensor([0.42, 0.28, 0.18])
    a["skin"] = (1 - tone) * light + tone * dark
    fair = torch.rand(n, generator=gen) < 0.15
    a["hair"] = _colour(_u(n, 0.05, 0.12, gen), _u(n, 0.3, 0.7, gen),
                        torch.where(fair, _u(n, 0.6, 0.9, gen), _u(n, 0.05, 0.3, gen)))
    a["hair_long"] = torch.rand(n, generator=gen) < 0.3
    a["shoes"] = _colour(torch.rand(n, generator=gen), _u(n, 0.0, 0.3, gen),
                         torch.where(torch.rand(n, generator=gen) < 0.3, 0.9, 0.15))
    a["hat"] = torch.rand(n, generator=gen) < table["hat"][domain]
    a["hat_c"] = _colour(torch.rand(n, generator=gen), _u(n, 0.3, 0.9, gen), _u(n, 0.2, 0.9, gen))
    a["backpack"] = torch.rand(n, generator=gen) < table["backpack"][domain]
    a["bp"] = _colour(torch.rand(n, generator=gen), _u(n, 0.2, 0.9, gen), _u(n, 0.1, 0.8, gen))
    a["bag"] = torch.rand(n, generator=gen) < 0.25
    a["bag_c"] = _colour(torch.rand(n, generator=gen), _u(n, 0.2, 0.9, gen), _u(n, 0.1, 0.9, gen))
    a["bag_side"] = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    a["logo"] = torch.rand(n, generator=gen) < 0.35
    a["lower_type"] = torch.multinomial(torch.tensor([0.6, 0.25, 0.15]), n, replacement=True,
                                        generator=gen)
    a["short_sleeve"] = torch.rand(n, generator=gen) < 0.4
    a["rel_height"] = _u(n, 0.84, 0.96, gen)
    a["shoulder"] = _u(n, 0.095, 0.14, gen)
    a["head"] = _u(n, 0.9, 1.12, gen)
    a["torso"] = _u(n, 0.46, 0.54, gen)
    a["leg"] = _u(n, 0.035, 0.05, gen)
    return a
