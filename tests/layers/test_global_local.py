import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from dgblocks.layers import GlobalLocalBlock
from tests._helpers import randint, randn, randperm, seeds


def make(k=3, din=4, dout=2):
    return GlobalLocalBlock(make_block=lambda: nn.Linear(din, dout), num_domains=k).double()


# --- reference: per-sample routing -----------------------------------------------------------
@given(seed=seeds, b=st.integers(1, 12), k=st.integers(1, 4))
def test_matches_per_sample_routing(seed, b, k):
    torch.manual_seed(seed)
    block = make(k)
    x, d = randn(seed, b, 4), randint(seed, k, b)
    out = block(x, d)
    for i in range(b):
        torch.testing.assert_close(out.inv[i], block.global_branch(x[i]))
        torch.testing.assert_close(out.spe[i], block.local_branches[int(d[i])](x[i]))


@given(seed=seeds, b=st.integers(1, 12), k=st.integers(1, 4))
def test_grouped_batches_take_slices_and_match_per_sample_routing(seed, b, k):
    # domain-sorted batches (the domain samplers' order) skip the gather / scatter
    block = make(k)
    x, d = randn(seed, b, 4).requires_grad_(), randint(seed, k, b).sort().values
    out = block(x, d).spe
    ref = torch.stack([block.local_branches[int(d[i])](x[i]) for i in range(b)])
    torch.testing.assert_close(out, ref)
    w = randn(seed + 1, *ref.shape)
    (g_out,), (g_ref,) = (torch.autograd.grad((t * w).sum(), x) for t in (out, ref))
    torch.testing.assert_close(g_out, g_ref)


# --- invariants ------------------------------------------------------------------------------
@given(seed=seeds, b=st.integers(2, 12))
def test_prop_batch_permutation_equivariance(seed, b):
    block = make()
    x, d, p = randn(seed, b, 4), randint(seed, 3, b), randperm(seed, b)
    a, c = block(x[p], d[p]), block(x, d)
    torch.testing.assert_close(a.spe, c.spe[p])
    torch.testing.assert_close(a.inv, c.inv[p])


@given(seed=seeds)
def test_prop_inference_uses_the_mean_of_the_local_branches(seed):
    block = make().eval()
    x = randn(seed, 5, 4)
    out = block(x)
    torch.testing.assert_close(out.spe, torch.stack([m(x) for m in block.local_branches]).mean(0))


def test_branches_have_the_same_structure_and_different_initialisations():
    block = make(k=3)
    weights = [block.global_branch.weight] + [m.weight for m in block.local_branches]
    assert all(w.shape == weights[0].shape for w in weights)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.equal(weights[i], weights[j])
    assert len(block.branch_pairs()) == 3 and block.branch_pairs()[0][0] is block.global_branch


def test_absent_domains_still_in_the_graph_and_gradcheck():
    block = make(k=3)
    x = randn(0, 4, 4).requires_grad_()
    out = block(x, torch.tensor([0, 0, 2, 2]))
    (out.inv.sum() + out.spe.sum()).backward()
    assert all(p.grad is not None for p in block.parameters())
    assert (block.local_branches[1].weight.grad == 0).all()
    d = torch.tensor([1, 0, 1])
    assert torch.autograd.gradcheck(lambda t: block(t, d).spe, (randn(1, 3, 4).requires_grad_(),))


def test_works_with_batchnorm_blocks_per_domain_statistics():
    block = GlobalLocalBlock(make_block=lambda: nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)),
                             num_domains=2)
    x = randn(0, 6, 2, 3, 3, dtype=torch.float32)
    out = block(x, torch.tensor([0, 1, 0, 1, 0, 1]))
    # each local BN saw only its domain: per-domain outputs are normalised
    for k in range(2):
        part = out.spe[k::2]
        assert part.mean((0, 2, 3)).abs().max() < 1e-5
    assert "num_domains=2" in repr(block)


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    block = make(k=2)
    with pytest.raises(ValueError, match="domains: expected values in \\[0, 2\\)"):
        block(torch.zeros(2, 4, dtype=torch.float64), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="domains: expected shape \\(N,\\) with N=2"):
        block(torch.zeros(2, 4, dtype=torch.float64), torch.tensor([0]))
    with pytest.raises(ValueError, match="make_block: expected a callable"):
        GlobalLocalBlock(make_block=nn.Linear(2, 2).weight, num_domains=2)
    shared = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="make_block: expected a fresh module"):
        GlobalLocalBlock(make_block=lambda: shared, num_domains=2)
    with pytest.raises(ValueError, match="make_block: expected it to return an nn.Module"):
        GlobalLocalBlock(make_block=lambda: 3, num_domains=2)
    with pytest.raises(ValueError, match="num_domains"):
        GlobalLocalBlock(make_block=lambda: nn.Linear(2, 2), num_domains=0)


def test_degenerate_single_sample():
    block = make(k=2)
    out = block(randn(0, 1, 4), torch.tensor([1]))
    assert out.spe.shape == (1, 2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(dtype):
    block = GlobalLocalBlock(make_block=lambda: nn.Linear(4, 2), num_domains=2).to(dtype)
    out = block((randn(0, 5, 4) * 100).to(dtype), torch.tensor([0, 1, 1, 0, 1]))
    assert out.spe.dtype == dtype and torch.isfinite(out.spe).all()


def test_unseen_domain_path_averages_the_listed_branches():
    torch.manual_seed(0)
    block = GlobalLocalBlock(make_block=lambda: nn.Linear(4, 3), num_domains=3)
    x = torch.randn(5, 4)
    out = block(x, branches=[0, 2])
    want = (block.local_branches[0](x) + block.local_branches[2](x)) / 2
    torch.testing.assert_close(out.spe, want)
    torch.testing.assert_close(block(x).spe, sum(b(x) for b in block.local_branches) / 3)


@pytest.mark.parametrize("branches", [[], [3], [-1], [0.5]])
def test_bad_branches_name_the_argument(branches):
    block = GlobalLocalBlock(make_block=lambda: nn.Linear(4, 3), num_domains=3)
    with pytest.raises(ValueError, match="branches"):
        block(torch.randn(2, 4), branches=branches)
    with pytest.raises(ValueError, match="branches"):
        block(torch.randn(2, 4), torch.tensor([0, 1]), branches=[0])


def test_known_counts_route_like_the_inferred_grouping_without_reading_domains():
    torch.manual_seed(0)
    block = GlobalLocalBlock(make_block=lambda: nn.Linear(4, 3), num_domains=3)
    x, dom = torch.randn(5, 4), torch.tensor([0, 0, 2, 2, 2])
    torch.testing.assert_close(block(x, dom, counts=[2, 0, 3]).spe, block(x, dom).spe)
    for bad in ([2, 3], [2, 1, 3], [5, 0, 0], [2, 0, -3]):
        with pytest.raises(ValueError, match="counts"):
            block(x, dom, counts=bad)


def test_from_block_keeps_the_block_as_global_and_reinitialises_the_copies():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    gl = GlobalLocalBlock.from_block(lin, num_domains=2)
    assert gl.global_branch is lin and len(gl.local_branches) == 2
    assert not torch.equal(gl.local_branches[0].weight, lin.weight)
    assert not torch.equal(gl.local_branches[0].weight, gl.local_branches[1].weight)
