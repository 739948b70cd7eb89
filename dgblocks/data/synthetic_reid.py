"""``synthetic_reid``: a deterministic multi-domain person ReID benchmark, generated in seconds.

Each *source* domain contributes ``train_ids`` training identities (``images_per_id`` images
over ``cameras`` cameras and three time periods) and a held-out Protocol-1-shaped validation
set; each unseen *target* domain is Protocol-1-shaped: ``eval_ids`` identities seen once by
camera 0 (probe) and once by camera 1 (gallery) plus ``distractors`` gallery-only identities;
each of the ``num_splits`` splits picks ``test_ids`` of the ``eval_ids`` as probes and puts
their camera-1 images and all distractors in the gallery (as PRID/GRID/VIPeR/i-LIDS).
Identities are disjoint across every domain and role. Styles and attributes are described in
:mod:`dgblocks.data.synthetic_styles`; drawing in :mod:`dgblocks.data.synthetic_render`.

All randomness comes from one ``torch.Generator`` seeded with ``seed``: the same seed gives
the same bytes (images are stored as ``uint8``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor

from dgblocks._checks import ValueRangeError, check_int, check_probability
from dgblocks.data._validate import (
    check_flag,
    check_instance,
    check_int_tensor,
    check_real,
    check_seed,
)
from dgblocks.data.base import Benchmark, ReIDDataset, TargetDomain, few_threads
from dgblocks.data.synthetic_params import image_params, render_images
from dgblocks.data.synthetic_styles import (
    SOURCE_STYLES,
    TARGET_STYLES,
    identity_attributes,
    style_table,
)

MAX_BYTES = 2**34  # 16 GiB of uint8 images: beyond that a config is a typo

__all__ = ["SyntheticReIDConfig", "synthetic_reid", "generate_synthetic", "time_period"]


@dataclass(frozen=True)
class SyntheticReIDConfig:
    """Sizes of the synthetic benchmark (defaults: about 4,900 images of 64x32)."""

    image_size: tuple[int, int] = (64, 32)
    num_sources: int = 4
    num_targets: int = 4
    train_ids: int = 100
    images_per_id: int = 8
    cameras: int = 3
    eval_ids: int = 60
    test_ids: int = 30
    distractors: int = 90
    num_splits: int = 10
    spurious: float = 0.7
    view_bias: float = 0.6

    def __post_init__(self) -> None:
        self.validate()  # a bad size fails when the config is made, not when it is used

    @classmethod
    def smoke(cls, **kw) -> SyntheticReIDConfig:
        """A tiny version for tests (well under a second)."""
        base = dict(num_sources=2, num_targets=2, train_ids=12, images_per_id=4, eval_ids=8,
                    test_ids=4, distractors=6, num_splits=2)
        base.update(kw)
        return cls(**base)

    def validate(self) -> SyntheticReIDConfig:
        if not isinstance(self.image_size, (tuple, list)) or len(self.image_size) != 2:
            raise ValueRangeError(f"image_size: expected (H, W), got {self.image_size!r}")
        h, w = self.image_size
        check_int(h, name="image_size[0]", minimum=16, maximum=512)
        check_int(w, name="image_size[1]", minimum=8, maximum=256)
        check_int(self.num_sources, name="num_sources", minimum=1, maximum=len(SOURCE_STYLES))
        check_int(self.num_targets, name="num_targets", minimum=1, maximum=len(TARGET_STYLES))
        for k in ("train_ids", "images_per_id", "eval_ids", "test_ids", "num_splits"):
            check_int(getattr(self, k), name=k, minimum=1)
        check_int(self.cameras, name="cameras", minimum=2, maximum=4)
        check_int(self.distractors, name="distractors", minimum=0)
        if self.test_ids > self.eval_ids:
            raise ValueRangeError(f"test_ids: expected <= eval_ids={self.eval_ids},"
                                  f" got {self.test_ids}")
        check_probability(check_real(self.spurious, name="spurious"), name="spurious")
        check_probability(check_real(self.view_bias, name="view_bias"), name="view_bias")
        if _num_pixels(self) * 3 > MAX_BYTES:
            raise ValueRangeError(f"sizes (train_ids, images_per_id, eval_ids, distractors, "
                                  f"image_size): expected at most {MAX_BYTES // 2**30} GiB of "
                                  f"images in all, got {_num_pixels(self) * 3 / 2**30:.0f} GiB")
        return self


def time_period(timestamps: Tensor) -> Tensor:
    """Time period (0 morning, 1 afternoon, 2 evening) of synthetic timestamps (minute of day).

    Timestamps must be whole minutes >= 0 (a fraction or an unknown ``-1`` is refused, not
    floored into a period).

    Example:
        >>> time_period(torch.tensor([400, 800, 1200]))
        tensor([0, 1, 2])
    """
    t = check_int_tensor(timestamps, name="timestamps", minimum=0)
    return (t // 360 - 1).clamp(0, 2).to(timestamps.device)


def _layout(cfg: SyntheticReIDConfig) -> dict[str, Tensor]:
    """Identity table (domain, role, local index) and image table (identity, camera)."""
    dom, role, local = [], [], []
    for d in range(cfg.num_sources + cfg.num_targets):
        counts = ([cfg.train_ids] if d < cfg.num_sources else [0]) + [cfg.eval_ids,
                                                                      cfg.distractors]
        for r, c in enumerate(counts):
            dom += [d] * c
            role += [r] * c
            local += list(range(c))
    dom_t, role_t = torch.tensor(dom), torch.tensor(role)
    per_id = torch.tensor([cfg.images_per_id, 2, 1])[role_t]
    ident = torch.repeat_interleave(torch.arange(len(dom)), per_id)
    first = torch.cumsum(per_id, 0) - per_id
    j = torch.arange(ident.shape[0]) - first[ident]  # image index within its identity
    return {"id_domain": dom_t, "id_role": role_t, "id_local": torch.tensor(local),
            "ident": ident, "j": j}


def generate_synthetic(cfg: SyntheticReIDConfig, seed: int = 0) -> dict[str, Tensor]:
    """Generate every image and label; returns flat tensors (images uint8 (N, 3, H, W), ...)."""
    cfg.validate()
    H, W = cfg.image_size
    gen = torch.Generator().manual_seed(int(seed))
    lay = _layout(cfg)
    styles = SOURCE_STYLES[: cfg.num_sources] + TARGET_STYLES[: cfg.num_targets]
    tab = style_table(styles)
    attrs = identity_attributes(lay["id_domain"], tab, spurious=cfg.spurious, gen=gen)
    ident, j = lay["ident"], lay["j"]
    n = ident.shape[0]
    role = lay["id_role"][ident]
    start = torch.randint(0, cfg.cameras, (lay["id_domain"].shape[0],), generator=gen)[ident]
    cam = torch.where(role == 0, (start + j) % cfg.cameras, torch.where(role == 1, j, 1))
    period = torch.randint(0, 3, (n,), generator=gen)
    stamp = 360 * (1 + period) + torch.randint(0, 360, (n,), generator=gen)
    p = image_params(tab, attrs, lay["id_domain"], ident, cam, period, (H, W), gen,
                     view_bias=cfg.view_bias)
    images = render_images(p, (H, W), gen)
    return {"images": images, "ident": ident, "camid": cam, "domain": lay["id_domain"][ident],
            "role": role, "local": lay["id_local"][ident], "timestamp": stamp,
            "names": [s["name"] for s in styles]}  # type: ignore[dict-item]


def _protocol1(raw: dict, d: int, cfg: SyntheticReIDConfig, name: str, gen: torch.Generator,
               base: ReIDDataset) -> TargetDomain:
    in_d = raw["domain"] == d
    shared = (in_d & (raw["role"] == 1)).nonzero().squeeze(1)
    distract = (in_d & (raw["role"] == 2)).nonzero().squeeze(1)
    splits = []
    for _ in range(cfg.num_splits):
        chosen = torch.randperm(cfg.eval_ids, generator=gen)[: cfg.test_ids]
        keep = torch.isin(raw["local"][shared], chosen)
        probe = shared[keep & (raw["camid"][shared] == 0)]
        gallery = torch.cat([shared[keep & (raw["camid"][shared] == 1)], distract])
        splits.append((base.subset(probe, name=f"{name}/query"),
                       base.subset(gallery, name=f"{name}/gallery")))
    return TargetDomain(name=name, splits=splits)


def synthetic_reid(config: SyntheticReIDConfig | None = None, *, seed: int = 0,
                   smoke: bool = False, image_size: tuple[int, int] | None = None) -> Benchmark:
    """Build the synthetic multi-domain ReID :class:`~dgblocks.data.Benchmark`.

    Args:
        config: sizes; default :class:`SyntheticReIDConfig` (or its ``smoke()`` version).
        seed: seeds generation and the target splits; same seed, same bytes.
        smoke: tiny version for tests.
        image_size: overrides ``config.image_size`` (16x8 to 512x256).

    Example:
        >>> b = synthetic_reid(smoke=True)
        >>> b.num_domains, b.num_ids, len(b.targets), len(b.targets[0].splits)
        (2, 24, 2, 2)
    """
    if config is not None:
        check_instance(config, SyntheticReIDConfig, name="config")
    check_seed(seed)
    cfg = config or (SyntheticReIDConfig.smoke() if check_flag(smoke, name="smoke")
                     else SyntheticReIDConfig())
    if image_size is not None:
        if not isinstance(image_size, (tuple, list)):
            raise ValueRangeError(f"image_size: expected (H, W), got {image_size!r}")
        cfg = replace(cfg, image_size=tuple(image_size))
    with few_threads(_num_pixels(cfg)):
        return _build(cfg, seed)


def _num_pixels(cfg: SyntheticReIDConfig) -> int:
    per_domain = 2 * cfg.eval_ids + cfg.distractors
    n = cfg.num_sources * (cfg.train_ids * cfg.images_per_id + per_domain)
    n += cfg.num_targets * per_domain
    return n * cfg.image_size[0] * cfg.image_size[1]


def _build(cfg: SyntheticReIDConfig, seed: int) -> Benchmark:
    raw = generate_synthetic(cfg, seed)
    # global pids: training ids 0..S*train_ids-1 (disjoint per source), then the rest
    is_train = raw["role"] == 0
    train_ident = raw["ident"][is_train].unique()
    pid = torch.searchsorted(train_ident, raw["ident"]).where(is_train, raw["ident"] + 10**6)
    full = ReIDDataset(raw["images"], pids=pid, camids=raw["camid"], domains=raw["domain"],
                       timestamps=raw["timestamp"], name="synthetic")
    train = full.subset(is_train.nonzero().squeeze(1), name="synthetic/train")
    split_gen = torch.Generator().manual_seed(int(seed) + 1)
    names = raw["names"]
    S = cfg.num_sources
    source_val = [_protocol1(raw, d, cfg, f"{names[d]}-val", split_gen, full) for d in range(S)]
    targets = [_protocol1(raw, S + t, cfg, names[S + t], split_gen, full)
               for t in range(cfg.num_targets)]
    return Benchmark(name="synthetic_reid", train=train, num_ids=int(train_ident.numel()),
                     num_domains=S, domain_names=names[:S], targets=targets,
                     source_val=source_val, task="reid",
                     info={"seed": seed, "config": asdict(cfg), "images": len(full)})
