"""Tensor transforms: shapes, ranges, per-sample randomness, seeding."""

import pytest
import torch

from dgblocks import ShapeError, ValueRangeError
from dgblocks.data.transforms import (
    ColorJitter,
    Compose,
    HorizontalFlip,
    Normalize,
    PadCrop,
    RandomErasing,
    Resize,
    eval_transform,
    train_transform,
)


def gen(s=0):
    return torch.Generator().manual_seed(s)


def test_resize_and_single_vs_batch():
    x = torch.rand(2, 3, 32, 16)
    assert Resize((16, 8))(x).shape == (2, 3, 16, 8)
    assert torch.allclose(Resize((16, 8))(x[0]), Resize((16, 8))(x)[0])
    assert eval_transform((32, 16))(x).shape == x.shape


def test_flip_is_per_sample_and_seeded():
    x = torch.rand(64, 1, 4, 4)
    out = HorizontalFlip(0.5, generator=gen())(x)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert (flipped | kept).all() and 10 < int(flipped.sum()) < 54
    assert torch.equal(out, HorizontalFlip(0.5, generator=gen())(x))


def test_padcrop_shifts_content():
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(32, 1, 4, 4)
    out = PadCrop(1, generator=gen())(x)
    assert out.shape == x.shape and (out != x).flatten(1).any(1).any()
    # every output is a shifted window of the zero-padded input
    padded = torch.nn.functional.pad(x[:1], (1, 1, 1, 1))[0, 0]
    windows = [padded[i:i + 4, j:j + 4] for i in range(3) for j in range(3)]
    assert all(any(torch.equal(o[0], w) for w in windows) for o in out)


def test_jitter_erase_normalize():
    x = torch.rand(8, 3, 16, 8)
    y = ColorJitter(0.3, 0.3, 0.3, generator=gen())(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    e = RandomErasing(1.0, value=-1.0, generator=gen())(x)
    assert ((e == -1).flatten(1).any(1)).all()
    n = Normalize()(x)
    assert torch.allclose(n[:, 0], (x[:, 0] - 0.485) / 0.229)
    t = train_transform((16, 8), generator=gen())
    assert isinstance(t, Compose) and t(x).shape == x.shape


def test_bad_input():
    with pytest.raises(ShapeError, match="image"):
        Resize((4, 4))(torch.rand(4, 4))
    with pytest.raises(ValueRangeError, match="p"):
        HorizontalFlip(1.5)
    with pytest.raises(ShapeError, match="mean"):
        Normalize(mean=(0.5, 0.5), std=(1.0, 1.0))(torch.rand(3, 2, 2))
