"""reduce / attached_zero: the reductions shared by the losses."""

import torch

from dgblocks.losses._reduction import attached_zero, reduce


def test_reduce_and_attached_zero():
    x = torch.ones(3, requires_grad=True)
    assert float(reduce(x, "sum").detach()) == 3
    z = reduce(x[:0], "mean")
    assert z.requires_grad and float(z.detach()) == 0
    a = attached_zero(x)
    a.backward()
    assert (x.grad == 0).all()
