import pytest
import torch

import dgblocks
from dgblocks import _checks as C


def test_check_shape_returns_sizes_and_checks_known():
    assert C.check_shape(torch.zeros(2, 3, 4), "N * 4", name="x") == {"N": 2}
    with pytest.raises(C.ShapeError, match=r"labels: expected shape \(N,\) with N=64 from earlier arguments, got \(32,\)"):
        C.check_shape(torch.zeros(32), "N", name="labels", N=64)
    with pytest.raises(C.ShapeError, match="x: expected a torch.Tensor"):
        C.check_shape([1, 2], "N", name="x")
    with pytest.raises(C.ShapeError, match="x: expected shape \\(N, N\\) with N=2"):
        C.check_shape(torch.zeros(2, 3), "N N", name="x")


def test_errors_are_value_errors():
    assert issubclass(C.ShapeError, ValueError) and issubclass(C.ValueRangeError, ValueError)


def test_label_checks_and_switch():
    with pytest.raises(C.ValueRangeError, match="y: expected values in \\[0, 3\\), got -1"):
        C.check_labels(torch.tensor([0, -1]), 3, name="y")
    with pytest.raises(C.ValueRangeError, match="integer dtype"):
        C.check_labels(torch.tensor([0.0]), 3, name="y")
    with dgblocks.checks(values=False):
        C.check_labels(torch.tensor([7]), 3, name="y")  # skipped: no host sync
    with pytest.raises(C.ValueRangeError):
        C.check_labels(torch.tensor([7]), 3, name="y")


def test_scalar_checks():
    with pytest.raises(C.ValueRangeError, match="margin: expected a value >= 0, got -1"):
        C.check_nonnegative(-1, name="margin")
    with pytest.raises(C.ValueRangeError, match="k: expected an int >= 1"):
        C.check_int(0, name="k", minimum=1)
    with pytest.raises(C.ValueRangeError, match="k: expected an int"):
        C.check_int(True, name="k")
    with pytest.raises(C.ValueRangeError, match="p: expected a value in \\[0, 1\\)"):
        C.check_probability(1.0, name="p", closed=False)
