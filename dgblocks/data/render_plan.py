"""The pieces of a rendered dataset plan (:mod:`dgblocks.data.render_tree`): the real sizes,
the domain style of each dataset, the image records and the seeded draws.

Sizes are the real datasets' (:data:`REAL_SIZES`) times ``scale`` identities, with at most
``per_id`` images per identity when given, never below what the protocols need (two cameras
per test identity, at least two probes in each of the ten shipped Protocol-1 splits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from dgblocks.data.datasets.protocol1_targets import shipped_splits
from dgblocks.data.synthetic_styles import SOURCE_STYLES, TARGET_STYLES

__all__ = ["Item", "Plan", "Draw", "REAL_SIZES", "STYLES", "enough", "below", "upto"]

# identities and images per identity of the real datasets (their papers / the DG protocols)
REAL_SIZES: dict[str, dict[str, float]] = {
    "market1501": dict(train=751, train_per_id=17, test=750, query=4, gallery=12,
                       distractors=2798, junk=3819, cameras=6),
    "dukemtmc": dict(train=702, train_per_id=23, test=702, query=3, gallery=20,
                     gallery_only=408, gallery_only_per_id=8, cameras=8),
    "msmt17": dict(train=1041, train_per_id=31, test=3060, query=4, gallery=27, cameras=15),
    "cuhk03": dict(train=767, train_per_id=10, test=700, query=2, gallery=8, cameras=2),
    "cuhk02": dict(P1=971, P2=306, P3=107, P4=193, P5=239, per_view=2),
    "cuhksysu": dict(ids=11934, per_id=3),
    "prid2011": dict(shared=200, a_only=185, b_only=549),
    "grid": dict(ids=250, distractors=775),
    "viper": dict(ids=632),
    "ilids": dict(ids=119, per_id=4),
}


class Item(NamedTuple):
    """One image: path under the root, identity and camera (0-based) of the rendering, time
    period (0 morning, 1 afternoon, 2 evening) and, for CUHK03, the detected box's path."""

    rel: str
    ident: int
    cam: int
    period: int
    twin: str = ""


@dataclass
class Plan:
    """Every image of one dataset; ``texts`` are extra files (MSMT17's lists)."""

    name: str
    folder: str
    cameras: int
    items: list[Item] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)


class Draw:
    """Counts and random choices of one plan (a torch generator; ``per_id`` caps images)."""

    def __init__(self, scale: float, per_id: int | None, gen: torch.Generator) -> None:
        self.scale, self.cap, self.gen, self.next_ident = scale, per_id, gen, 0

    def ids(self, real: float, minimum: int = 2) -> int:
        return max(minimum, round(real * self.scale))

    def per(self, real: float, minimum: int = 1) -> int:
        return max(minimum, min(round(real), self.cap or round(real)))

    def idents(self, n: int) -> list[int]:
        out = list(range(self.next_ident, self.next_ident + n))
        self.next_ident += n
        return out

    def int(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.gen))

    def cams(self, ncam: int, k: int) -> list[int]:
        return torch.randperm(ncam, generator=self.gen)[:k].tolist()

    def spread(self, ncam: int, n: int, k: int | None = None) -> list[int]:
        """Cameras of ``n`` images of one person: round robin over 2..6 random cameras."""
        k = k or min(ncam, max(2, 2 + self.int(min(ncam, 6) - 1)))
        chosen = self.cams(ncam, k)
        return [chosen[j % k] for j in range(n)]


def below(n: int, split: list[int]) -> int:  # probes among positions 0..n-1
    return sum(i < n for i in split)


def upto(n: int, split: list[int]) -> int:  # probes among ids 1..n
    return sum(i <= n for i in split)


def _like(base: dict, name: str) -> dict:
    return {**base, "name": name}


# one domain per dataset: the synthetic sources' and targets' styles, plus two more sources
STYLES: dict[str, dict] = {
    "market1501": _like(SOURCE_STYLES[0], "market1501"),
    "dukemtmc": _like(SOURCE_STYLES[1], "dukemtmc"),
    "msmt17": _like(SOURCE_STYLES[2], "msmt17"),
    "cuhk03": _like(SOURCE_STYLES[3], "cuhk03"),
    "cuhk02": dict(name="cuhk02", hue=0.82, bg=(0, (0.82, 0.2, 0.75), (0.9, 0.25, 0.5)),
                   gain=1.0, cast=(1.0, 0.98, 1.03), gamma=1.05, sat=0.95, blur=0.4, down=1.2,
                   noise=0.015, scale=0.93, occ=0.05, pattern=4, backpack=0.5, hat=0.05),
    "cuhksysu": dict(name="cuhksysu", hue=0.4, bg=(2, (0.4, 0.3, 0.65), (0.05, 0.15, 0.5)),
                     gain=1.0, cast=(1.02, 1.02, 0.96), gamma=0.9, sat=1.15, blur=0.6, down=1.3,
                     noise=0.025, scale=0.86, occ=0.2, pattern=1, backpack=0.35, hat=0.25),
    "prid2011": _like(TARGET_STYLES[1], "prid2011"),  # low resolution
    "grid": _like(TARGET_STYLES[0], "grid"),  # dark underground
    "viper": _like(TARGET_STYLES[2], "viper"),  # far, over-exposed
    "ilids": _like(TARGET_STYLES[3], "ilids"),  # indoor, occluded
}


def enough(name: str, count: Callable[[int, Any], int], start: int, maximum: int) -> int:
    """The fewest identities (at least ``start``) leaving >= 2 probes in every shipped split."""
    splits = shipped_splits(name)["splits"]
    n = min(start, maximum)
    while n < maximum and min(count(n, s) for s in splits) < 2:
        n += 1
    return n
