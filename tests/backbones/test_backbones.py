"""Backbones: output shapes at 256x128 and 64x32, stage surgery, bad input."""

import pytest
import torch
from torch import nn

from dgblocks.backbones import (
    IBN,
    DigitsCNN,
    DualBranch,
    MobileNetV2,
    ResNet,
    insert_after,
    named_stages,
    replace_stage,
    resnet50,
    resnet50_ibn_a,
)

SIZES = [(256, 128), (64, 32)]


@pytest.mark.parametrize("size, width", [((256, 128), 0.5), ((64, 32), 0.5), ((64, 32), 1.0),
                                         pytest.param((256, 128), 1.0, marks=pytest.mark.slow)])
def test_mobilenetv2_shapes(size, width):
    net = MobileNetV2(width_mult=width, last_stride=1).eval()
    x = torch.randn(2, 3, *size)
    fmap = net.forward_features(x)
    assert fmap.shape == (2, net.out_channels, size[0] // 16, size[1] // 16)
    assert net(x).shape == (2, 1280)


def test_mobilenetv2_last_stride_2_and_channels():
    net = MobileNetV2(width_mult=1.0, last_stride=2, last_channel=256).eval()
    assert net.forward_features(torch.randn(1, 3, 256, 128)).shape == (1, 256, 8, 4)
    assert MobileNetV2(width_mult=1.4).out_channels == 1792  # torchvision's rule


@pytest.mark.parametrize("size", SIZES)
def test_dualnorm_has_instance_norm_early_only(size):
    net = MobileNetV2.dualnorm(width_mult=0.5).eval()
    with_in = [i for i in range(1, 18) if net.features[i].inorm is not None]
    assert with_in == [1, 2, 3, 4, 5, 6]
    assert net(torch.randn(2, 3, *size)).shape == (2, 1280)


@pytest.mark.parametrize("size, factory", [((256, 128), resnet50), ((64, 32), resnet50),
                                           ((64, 32), resnet50_ibn_a),
                                           pytest.param((256, 128), resnet50_ibn_a,
                                                        marks=pytest.mark.slow)])
def test_resnet50_shapes(size, factory):
    net = factory().eval()
    x = torch.randn(1, 3, *size)
    assert net.forward_features(x).shape == (1, 2048, size[0] // 16, size[1] // 16)
    assert net(x).shape == (1, 2048)


def test_ibn_a_layout():
    net = resnet50_ibn_a()
    assert isinstance(net.layer3[5].bn1, IBN) and not isinstance(net.layer4[0].bn1, IBN)
    assert net.layer1[0].bn1.IN.num_features == 32 and net.layer1[0].bn1.BN.num_features == 32
    assert "layer1.0.bn1.IN.weight" in net.state_dict()


def test_ibn_splits_channels():
    m = IBN(channels=6, ratio=0.5).train()
    x = torch.randn(4, 6, 5, 3) * 3 + 1
    y = m(x)
    # IN half: every (sample, channel) map is standardised; BN half: every channel over the batch
    assert torch.allclose(y[:, :3].mean(dim=(2, 3)), torch.zeros(4, 3), atol=1e-5)
    assert torch.allclose(y[:, 3:].mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


@pytest.mark.parametrize("size", [(28, 28), (64, 32), (256, 128)])
def test_digits_cnn_shapes(size):
    net = DigitsCNN(out_dim=2, in_channels=3, image_size=size)
    assert net(torch.randn(5, 3, *size)).shape == (5, 2)


def test_digits_cnn_matches_table6_layout():
    net = DigitsCNN()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (5, 5)), (64, (5, 5))]
    assert net.fc.in_features == 64 * 4 * 4 and net.fc.out_features == 2


@pytest.mark.parametrize("size", SIZES)
def test_dual_branch_shapes(size):
    net = DualBranch(backbone=MobileNetV2(width_mult=0.5, last_stride=1), num_stripes=4,
                     dim=64).eval()
    x = torch.randn(2, 3, *size)
    g, parts = net.forward_parts(x)
    assert g.shape == (2, 64) and parts.shape == (2, 4, 64)
    out = net(x)
    assert out.shape == (2, 5 * 64) and net.out_channels == 320
    assert torch.equal(out[:, :64], g) and torch.equal(out[:, 64:], parts.flatten(1))


def test_dual_branch_stripes_see_only_their_rows():
    net = DualBranch(backbone=ResNet(layers=(1, 1, 1, 1), base_width=8), num_stripes=2,
                     dim=4).eval()
    net.backbone.forward_features = lambda x: x  # identity backbone: stripes pool raw rows
    net.global_branch = nn.Sequential(nn.Conv2d(256, 4, 1))
    x = torch.zeros(1, 256, 4, 2)
    base = net.forward_parts(x)[1]
    x[:, :, 3] = 5.0  # bottom half only
    moved = net.forward_parts(x)[1]
    assert torch.equal(base[:, 0], moved[:, 0]) and not torch.equal(base[:, 1], moved[:, 1])


def test_named_stages_and_replace():
    net = ResNet(layers=(1, 1, 1, 1), base_width=8).eval()
    assert [n for n, _ in named_stages(net)] == ["layer1", "layer2", "layer3", "layer4"]
    seen = []
    replace_stage(net, "layer2", lambda old: seen.append(old) or old)
    assert isinstance(seen[0], nn.Sequential)
    calls = []

    class Spy(nn.Module):
        def forward(self, x):
            calls.append(x.shape)
            return x

    insert_after(net, "layer3", Spy())
    net(torch.zeros(1, 3, 64, 32))
    assert calls == [torch.Size([1, 128, 4, 2])]
    mb = MobileNetV2(width_mult=0.5)
    insert_after(mb, "features.7", Spy())
    mb.eval()(torch.zeros(1, 3, 64, 32))
    assert len(calls) == 2 and calls[1][1] == 32


def test_bad_input_names_argument():
    with pytest.raises(ValueError, match="width_mult"):
        MobileNetV2(width_mult=0)
    with pytest.raises(ValueError, match="last_stride"):
        ResNet(last_stride=3)
    with pytest.raises(ValueError, match="layers"):
        ResNet(layers=(1, 1, 1))
    with pytest.raises(ValueError, match="image_size"):
        DigitsCNN(image_size=(12, 12))
    with pytest.raises(ValueError, match="x"):
        MobileNetV2(width_mult=0.5)(torch.zeros(3, 64, 32))
    with pytest.raises(ValueError, match="x"):
        DigitsCNN()(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="name"):
        replace_stage(ResNet(layers=(1, 1, 1, 1), base_width=8), "stem", lambda m: m)
    with pytest.raises(ValueError, match="backbone"):
        DualBranch(backbone=nn.Linear(2, 2))


def test_gradients_reach_the_stem():
    net = MobileNetV2(width_mult=0.5)
    net(torch.randn(2, 3, 64, 32)).sum().backward()
    assert net.features[0][0].weight.grad.abs().sum() > 0
