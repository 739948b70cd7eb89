import pytest
import torch

from dgblocks.meta import MetaDomainSplitter


def test_select_grouped_slices_the_listed_domains():
    dom = torch.arange(3).repeat_interleave(4)
    x = torch.arange(12.0)
    sx, sd = MetaDomainSplitter.select_grouped([x, dom], [2, 0], per_domain=4)
    assert sd.tolist() == [2] * 4 + [0] * 4 and sx.tolist() == [8, 9, 10, 11, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="per_domain"):
        MetaDomainSplitter.select_grouped([x], [0], per_domain=0)
    with pytest.raises(ValueError, match="tensors"):
        MetaDomainSplitter.select_grouped([x], [3], per_domain=4)
