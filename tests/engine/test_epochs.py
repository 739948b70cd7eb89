"""``--steps -1 --epochs E``: steps counted over the training set the method trains on, after
its ``prepare_benchmark`` reshaped it, for every recipe that resolves its own defaults."""

from __future__ import annotations

import pytest

from dgblocks.engine import ConfigError
from recipes import adin, baseline, cdvm, dir_reid

FLAGS = ["--smoke", "--no-plots", "--threads", "1", "--steps", "-1"]


def _steps(tmp_path, recipe, *extra):
    out = tmp_path / f"{recipe.__name__.rsplit('.', 1)[-1]}{len(list(tmp_path.iterdir()))}.json"
    res = recipe.main([*FLAGS, *extra, "--out", str(out)])
    return res["effective"]["steps"], res["config"]["batch_size"]


def test_epochs_count_the_images_the_method_trains_on(tmp_path):
    one, size = _steps(tmp_path, baseline, "--epochs", "1")
    two, _ = _steps(tmp_path, baseline, "--epochs", "2")
    assert abs(two - 2 * one) <= 1 and one * size >= 32  # the smoke sources: about 96 images
    # ADIN trains on one source (its prepare_benchmark drops the others): fewer steps
    single, adin_size = _steps(tmp_path, adin, "--epochs", "1", "--source", "0")
    assert adin_size == size and single < one


def test_dir_reid_epochs_are_not_replaced_by_its_default_budget(tmp_path):
    """DIR-ReID resolves --steps -1 to 600 and its batch size 0 to 64 itself: with --epochs
    the steps come from the epochs (its batch size resolved first)."""
    steps, size = _steps(tmp_path, dir_reid, "--epochs", "3")
    ref, ref_size = _steps(tmp_path, baseline, "--epochs", "3")
    assert size == ref_size and steps == ref and steps not in (600, 12)  # neither default


def test_minus_one_without_epochs_is_named(tmp_path):
    with pytest.raises(ConfigError, match="--steps"):
        cdvm.main([*FLAGS, "--out", str(tmp_path / "r.json")])
