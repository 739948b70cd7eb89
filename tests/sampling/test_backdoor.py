import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.sampling import BackdoorAdjustment
from tests._helpers import gen, randn, seeds

STRATS = ["random", "hardest", "mixup", "mixhard"]


def naive_pairs(s, v, index, weight):
    b, k = weight.shape
    out = torch.empty(b, k, s.shape[1] + v.shape[1], dtype=torch.float64)
    for i in range(b):
        for j in range(k):
            a, c = index[i, j].tolist()
            w = float(weight[i, j])
            out[i, j] = torch.cat([s[i], w * v[a] + (1 - w) * v[c]])
    return out


def sizes():
    return st.integers(3, 12).flatmap(lambda b: st.tuples(st.just(b), st.integers(2, b - 1)))


# --- reference -------------------------------------------------------------------------------
@settings(max_examples=20)  # a Python loop over B x K pairs
@given(seed=seeds, bk=sizes(), strategy=st.sampled_from(STRATS))
def test_matches_naive_reference(seed, bk, strategy):
    b, k = bk
    s, v = randn(seed, b, 3), randn(seed + 1, b, 2)
    out = DF.backdoor_adjustment(s, v, k=k, strategy=strategy, generator=gen(seed))
    assert out.pairs.shape == (b, k, 5) and out.index.shape == (b, k, 2)
    torch.testing.assert_close(out.pairs, naive_pairs(s, v, out.index, out.weight))


# --- invariants ------------------------------------------------------------------------------
@given(seed=seeds, bk=sizes())
def test_prop_hardest_is_exactly_the_k_farthest(seed, bk):
    b, k = bk
    v = randn(seed, b, 4)
    index, weight = DF.backdoor_indices(v, k=k, strategy="hardest")
    for i in range(b):
        d = [(float(((v[i] - v[j]) ** 2).sum()), j) for j in range(b) if j != i]
        expected = {j for _, j in sorted(d, reverse=True)[:k]}
        assert set(index[i, :, 0].tolist()) == expected
    assert torch.equal(index[..., 0], index[..., 1]) and (weight == 1).all()


@given(seed=seeds, bk=sizes())
def test_prop_random_never_self_never_repeats(seed, bk):
    b, k = bk
    index, weight = DF.backdoor_indices(randn(seed, b, 2), k=k, strategy="random",
                                        generator=gen(seed))
    for i in range(b):
        chosen = index[i, :, 0].tolist()
        assert i not in chosen and len(set(chosen)) == k
    assert torch.equal(index[..., 0], index[..., 1]) and (weight == 1).all()


@given(seed=seeds, bk=sizes(), strategy=st.sampled_from(["mixup", "mixhard"]),
       alpha=st.one_of(st.none(), st.floats(0, 1)))
def test_prop_mixes_are_convex_combinations(seed, bk, strategy, alpha):
    b, k = bk
    s, v = randn(seed, b, 2), randn(seed + 1, b, 3)
    out = DF.backdoor_adjustment(s, v, k=k, strategy=strategy, alpha=alpha, generator=gen(seed))
    assert ((out.weight >= 0) & (out.weight <= 1)).all()
    j, j2 = out.index[..., 0], out.index[..., 1]
    assert (j != j2).all()
    rows = torch.arange(b).unsqueeze(1)
    assert (j != rows).all() and (j2 != rows).all()
    # convex combination: inside the per-coordinate box spanned by v_j and v_j'
    vm = out.pairs[..., 2:]
    lo, hi = torch.minimum(v[j], v[j2]), torch.maximum(v[j], v[j2])
    assert (vm >= lo - 1e-12).all() and (vm <= hi + 1e-12).all()
    if strategy == "mixhard":
        hard, _ = DF.backdoor_indices(v, k=k, strategy="hardest")
        for i in range(b):
            assert set(j[i].tolist()) == set(hard[i, :, 0].tolist())
            assert set(j2[i].tolist()) <= set(hard[i, :, 0].tolist())


@given(seed=seeds, bk=sizes(), strategy=st.sampled_from(STRATS))
def test_prop_identity_part_is_s(seed, bk, strategy):
    b, k = bk
    s, v = randn(seed, b, 3), randn(seed + 1, b, 2)
    out = DF.backdoor_adjustment(s, v, k=k, strategy=strategy, generator=gen(seed))
    torch.testing.assert_close(out.pairs[..., :3], s.unsqueeze(1).expand(b, k, 3))


def test_mixup_uses_alpha_half_by_default_and_generator_is_reproducible():
    s, v = randn(0, 10, 2), randn(1, 10, 2)
    a = DF.backdoor_adjustment(s, v, k=4, generator=gen(5))
    b = DF.backdoor_adjustment(s, v, k=4, generator=gen(5))
    assert (a.weight == 0.5).all()
    assert torch.equal(a.index, b.index)


@given(seed=seeds, bk=sizes(), strategy=st.sampled_from(STRATS), bias=st.booleans())
def test_prop_linear_head_equals_the_head_on_the_pairs(seed, bk, strategy, bias):
    b, k = bk
    s, v = randn(seed, b, 3).requires_grad_(), randn(seed + 1, b, 2).requires_grad_()
    w_head, b_head = randn(seed + 2, 6, 5).requires_grad_(), randn(seed + 3, 6)
    index, weight = DF.backdoor_indices(v, k=k, strategy=strategy, generator=gen(seed))
    out = DF.backdoor_linear(s, v, index, weight, w_head, b_head if bias else None)
    ref = torch.nn.functional.linear(DF.backdoor_pairs(s, v, index, weight), w_head,
                                     b_head if bias else None)
    torch.testing.assert_close(out, ref)
    probe = randn(seed + 4, *ref.shape)
    for a, c in zip(*(torch.autograd.grad((t * probe).sum(), (s, v, w_head)) for t in (out, ref))):
        torch.testing.assert_close(a, c)


def test_module_indices_are_the_forward_draws():
    s, v = randn(2, 7, 3), randn(3, 7, 4)
    m = BackdoorAdjustment(k=3, strategy="mixhard")
    index, weight = m.indices(v, generator=gen(5))
    out = m(s, v, generator=gen(5))
    assert torch.equal(index, out.index) and torch.equal(weight, out.weight)


# --- module == function, gradcheck -----------------------------------------------------------
@pytest.mark.parametrize("strategy", STRATS)
def test_module_equals_function(strategy):
    s, v = randn(2, 7, 3), randn(3, 7, 4)
    m = BackdoorAdjustment(k=3, strategy=strategy)
    a = m(s, v, generator=gen(9))
    b = DF.backdoor_adjustment(s, v, k=3, strategy=strategy, generator=gen(9))
    torch.testing.assert_close(a.pairs, b.pairs)
    assert torch.equal(a.index, b.index)
    assert f"strategy={strategy!r}" in repr(m)


def test_gradcheck_through_the_pairs():
    s = randn(0, 5, 2).requires_grad_()
    v = randn(1, 5, 3).requires_grad_()
    index, weight = DF.backdoor_indices(v, k=3, strategy="mixup", generator=gen(0))
    assert torch.autograd.gradcheck(lambda a, c: DF.backdoor_pairs(a, c, index, weight), (s, v))


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    s, v = torch.zeros(4, 2), torch.zeros(4, 3)
    with pytest.raises(ValueError, match="k: expected an int <= 3"):
        DF.backdoor_adjustment(s, v, k=4)
    with pytest.raises(ValueError, match="v: expected length 4"):
        DF.backdoor_adjustment(s, v[:3], k=2)
    with pytest.raises(ValueError, match="strategy"):
        DF.backdoor_adjustment(s, v, k=2, strategy="hard")
    with pytest.raises(ValueError, match="strategy"):
        BackdoorAdjustment(k=2, strategy="hard")
    with pytest.raises(ValueError, match="k: expected an int >= 1"):
        BackdoorAdjustment(k=0)
    with pytest.raises(ValueError, match="k: mixhard"):
        BackdoorAdjustment(k=1, strategy="mixhard")
    with pytest.raises(ValueError, match="alpha"):
        BackdoorAdjustment(k=1, alpha=1.5)
    with pytest.raises(ValueError, match="v: mixup needs B >= 3"):
        DF.backdoor_adjustment(s[:2], v[:2], k=1)
    with pytest.raises(ValueError, match="s: expected 2-D"):
        DF.backdoor_adjustment(torch.zeros(4), v, k=1)
    with pytest.raises(ValueError, match="index: expected dtype"):
        DF.backdoor_pairs(s, v, torch.zeros(4, 1, 2, dtype=torch.int32), torch.ones(4, 1))
    idx, w1 = torch.zeros(4, 1, 2, dtype=torch.long), torch.ones(4, 1)
    with pytest.raises(ValueError, match="head_weight"):
        DF.backdoor_linear(s, v, idx, w1, torch.zeros(6, 4))
    with pytest.raises(ValueError, match="head_bias"):
        DF.backdoor_linear(s, v, idx, w1, torch.zeros(6, 5), torch.zeros(5))
    with pytest.raises(ValueError, match="index: expected dtype"):
        DF.backdoor_linear(s, v, idx.int(), w1, torch.zeros(6, 5))


def test_degenerate_batch_of_one_has_no_candidates():
    with pytest.raises(ValueError, match="k: expected an int <= 0"):
        DF.backdoor_adjustment(torch.zeros(1, 2), torch.zeros(1, 2), k=1, strategy="random")


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("strategy", STRATS)
def test_low_precision(dtype, strategy):
    s, v = randn(0, 8, 4, dtype=dtype), randn(1, 8, 4, scale=100.0, dtype=dtype)
    out = DF.backdoor_adjustment(s, v, k=3, strategy=strategy, generator=gen(0))
    assert out.pairs.dtype == dtype and torch.isfinite(out.pairs).all()


@pytest.mark.parametrize("value", [-1, 6])
@pytest.mark.parametrize("linear", [False, True])
def test_index_outside_the_batch_is_refused(value, linear):
    # index -1 silently paired s_i with the last domain factor before (negative indexing)
    s, v, w = torch.randn(6, 3), torch.randn(6, 2), torch.rand(6, 1)
    index = torch.zeros(6, 1, 2, dtype=torch.long)
    index[2, 0, 1] = value
    call = ((lambda: DF.backdoor_linear(s, v, index, w, torch.randn(4, 5))) if linear
            else (lambda: DF.backdoor_pairs(s, v, index, w)))
    with pytest.raises(ValueError, match=rf"^index: expected values in \[0, 6\) \(rows of v\),"
                                         rf" got {value}"):
        call()
    if value < 0:
        import dgblocks

        with dgblocks.checks(values=False):  # a value check: off on a hot path, as the labels
            call()
