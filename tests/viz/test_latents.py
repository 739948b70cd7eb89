"""plot_factors_2d: the DIR-ReID Figure 6 panels (raw 2-D factors by domain and by class)."""

import pytest
import torch

from dgblocks._checks import ShapeError
from dgblocks.viz.latents import plot_factors_2d


def test_writes_a_png_with_one_row_per_factor(tmp_path):
    g = torch.Generator().manual_seed(0)
    f = {"v": torch.randn(30, 2, generator=g), "s": torch.randn(30, 2, generator=g).numpy()}
    p = plot_factors_2d(f, torch.arange(30) % 5, torch.arange(30) % 10, tmp_path / "a" / "l.png",
                        domain_names=["r0", "r15", "r30", "r45", "r60"], title="t")
    assert p.exists() and p.stat().st_size > 1000


def test_bad_input_names_the_argument(tmp_path):
    with pytest.raises(ShapeError, match="factors"):
        plot_factors_2d({}, torch.zeros(3), torch.zeros(3), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"factors\['s'\]"):
        plot_factors_2d({"s": torch.zeros(3, 3)}, torch.zeros(3), torch.zeros(3),
                        tmp_path / "x.png")
    with pytest.raises(ValueError, match="labels"):
        plot_factors_2d({"s": torch.zeros(3, 2)}, torch.zeros(3), torch.zeros(4),
                        tmp_path / "x.png")
