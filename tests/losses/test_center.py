import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dgblocks.functional as DF
from dgblocks.losses import CenterLoss
from tests._helpers import batch, classes, is_attached_zero, randint, randn, scales, seeds

dims = st.integers(1, 8)


def naive_center(features, labels, centers):
    out = []
    for f, y in zip(features.tolist(), labels.tolist()):
        out.append(0.5 * sum((a - b) ** 2 for a, b in zip(f, centers[y].tolist())))
    return torch.tensor(out, dtype=torch.float64)


# --- reference -------------------------------------------------------------------------------
@given(seed=seeds, n=batch, k=classes, d=dims, scale=scales)
def test_matches_naive_reference(seed, n, k, d, scale):
    f, y, c = randn(seed, n, d, scale=scale), randint(seed + 1, k, n), randn(seed + 2, k, d)
    got = DF.center_loss(f, y, c, reduction="none")
    torch.testing.assert_close(got, naive_center(f, y, c))


# --- invariants (one property test each) -----------------------------------------------------
@given(seed=seeds, n=batch, k=classes, d=dims, scale=scales)
def test_prop_non_negative_and_zero_at_centres(seed, n, k, d, scale):
    y, c = randint(seed + 1, k, n), randn(seed + 2, k, d, scale=scale)
    assert (DF.center_loss(randn(seed, n, d, scale=scale), y, c, reduction="none") >= 0).all()
    f = c[y].clone().requires_grad_()
    v = DF.center_loss(f, y, c)
    assert is_attached_zero(v)


@given(seed=seeds, n=batch, k=classes, d=dims)
def test_prop_translation_invariance(seed, n, k, d):
    f, y, c = randn(seed, n, d), randint(seed + 1, k, n), randn(seed + 2, k, d)
    t = randn(seed + 3, 1, d, scale=10.0)
    torch.testing.assert_close(DF.center_loss(f + t, y, c + t, reduction="none"),
                               DF.center_loss(f, y, c, reduction="none"))


@given(seed=seeds, n=batch, k=classes, d=dims)
def test_prop_only_present_classes_get_gradient(seed, n, k, d):
    y = randint(seed + 1, k, n)
    c = randn(seed + 2, k, d).requires_grad_()
    DF.center_loss(randn(seed, n, d), y, c).backward()
    absent = torch.ones(k, dtype=torch.bool)
    absent[y] = False
    assert (c.grad[absent] == 0).all()


# --- module == function, reductions, gradcheck ----------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function_and_shapes(reduction):
    loss = CenterLoss(num_classes=4, dim=3, reduction=reduction,
                      generator=torch.Generator().manual_seed(0))
    f, y = randn(0, 6, 3, dtype=torch.float32), torch.tensor([0, 1, 1, 3, 3, 3])
    got = loss(f, y)
    assert got.shape == ((6,) if reduction == "none" else ())
    torch.testing.assert_close(got, DF.center_loss(f, y, loss.centers, reduction=reduction))
    per = DF.center_loss(f, y, loss.centers, reduction="none")
    if reduction != "none":
        torch.testing.assert_close(got, per.mean() if reduction == "mean" else per.sum())


def test_centres_are_a_seeded_parameter_in_the_state_dict():
    a = CenterLoss(num_classes=5, dim=2, generator=torch.Generator().manual_seed(3))
    b = CenterLoss(num_classes=5, dim=2, generator=torch.Generator().manual_seed(3))
    assert isinstance(a.centers, torch.nn.Parameter) and a.centers.shape == (5, 2)
    torch.testing.assert_close(a.centers, b.centers)
    c = CenterLoss(num_classes=5, dim=2)
    c.load_state_dict(a.state_dict())
    torch.testing.assert_close(c.centers, a.centers)
    assert list(dict(a.named_parameters())) == ["centers"]
    assert "num_classes=5, dim=2" in repr(a)


def test_centres_learn_towards_class_means():
    loss = CenterLoss(num_classes=2, dim=2, generator=torch.Generator().manual_seed(0))
    f = torch.tensor([[1.0, 1.0], [3.0, 1.0], [-2.0, 0.0]])
    y = torch.tensor([0, 0, 1])
    opt = torch.optim.SGD(loss.parameters(), lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        loss(f, y).backward()
        opt.step()
    torch.testing.assert_close(loss.centers.detach(), torch.tensor([[2.0, 1.0], [-2.0, 0.0]]))


def test_gradcheck():
    f, c = randn(1, 5, 3).requires_grad_(), randn(2, 3, 3).requires_grad_()
    y = torch.tensor([0, 2, 2, 1, 0])
    assert torch.autograd.gradcheck(lambda a, b: DF.center_loss(a, y, b, reduction="none"),
                                    (f, c))


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    f, y, c = torch.zeros(3, 4), torch.tensor([0, 1, 2]), torch.zeros(3, 4)
    with pytest.raises(ValueError, match="features: expected 2-D"):
        DF.center_loss(torch.zeros(3), y, c)
    with pytest.raises(ValueError, match="centers: expected shape \\(K, D\\) with D=4"):
        DF.center_loss(f, y, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="labels: expected values in \\[0, 3\\), got 3"):
        DF.center_loss(f, torch.tensor([0, 1, 3]), c)
    with pytest.raises(ValueError, match="labels: expected shape \\(N,\\) with N=3"):
        DF.center_loss(f, torch.tensor([0, 1]), c)
    with pytest.raises(ValueError, match="reduction"):
        DF.center_loss(f, y, c, reduction="avg")
    with pytest.raises(ValueError, match="num_classes"):
        CenterLoss(num_classes=0, dim=4)
    with pytest.raises(ValueError, match="dim"):
        CenterLoss(num_classes=3, dim=2.5)
    with pytest.raises(TypeError):
        CenterLoss(3, 4)  # keyword-only


# --- degenerate batches ----------------------------------------------------------------------
def test_empty_batch_is_attached_zero():
    loss = CenterLoss(num_classes=3, dim=4)
    v = loss(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert is_attached_zero(v)
    v.backward()
    assert (loss.centers.grad == 0).all()


# --- numerics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_finite_in_low_precision(dtype):
    loss = CenterLoss(num_classes=4, dim=64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    for scale in (1e-3, 1.0, 10.0):  # the loss itself must fit fp16 (< 65504)
        f = randn(4, 6, 64, scale=scale).to(dtype).requires_grad_()
        v = loss(f, y)
        assert v.dtype == (torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype) and torch.isfinite(v)
        v.float().backward()
        assert torch.isfinite(f.grad).all() and torch.isfinite(loss.centers.grad).all()
    half = DF.center_loss(randn(5, 6, 64).to(dtype), y, loss.centers.detach())
    big = DF.center_loss(1e4 * randn(5, 6, 64).to(dtype), y, loss.centers.detach().to(dtype))
    assert torch.isfinite(big), "loss values are returned in float32 for half inputs"
    full = DF.center_loss(randn(5, 6, 64), y, loss.centers.detach().double())
    torch.testing.assert_close(half.double(), full, rtol=0.02, atol=0.02)


def test_half_inputs_at_scale_1e4_return_finite_float32():  # fp16 used to give inf
    f, y = 1e4 * randn(7, 6, 64), torch.tensor([0, 1, 2, 3, 0, 1])
    loss = CenterLoss(num_classes=4, dim=64).half()
    v = loss(f.half(), y)
    assert v.dtype == torch.float32 and torch.isfinite(v)
