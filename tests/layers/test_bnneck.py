import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dgblocks.layers import BNNeck, BNNeckOutput
from tests._helpers import batch, classes, randn, scales, seeds, small


def naive_bn(x, mean, var, weight, bias, eps=1e-5):
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


# --- shapes and the reference ----------------------------------------------------------------
@given(seed=seeds, n=batch, d=small, k=classes, scale=scales)
def test_training_output_matches_reference(seed, n, d, k, scale):
    neck = BNNeck(dim=d, num_classes=k).double()
    x = randn(seed, n, d, scale=scale)
    out = neck(x)
    assert isinstance(out, BNNeckOutput)
    assert out.feat_pre_bn.shape == (n, d) and out.feat_post_bn.shape == (n, d)
    assert out.logits.shape == (n, k)
    assert torch.equal(out.feat_pre_bn, x)
    mean, var = x.mean(0), x.var(0, unbiased=False)
    post = naive_bn(x, mean, var, neck.bn.weight, 0.0)
    torch.testing.assert_close(out.feat_post_bn, post)
    torch.testing.assert_close(out.logits, post @ neck.classifier.weight.t())


@given(seed=seeds, n=st.integers(1, 8), d=small)
def test_eval_returns_post_bn_from_running_stats(seed, n, d):
    neck = BNNeck(dim=d, num_classes=3).double()
    with torch.no_grad():  # arbitrary running statistics, as after training
        neck.bn.running_mean.copy_(randn(seed + 1, d, scale=3.0))
        neck.bn.running_var.copy_(randn(seed + 2, d).exp())
        neck.bn.weight.copy_(randn(seed + 3, d))
    neck.eval()
    x = randn(seed + 9, n, d)
    got = neck(x)
    assert isinstance(got, torch.Tensor) and got.shape == (n, d)
    torch.testing.assert_close(
        got, naive_bn(x, neck.bn.running_mean, neck.bn.running_var, neck.bn.weight, 0.0))
    full = neck(x, return_all=True)
    torch.testing.assert_close(full.feat_post_bn, got)
    assert full.logits.shape == (n, 3)
    assert isinstance(neck.train()(randn(1, 4, d), return_all=False), torch.Tensor)


def test_init_follows_bnneck():
    neck = BNNeck(dim=256, num_classes=100)
    assert torch.equal(neck.bn.weight, torch.ones(256))
    assert torch.equal(neck.bn.bias, torch.zeros(256))
    assert neck.classifier.bias is None
    assert 0.0005 < float(neck.classifier.weight.detach().std()) < 0.002


# --- the frozen BN shift ---------------------------------------------------------------------
def test_bn_bias_is_frozen_at_zero():
    neck = BNNeck(dim=4, num_classes=3)
    opt = torch.optim.SGD(neck.parameters(), lr=0.5, weight_decay=0.1)
    for step in range(3):
        out = neck(randn(step, 8, 4, dtype=torch.float32) + 2.0)
        (out.logits.square().sum() + out.feat_post_bn.sum()).backward()
        opt.step()
        opt.zero_grad()
    assert not neck.bn.bias.requires_grad and neck.bn.bias.grad is None
    assert torch.equal(neck.bn.bias, torch.zeros(4))
    assert neck.bn.weight.requires_grad and neck.classifier.weight.requires_grad
    learn = BNNeck(dim=4, num_classes=3, bias=True)
    learn(randn(0, 8, 4, dtype=torch.float32)).feat_post_bn.sum().backward()
    assert learn.bn.bias.grad is not None


def test_sync_batchnorm_conversion_keeps_the_bias_frozen():
    neck = torch.nn.SyncBatchNorm.convert_sync_batchnorm(BNNeck(dim=4, num_classes=3))
    assert isinstance(neck.bn, torch.nn.SyncBatchNorm)
    assert not neck.bn.bias.requires_grad
    assert neck.eval()(torch.zeros(2, 4)).shape == (2, 4)


# --- state dict ------------------------------------------------------------------------------
def test_state_dict_round_trip():
    a = BNNeck(dim=5, num_classes=4)
    a(randn(1, 8, 5, dtype=torch.float32) * 3 + 1)
    sd = a.state_dict()
    assert set(sd) == {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                       "bn.num_batches_tracked", "classifier.weight"}
    b = BNNeck(dim=5, num_classes=4)
    b.load_state_dict(sd)
    x = randn(2, 3, 5, dtype=torch.float32)
    torch.testing.assert_close(b.eval()(x), a.eval()(x))
    assert not b.bn.bias.requires_grad
    assert "dim=5, num_classes=4, bias=False" in repr(a)


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    neck = BNNeck(dim=4, num_classes=3)
    with pytest.raises(ValueError, match="x: expected shape \\(N, D\\) with D=4"):
        neck(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="x: expected 2-D"):
        neck(torch.zeros(2, 4, 1))
    with pytest.raises(ValueError, match="x: expected N >= 2 in training mode"):
        neck(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="dim: expected an int >= 1"):
        BNNeck(dim=0, num_classes=3)
    with pytest.raises(ValueError, match="num_classes: expected an int"):
        BNNeck(dim=4, num_classes=2.0)


# --- numerics --------------------------------------------------------------------------------
def test_gradcheck():
    neck = BNNeck(dim=3, num_classes=2).double()
    x = randn(3, 4, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: neck(z).logits, (x,))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_and_autocast(dtype):
    neck = BNNeck(dim=16, num_classes=6)
    x = randn(4, 8, 16, dtype=torch.float32) * 100
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = neck(x)
    assert all(torch.isfinite(t).all() for t in out)
    out.logits.float().sum().backward()
    assert torch.isfinite(neck.bn.weight.grad).all()
    half = BNNeck(dim=16, num_classes=6).to(dtype).eval()
    assert torch.isfinite(half(x.to(dtype))).all()
