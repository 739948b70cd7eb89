"""dgblocks.data.inputs: the one input normalisation and the one image-size rule."""

import pytest
import torch

from dgblocks._checks import DGBlocksError
from dgblocks.data import ReIDDataset, image_size, normalize_input


def test_normalize_input_maps_unit_interval_and_keeps_dtype():
    x = torch.rand(2, 3, 8, 4, dtype=torch.float64)
    torch.testing.assert_close(normalize_input(x), x * 2.0 - 1.0)
    assert normalize_input(x.half()).dtype == torch.float16
    with pytest.raises(DGBlocksError, match="x: expected float"):
        normalize_input(torch.zeros(2, dtype=torch.uint8))


def test_image_size_in_memory_file_backed_and_fallback():
    ds = ReIDDataset(images=torch.zeros(2, 3, 64, 32, dtype=torch.uint8), pids=[0, 1],
                     camids=[0, 0])
    assert image_size(ds) == (64, 32) == tuple(ds.image(0).shape[-2:])

    class Files:
        images, image_size = None, (256, 128)

    assert image_size(Files()) == (256, 128)

    class Lazy:
        images = image_size = None

        def image(self, i):
            return torch.zeros(3, 40, 20)

    assert image_size(Lazy()) == (40, 20)
    with pytest.raises(DGBlocksError, match="dataset"):
        image_size(object())
