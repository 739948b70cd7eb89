import pytest
import torch

from dgblocks.data import synthetic_reid
from dgblocks.protocols import leave_one_out


@pytest.mark.parametrize("source", [0, 1, 2])
def test_holds_out_one_source_and_relabels(source):
    from dgblocks.data import SyntheticReIDConfig

    b = synthetic_reid(SyntheticReIDConfig.smoke(num_sources=3))
    h = leave_one_out(b, source)
    kept = b.train.domains != source
    assert len(h.train) == int(kept.sum()) and h.num_domains == 2
    assert torch.equal(h.train.domains.unique(), torch.arange(2))
    assert torch.equal(h.train.pids.unique(), torch.arange(h.num_ids))
    assert h.num_ids == b.train.pids[kept].unique().numel()
    # identities stay distinct: the relabelling is a bijection on the kept pids
    pairs = set(zip(b.train.pids[kept].tolist(), h.train.pids.tolist()))
    assert len(pairs) == h.num_ids
    assert h.targets == [b.source_val[source]]
    assert h.domain_names == [n for k, n in enumerate(b.domain_names) if k != source]
    # the held-out source's identities are never trained on
    held_pids = set(b.source_val[source].splits[0][0].pids.tolist())
    assert not held_pids & set(b.train.pids[kept].tolist())


def test_bad_source_names_the_argument():
    b = synthetic_reid(smoke=True)
    with pytest.raises(ValueError, match="source"):
        leave_one_out(b, 2)
    with pytest.raises(ValueError, match="source"):
        leave_one_out(b, -1)
