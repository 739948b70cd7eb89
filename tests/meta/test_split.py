"""MetaDomainSplitter's state (generator and the rest of the permutation) round-trips, so
CDVM resumes with the splits an uninterrupted run draws."""

import pytest
import torch

from dgblocks import ValueRangeError
from dgblocks.engine import load_checkpoint, save_checkpoint
from dgblocks.meta import MetaDomainSplitter


@pytest.mark.parametrize("drawn", [0, 1, 2, 3, 5])
def test_state_round_trip_mid_permutation(tmp_path, drawn):
    """Before: only the generator was checkpointed; a resume at a step that is not a
    multiple of the number of domains drew other splits."""
    a = MetaDomainSplitter(num_domains=3, seed=0)
    for _ in range(drawn):
        a.next()
    save_checkpoint(tmp_path / "c.pt", {"s": a.state_dict()})
    b = MetaDomainSplitter(num_domains=3, seed=0)
    b.load_state_dict(load_checkpoint(tmp_path / "c.pt")["s"])
    for _ in range(7):
        (tr_a, te_a), (tr_b, te_b) = a.next(), b.next()
        assert torch.equal(tr_a, tr_b) and torch.equal(te_a, te_b)


def test_bad_state_names_itself():
    s = MetaDomainSplitter(num_domains=3, seed=0)
    state = s.state_dict() | {"queue": [5]}
    with pytest.raises(ValueRangeError, match="state"):
        s.load_state_dict(state)


def test_select_grouped_slices_the_listed_domains():
    dom = torch.arange(3).repeat_interleave(4)
    x = torch.arange(12.0)
    sx, sd = MetaDomainSplitter.select_grouped([x, dom], [2, 0], per_domain=4)
    assert sd.tolist() == [2] * 4 + [0] * 4 and sx.tolist() == [8, 9, 10, 11, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="per_domain"):
        MetaDomainSplitter.select_grouped([x], [0], per_domain=0)
    with pytest.raises(ValueError, match="tensors"):
        MetaDomainSplitter.select_grouped([x], [3], per_domain=4)
