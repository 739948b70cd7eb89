"""Embedded benchmarks: synthetic_reid and rotated_digits."""

import hashlib

import pytest
import torch

from dgblocks import ValueRangeError
from dgblocks.data import (
    SyntheticReIDConfig,
    rotated_digits,
    synthetic_reid,
    time_period,
)
from dgblocks.data.rotated_digits import rotate_images
from dgblocks.protocols import build_benchmark


def _digest(b):
    h = hashlib.sha256(b.train.images.numpy().tobytes())
    for t in b.targets + b.source_val:
        for q, g in t.splits:
            h.update(q.images.numpy().tobytes())
            h.update(g.pids.numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def smoke():
    return synthetic_reid(smoke=True, seed=0)


def test_same_seed_same_bytes(smoke):
    again = synthetic_reid(smoke=True, seed=0)
    assert _digest(smoke) == _digest(again)
    tiny = SyntheticReIDConfig.smoke(train_ids=4, eval_ids=4, distractors=2, num_splits=1)
    assert _digest(synthetic_reid(tiny, seed=1)) != _digest(synthetic_reid(tiny, seed=2))


def test_structure(smoke):
    cfg = SyntheticReIDConfig.smoke()
    b = smoke
    assert b.task == "reid" and b.num_domains == cfg.num_sources == len(b.domain_names)
    assert b.num_ids == cfg.num_sources * cfg.train_ids
    assert len(b.train) == b.num_ids * cfg.images_per_id
    assert b.train.pids.unique().tolist() == list(range(b.num_ids))
    assert b.train.images.shape[1:] == (3, 64, 32) and b.train.images.dtype == torch.uint8
    for d in range(b.num_domains):  # disjoint pid ranges per source
        p = b.train.pids[b.train.domains == d]
        assert p.min() == d * cfg.train_ids and p.max() == (d + 1) * cfg.train_ids - 1
    img, pid, cam, dom, ts = b.train[0]
    assert img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1 and ts >= 360
    assert set(time_period(b.train.timestamps).tolist()) <= {0, 1, 2}
    seen = set(b.train.pids.tolist())
    for t in b.targets + b.source_val:
        assert len(t.splits) == cfg.num_splits
        for q, g in t.splits:
            assert len(q) == cfg.test_ids and len(g) == cfg.test_ids + cfg.distractors
            assert (q.camids == 0).all() and (g.camids == 1).all()
            assert set(q.pids.tolist()) <= set(g.pids.tolist())  # single-shot, all valid
            assert not (set(g.pids.tolist()) & seen)  # disjoint from training identities
    tgt_doms = {int(t.splits[0][0].domains[0]) for t in b.targets}
    assert tgt_doms.isdisjoint(range(b.num_domains))


def test_spurious_correlation_of_clothing_hue_and_domain():
    from dgblocks.data.synthetic_styles import SOURCE_STYLES, identity_attributes, style_table

    tab = style_table(SOURCE_STYLES)
    dom = torch.arange(4).repeat_interleave(200)

    def domain_accuracy(spurious):
        a = identity_attributes(dom, tab, spurious=spurious, gen=torch.Generator().manual_seed(0))
        feat = torch.cat([a["upper"], a["lower"]], 1)
        centers = torch.stack([feat[dom == d].mean(0) for d in range(4)])
        return (torch.cdist(feat, centers).argmin(1) == dom).float().mean()

    # clothing colours predict the domain when correlated, not when independent
    assert domain_accuracy(0.9) > 0.7 > 0.4 > domain_accuracy(0.0)


def test_image_size_and_bad_config():
    cfg = SyntheticReIDConfig.smoke(num_splits=1, train_ids=2, images_per_id=2, eval_ids=4,
                                    test_ids=2, distractors=2)
    b = synthetic_reid(cfg, image_size=(128, 64))
    assert b.train.images.shape[-2:] == (128, 64)
    with pytest.raises(ValueRangeError, match="test_ids"):
        synthetic_reid(SyntheticReIDConfig.smoke(test_ids=20))
    with pytest.raises(ValueRangeError, match="num_sources"):
        synthetic_reid(SyntheticReIDConfig.smoke(num_sources=9))


def test_rotated_digits():
    b = rotated_digits(smoke=True)
    assert b.task == "classification" and b.num_ids == 10 and b.num_domains == 5
    assert b.train.images.shape[1:] == (1, 28, 28)
    assert torch.bincount(b.train.domains).tolist() == [100] * 5
    q, g = b.targets[0].splits[0]
    assert q is g and len(q) == 100 and b.targets[0].task == "classification"
    # the same digits in every domain, only rotated
    x0 = b.train.images[b.train.domains == 0].float() / 255
    x2 = b.train.images[b.train.domains == 2].float() / 255
    assert (rotate_images(x0, 30) - x2).abs().max() < 0.02
    assert len(b.source_val) == 5


def test_build_benchmark_dispatch():
    assert build_benchmark("digits", smoke=True).name == "rotated_digits"
    with pytest.raises(ValueRangeError, match="data"):
        build_benchmark("imagenet")
    with pytest.raises(ValueRangeError, match="root"):
        build_benchmark("real")
